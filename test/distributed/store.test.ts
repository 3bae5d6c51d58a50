import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BarrierTimeoutError, Store, StoreServer, StoreTimeoutError } from "../../lib/distributed/store";

describe("rendezvous store", () => {
  let server: StoreServer;
  const clients: Store[] = [];
  const connect = async () => {
    const c = await Store.connect("127.0.0.1", server.port, 5000);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    server = await StoreServer.listen(0, "127.0.0.1");
  });
  afterAll(async () => {
    for (const c of clients) await c.close();
    server.close();
  });

  it("sets, gets, adds, checks and deletes", async () => {
    const a = await connect();
    const b = await connect();
    await a.set("k", "hello");
    expect((await b.get("k")).toString()).toBe("hello");
    await a.set("bin", Uint8Array.from([0, 255, 7]));
    expect([...(await b.get("bin"))]).toEqual([0, 255, 7]);
    expect(await a.add("n", 5)).toBe(5);
    expect(await b.add("n", -2)).toBe(3);
    expect(await a.check(["k", "n"])).toBe(true);
    await b.delete("k");
    expect(await a.check(["k", "n"])).toBe(false);
  });

  it("a get waits for a later set, and overlapping requests each get their own reply", async () => {
    const a = await connect();
    const b = await connect();
    const pending = [a.get("later/1", 5000), a.get("later/2", 5000), a.wait(["later/1", "later/2"], 5000)];
    await new Promise((r) => setTimeout(r, 100));
    await b.set("later/2", "two");
    await b.set("later/1", "one");
    const [one, two] = await Promise.all(pending);
    expect(one!.toString()).toBe("one");
    expect(two!.toString()).toBe("two");
  });

  it("times out with the keys that were never set", async () => {
    const a = await connect();
    await a.set("present", "1");
    const t0 = performance.now();
    const err = await a.wait(["present", "absent/a", "absent/b"], 300).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreTimeoutError);
    expect((err as StoreTimeoutError).missing).toEqual(["absent/a", "absent/b"]);
    expect((err as Error).message).toMatch(/timed out after 0.3 s waiting for 'absent\/a', 'absent\/b'/);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(290);
    expect(performance.now() - t0).toBeLessThan(3000);
  });

  it("a barrier passes when every rank arrives, and a timeout names the ranks that did not", async () => {
    const ranks = await Promise.all([connect(), connect(), connect()]);
    await Promise.all(ranks.map((s, r) => s.barrier("all", r, 3, 2000)));
    // Second round: rank 1 never comes.
    const results = await Promise.all([ranks[0].barrier("all", 0, 3, 400).catch((e: unknown) => e), ranks[2].barrier("all", 2, 3, 400).catch((e: unknown) => e)]);
    for (const e of results) {
      expect(e).toBeInstanceOf(BarrierTimeoutError);
      expect((e as BarrierTimeoutError).missingRanks).toEqual([1]);
      expect((e as Error).message).toBe("barrier 'all' timed out after 0.4 s: rank 1 of 3 did not arrive");
    }
  });

  it("connecting to a port nobody serves fails after the timeout with a hint", async () => {
    const free = await StoreServer.listen(0, "127.0.0.1");
    const port = free.port;
    free.close();
    const t0 = performance.now();
    const err = await Store.connect("127.0.0.1", port, 500).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(new RegExp(`could not reach the rendezvous store at 127.0.0.1:${port} within 0.5 s \\(is rank 0 running\\?`));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(450);
  });

  it("pending requests fail when the server goes away", async () => {
    const other = await StoreServer.listen(0, "127.0.0.1");
    const c = await Store.connect("127.0.0.1", other.port, 1000);
    const pending = c.get("never", 10_000).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 50));
    other.close();
    expect(((await pending) as Error).message).toMatch(/lost the connection to the rendezvous store/);
  });
});
