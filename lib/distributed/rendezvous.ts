import { randomBytes } from "node:crypto";
import { C10dStore, C10dTimeoutError } from "./c10d_store";
import type { ClusterEnv } from "./cluster_env";
import type { World } from "./launch";
import { Store, StoreServer, StoreTimeoutError } from "./store";

const isLoopback = (addr: string) => addr === "localhost" || addr.startsWith("127.") || addr === "::1";

/** Where torchrun's agent store is, and the key under which rank 0 publishes the job's store. */
export interface AgentStore {
  host: string;
  port: number;
  key: string;
}

/** The agent store to join, when torchrun serves one on MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE). */
export function agentStoreOf(cluster: ClusterEnv | null): AgentStore | null {
  if (!cluster?.agentStore || cluster.world.worldSize < 2) return null;
  const { masterAddr, masterPort } = cluster.world;
  return { host: masterAddr, port: masterPort, key: `ssql/${cluster.runId}/store` };
}

/** What rank 0 publishes in the agent's store; `nonce` is also in its own store, to tell it from a dead attempt's. */
interface Published {
  host: string;
  port: number;
  worldSize: number;
  nonce: string;
}

const nonceKey = "rendezvous/nonce";

/**
 * The job's rendezvous store, connected; rank 0 hosts it. Without an agent store, rank 0 serves it on
 * MASTER_ADDR:MASTER_PORT. Under torchrun, MASTER_PORT is the agent's c10d TCPStore: every rank joins that as a
 * client, rank 0 serves the job's store on a free port and publishes its address there, and the others read it.
 * (Gloo's address exchange, NCCL's id and our barriers then go through the job's store, whose native client is
 * native/core/store_client.h.) Every rank checks that its WORLD_SIZE is rank 0's.
 */
export async function openStore(world: World, timeoutMs: number, agent: AgentStore | null = null): Promise<Store> {
  const store = agent ? await viaAgentStore(world, agent, timeoutMs) : await direct(world, timeoutMs);
  try {
    await checkWorldSize(store, world, timeoutMs);
  } catch (e) {
    void store.close();
    throw e;
  }
  return store;
}

async function direct(world: World, timeoutMs: number): Promise<Store> {
  let server: StoreServer | null = null;
  let port = world.masterPort;
  if (world.rank === 0) {
    server = await StoreServer.listen(port, isLoopback(world.masterAddr) ? world.masterAddr : undefined);
    port = server.port;
  }
  return hosting(server, () => Store.connect(world.masterAddr, port, timeoutMs));
}

/** Connects; the store hosted by this process (if any) goes with the client, or is closed when connecting fails. */
async function hosting(server: StoreServer | null, connect: () => Promise<Store>): Promise<Store> {
  try {
    const store = await connect();
    store.server = server;
    return store;
  } catch (e) {
    server?.close();
    throw e;
  }
}

/*
 * torchrun's static rendezvous keeps its store across restarts, so the key may still hold the address a killed
 * attempt's rank 0 published; its elastic (c10d) rendezvous starts a fresh store per round, but the agents' restart
 * counts may differ there, so the key cannot carry the attempt. Instead a rank accepts a published store only if
 * it answers with the published nonce, and otherwise waits for rank 0 of this attempt to publish anew.
 */
async function viaAgentStore(world: World, agent: AgentStore, timeoutMs: number): Promise<Store> {
  const c10d = await C10dStore.connect(agent.host, agent.port, timeoutMs);
  try {
    if (world.rank === 0) {
      // Ranks on other nodes reach rank 0 at the address it reaches the agent from; on one machine, at loopback.
      const local = c10d.localAddress;
      const sameMachine = isLoopback(agent.host);
      const server = await StoreServer.listen(0, sameMachine ? "127.0.0.1" : undefined);
      const host = sameMachine ? "127.0.0.1" : local && !isLoopback(local) ? local : agent.host;
      return await hosting(server, async () => {
        const store = await Store.connect(host, server.port, timeoutMs);
        const published: Published = { host, port: server.port, worldSize: world.worldSize, nonce: randomBytes(8).toString("hex") };
        try {
          await store.set(nonceKey, published.nonce);
          await c10d.set(agent.key, JSON.stringify(published));
        } catch (e) {
          void store.close();
          throw e;
        }
        return store;
      });
    }
    return await joinPublished(world, agent, c10d, timeoutMs);
  } finally {
    c10d.close();
  }
}

async function joinPublished(world: World, agent: AgentStore, c10d: C10dStore, timeoutMs: number): Promise<Store> {
  const deadline = Date.now() + timeoutMs;
  let stale = "";
  for (;;) {
    const left = deadline - Date.now();
    let raw: string;
    try {
      raw = (await c10d.get(agent.key, Math.max(1, left))).toString("utf8");
    } catch (e) {
      if (!(e instanceof C10dTimeoutError)) throw e;
      throw new StoreTimeoutError(
        `rank ${world.rank} waited ${timeoutMs / 1000} s for rank 0 to publish the job's store under '${agent.key}' in torchrun's store at ${c10d.where}; rank 0 never did (is it running?)`,
        [agent.key],
      );
    }
    if (raw !== stale) {
      const p = parsePublished(raw);
      if (!p) throw new Error(`rank ${world.rank}: '${agent.key}' in torchrun's store at ${c10d.where} holds '${raw.slice(0, 80)}', not the address of rank 0's store`);
      const store = await Store.connect(p.host, p.port, Math.max(1, Math.min(deadline - Date.now(), 5000))).catch(() => null);
      const answer = store && (await store.get(nonceKey, 5000).then((b) => b.toString("utf8"), () => null));
      if (store && answer === p.nonce) {
        if (p.worldSize !== world.worldSize) {
          void store.close();
          throw worldSizeError(world, p.worldSize);
        }
        return store;
      }
      void store?.close();
      stale = raw; // a dead attempt's rank 0 (or not ours): wait for this attempt's to publish
    }
    if (Date.now() >= deadline)
      throw new StoreTimeoutError(
        `rank ${world.rank} waited ${timeoutMs / 1000} s for rank 0 to publish the job's store under '${agent.key}' in torchrun's store at ${c10d.where}; only a store that does not answer was published there (${stale.slice(0, 120)})`,
        [agent.key],
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

function parsePublished(text: string): Published | null {
  try {
    const p = JSON.parse(text) as Partial<Published>;
    return typeof p.host === "string" && Number.isInteger(p.port) && Number.isInteger(p.worldSize) && typeof p.nonce === "string" ? (p as Published) : null;
  } catch {
    return null;
  }
}

function worldSizeError(world: World, theirs: number): Error {
  return new Error(`rank ${world.rank} has WORLD_SIZE ${world.worldSize} but rank 0 has WORLD_SIZE ${theirs}: every rank must be started with the same world size`);
}

async function checkWorldSize(store: Store, world: World, timeoutMs: number): Promise<void> {
  if (world.rank === 0) return store.set("world/size", String(world.worldSize));
  let theirs: number;
  try {
    theirs = Number((await store.get("world/size", timeoutMs)).toString("utf8"));
  } catch (e) {
    if (!(e instanceof StoreTimeoutError)) throw e;
    throw new StoreTimeoutError(`rank ${world.rank} waited ${timeoutMs / 1000} s for rank 0 at ${store.where} to announce the world size; rank 0 never did`, e.missing);
  }
  if (theirs !== world.worldSize) throw worldSizeError(world, theirs);
}
