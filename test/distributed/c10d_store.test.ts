import * as net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { C10dProtocolError, C10dStore, C10dTimeoutError } from "../../lib/distributed/c10d_store";
import { findFreePort } from "../../lib/distributed/launch";
import { StoreServer } from "../../lib/distributed/store";
import { python, TorchStore } from "./torch_store";

if (!python) console.log("c10d store tests skipped: no Python with PyTorch (.venv/bin/python or $SSQL_PYTHON)");

for (const classic of [false, true]) {
  describe.skipIf(!python)(`c10d TCPStore client against torch's ${classic ? "classic" : "libuv"} server`, () => {
    let torch: TorchStore;
    let store: C10dStore;
    beforeAll(async () => {
      torch = await TorchStore.start(classic);
      store = await C10dStore.connect("127.0.0.1", torch.port, 10_000);
    }, 60_000);
    afterAll(() => {
      store?.close();
      torch?.stop();
    });

    it("passes the handshake of the local torch", () => {
      expect(torch.torch).toMatch(/^2\./);
      expect(store.where).toBe(`127.0.0.1:${torch.port}`);
    });

    it("set and get, both ways with a torch client", async () => {
      await store.set("ours", "from node");
      expect(await torch.ask("get ours")).toBe("from node");
      expect(await torch.ask("set theirs from python")).toBe("ok");
      expect((await store.get("theirs")).toString()).toBe("from python");
      await store.set("bin", new Uint8Array([0, 255, 7]));
      expect([...(await store.get("bin"))]).toEqual([0, 255, 7]);
    });

    it("add counts from zero and shares the counter with torch", async () => {
      expect(await store.add("counter", 5)).toBe(5);
      expect(await torch.ask("add counter 2")).toBe(7);
      expect(await store.add("counter", -10)).toBe(-3);
    });

    it("compare_set swaps only on the expected value, and creates an absent key from an empty expectation", async () => {
      await store.set("cas", "v1");
      expect((await store.compareSet("cas", "v1", "v2")).toString()).toBe("v2");
      expect((await store.compareSet("cas", "zz", "v3")).toString()).toBe("v2");
      expect((await store.compareSet("cas-new", "", "fresh")).toString()).toBe("fresh");
      expect(await torch.ask("get cas")).toBe("v2");
    });

    it("check, delete_key and num_keys", async () => {
      expect(await store.check(["ours"])).toBe(true);
      expect(await store.check(["ours", "nope"])).toBe(false);
      expect(await torch.ask("check ours")).toBe(true);
      await store.set("gone", "x");
      const n = await store.numKeys();
      expect(await store.deleteKey("gone")).toBe(true);
      expect(await store.deleteKey("gone")).toBe(false);
      expect(await store.numKeys()).toBe(n - 1);
    });

    it("wait returns when a torch client sets the key; get waits the same way", async () => {
      const waiting = store.wait(["late"], 10_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(await torch.ask("set late now")).toBe("ok");
      await waiting;
      const getting = store.get("later", 10_000);
      await new Promise((r) => setTimeout(r, 200));
      await torch.ask("set later value");
      expect((await getting).toString()).toBe("value");
    });

    it("a wait that times out names the missing key, cancels on the server and leaves the connection usable", async () => {
      await store.set("present", "1");
      const err = await store.wait(["present", "never"], 300).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(C10dTimeoutError);
      expect((err as C10dTimeoutError).missing).toEqual(["never"]);
      expect((err as Error).message).toMatch(/timed out after 0\.3 s waiting for 'never'/);
      await expect(store.get("never", 200)).rejects.toThrow("waiting for 'never'");
      await store.set("after", "still fine");
      expect((await store.get("after")).toString()).toBe("still fine");
      expect(await torch.ask("get after")).toBe("still fine");
    });
  });
}

describe("c10d TCPStore client: bad peers", () => {
  it("names a server that speaks another protocol (our own store) instead of hanging", async () => {
    const ours = await StoreServer.listen(0, "127.0.0.1");
    try {
      const err = await C10dStore.connect("127.0.0.1", ours.port, 1500).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(C10dProtocolError);
      expect((err as Error).message).toMatch(/does not speak torch's c10d TCPStore protocol.*did not answer handshake within/);
    } finally {
      ours.close();
    }
  });

  it("names a server that answers the handshake wrongly (another protocol version)", async () => {
    const server = net.createServer((s) => s.once("data", () => s.write(Buffer.from([1, 0, 0, 0]))));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await expect(C10dStore.connect("127.0.0.1", port, 2000)).rejects.toThrow(/answered the c10d handshake with 0x1 instead of echoing the ping nonce/);
    } finally {
      server.close();
    }
  });

  it("names a server that closes the connection on the handshake", async () => {
    const server = net.createServer((s) => s.once("data", () => s.destroy()));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      await expect(C10dStore.connect("127.0.0.1", port, 2000)).rejects.toThrow(/does not speak torch's c10d TCPStore protocol.*lost the connection/);
    } finally {
      server.close();
    }
  });

  it("gives up on a store that never comes, naming the address", async () => {
    const port = await findFreePort();
    await expect(C10dStore.connect("127.0.0.1", port, 600)).rejects.toThrow(new RegExp(`could not reach torch's TCPStore at 127\\.0\\.0\\.1:${port} within 0\\.6 s`));
  });
});
