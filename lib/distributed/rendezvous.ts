import { C10dStore, C10dTimeoutError } from "./c10d_store";
import type { ClusterEnv } from "./cluster_env";
import type { World } from "./launch";
import { Store, StoreServer, StoreTimeoutError } from "./store";

const isLoopback = (addr: string) => addr === "localhost" || addr.startsWith("127.") || addr === "::1";

/** Where torchrun's agent store is, and the key under which this attempt's rank 0 publishes the job's store. */
export interface AgentStore {
  host: string;
  port: number;
  key: string;
}

/** The agent store to join, when torchrun serves one on MASTER_ADDR:MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE). */
export function agentStoreOf(cluster: ClusterEnv | null): AgentStore | null {
  if (!cluster?.agentStore || cluster.world.worldSize < 2) return null;
  const { masterAddr, masterPort } = cluster.world;
  // A restart starts a new attempt: keys of the killed attempt must not be read (as torch's own env:// does).
  return { host: masterAddr, port: masterPort, key: `ssql/${cluster.runId}/attempt_${cluster.restartCount}/store` };
}

interface Published {
  host: string;
  port: number;
  worldSize: number;
}

/**
 * The job's rendezvous store, connected; rank 0 hosts it. Without an agent store, rank 0 serves it on
 * MASTER_ADDR:MASTER_PORT. Under torchrun, MASTER_PORT is the agent's c10d TCPStore: every rank joins that as a
 * client, rank 0 serves the job's store on a free port and publishes its address there, and the others read it.
 * (Gloo's address exchange, NCCL's id and our barriers then go through the job's store, whose native client is
 * native/core/store_client.h.) Every rank checks that its WORLD_SIZE is rank 0's.
 */
export async function openStore(world: World, timeoutMs: number, agent: AgentStore | null = null): Promise<Store> {
  let server: StoreServer | null = null;
  let host = world.masterAddr;
  let port = world.masterPort;
  if (agent) {
    ({ host, port, server } = await viaAgentStore(world, agent, timeoutMs));
  } else if (world.rank === 0) {
    server = await StoreServer.listen(port, isLoopback(host) ? host : undefined);
    port = server.port;
  }
  let store: Store;
  try {
    store = await Store.connect(host, port, timeoutMs);
  } catch (e) {
    server?.close();
    throw e;
  }
  store.server = server;
  try {
    await checkWorldSize(store, world, timeoutMs);
  } catch (e) {
    void store.close();
    throw e;
  }
  return store;
}

async function viaAgentStore(world: World, agent: AgentStore, timeoutMs: number): Promise<{ host: string; port: number; server: StoreServer | null }> {
  const c10d = await C10dStore.connect(agent.host, agent.port, timeoutMs);
  try {
    if (world.rank === 0) {
      // Ranks on other nodes reach rank 0 at the address it reaches the agent from; on one machine, at loopback.
      const local = c10d.localAddress;
      const sameMachine = isLoopback(agent.host);
      const server = await StoreServer.listen(0, sameMachine ? "127.0.0.1" : undefined);
      const host = sameMachine ? "127.0.0.1" : local && !isLoopback(local) ? local : agent.host;
      const published: Published = { host, port: server.port, worldSize: world.worldSize };
      try {
        await c10d.set(agent.key, JSON.stringify(published));
      } catch (e) {
        server.close();
        throw e;
      }
      return { host, port: server.port, server };
    }
    let raw: Buffer;
    try {
      raw = await c10d.get(agent.key, timeoutMs);
    } catch (e) {
      if (!(e instanceof C10dTimeoutError)) throw e;
      throw new StoreTimeoutError(
        `rank ${world.rank} waited ${timeoutMs / 1000} s for rank 0 to publish the job's store under '${agent.key}' in torchrun's store at ${c10d.where}; rank 0 never did (is it running?)`,
        [agent.key],
      );
    }
    const p = parsePublished(raw.toString("utf8"));
    if (!p) throw new Error(`rank ${world.rank}: '${agent.key}' in torchrun's store at ${c10d.where} holds '${raw.toString("utf8").slice(0, 80)}', not the address of rank 0's store`);
    if (p.worldSize !== world.worldSize) throw worldSizeError(world, p.worldSize);
    return { host: p.host, port: p.port, server: null };
  } finally {
    c10d.close();
  }
}

function parsePublished(text: string): Published | null {
  try {
    const p = JSON.parse(text) as Partial<Published>;
    return typeof p.host === "string" && Number.isInteger(p.port) && Number.isInteger(p.worldSize) ? (p as Published) : null;
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
