import type { World } from "./launch";

/*
 * Where this process sits in a job, from the variables of whatever started it:
 *   torchrun     RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR/PORT (the agent's c10d TCPStore when
 *                TORCHELASTIC_USE_AGENT_STORE=True), TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_RUN_ID
 *   our launcher the same variables, plus SSQL_LAUNCHER=1 (rank 0 serves the store on MASTER_PORT)
 *   Slurm (srun) SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE, SLURM_JOB_NODELIST or
 *                SLURM_NODELIST; MASTER_ADDR defaults to the first node of the list and MASTER_PORT to one derived
 *                from SLURM_JOB_ID, as common launch scripts do
 *   Kubernetes   a PyTorchJob sets MASTER_ADDR, MASTER_PORT, WORLD_SIZE and RANK in each pod, one process per pod,
 *                so LOCAL_RANK defaults to 0 there (KUBERNETES_SERVICE_HOST tells a pod)
 *   env          RANK and WORLD_SIZE set by hand
 */
export type Launcher = "torchrun" | "ssql" | "slurm" | "kubernetes" | "env";

export interface ClusterEnv {
  world: World;
  launcher: Launcher;
  /** torchrun's agent serves a c10d TCPStore on MASTER_ADDR:MASTER_PORT: join it, do not serve one there. */
  agentStore: boolean;
  /** How often torchrun restarted the workers (0 on the first attempt, and for every other launcher). */
  restartCount: number;
  /** torchrun's --rdzv-id ("none" for a static launch); "" elsewhere. */
  runId: string;
}

function intFrom(env: NodeJS.ProcessEnv, name: string, min: number): number | undefined {
  const v = env[name];
  if (v === undefined || v === "") return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be an integer >= ${min}, got '${v}'`);
  return n;
}

/**
 * The first host of a Slurm node list: "gpu[07-10,12],cpu3" -> "gpu07", "nid[00100-00103]-ib" -> "nid00100-ib"
 * (what `scontrol show hostnames $SLURM_JOB_NODELIST | head -n 1` prints).
 */
export function firstSlurmHost(nodelist: string): string {
  const list = nodelist.trim();
  const m = /^([^,[\]]*)(?:\[([^\]]*)\])?([^,]*)/.exec(list);
  if (!list || !m || !(m[1] || m[2])) throw new Error(`cannot read a host from the Slurm node list '${nodelist}'`);
  if (m[2] === undefined) return m[1] + m[3];
  const first = m[2].split(",")[0].split("-")[0];
  if (!/^\d+$/.test(first)) throw new Error(`cannot read a host from the Slurm node list '${nodelist}' (range '${m[2]}')`);
  return m[1] + first + m[3];
}

/** The MASTER_PORT a Slurm job uses when its script sets none: the same on every node, different per job. */
export function slurmDefaultPort(jobId: number): number {
  return 15000 + (jobId % 20000);
}

function slurmWorld(env: NodeJS.ProcessEnv): World {
  const worldSize = intFrom(env, "SLURM_NTASKS", 1)!;
  const declared = intFrom(env, "WORLD_SIZE", 1);
  if (declared !== undefined && declared !== worldSize)
    throw new Error(`WORLD_SIZE ${declared} does not match SLURM_NTASKS ${worldSize} (srun started ${worldSize} tasks)`);
  const rank = intFrom(env, "SLURM_PROCID", 0)!;
  if (rank >= worldSize) throw new Error(`SLURM_PROCID ${rank} is not below SLURM_NTASKS ${worldSize}`);
  const nodelist = env.SLURM_JOB_NODELIST || env.SLURM_NODELIST;
  const masterAddr = env.MASTER_ADDR || (nodelist ? firstSlurmHost(nodelist) : undefined);
  if (worldSize > 1 && !masterAddr) throw new Error("a Slurm job of several tasks needs MASTER_ADDR or SLURM_NODELIST (the node of rank 0)");
  const jobId = intFrom(env, "SLURM_JOB_ID", 0);
  const masterPort = intFrom(env, "MASTER_PORT", 1) ?? (jobId !== undefined ? slurmDefaultPort(jobId) : undefined);
  if (worldSize > 1 && masterPort === undefined) throw new Error("a Slurm job of several tasks needs MASTER_PORT (or SLURM_JOB_ID to derive one)");
  return {
    rank,
    localRank: intFrom(env, "SLURM_LOCALID", 0) ?? rank,
    worldSize,
    localWorldSize: intFrom(env, "LOCAL_WORLD_SIZE", 1) ?? intFrom(env, "SLURM_NTASKS_PER_NODE", 1) ?? worldSize,
    masterAddr: masterAddr ?? "127.0.0.1",
    masterPort: masterPort ?? 0,
  };
}

function launcherOf(env: NodeJS.ProcessEnv): Launcher {
  if (env.TORCHELASTIC_RUN_ID !== undefined || env.TORCHELASTIC_USE_AGENT_STORE !== undefined) return "torchrun";
  if (env.SSQL_LAUNCHER === "1") return "ssql";
  if (env.RANK === undefined && env.SLURM_PROCID !== undefined && env.SLURM_NTASKS !== undefined) return "slurm";
  if (env.KUBERNETES_SERVICE_HOST !== undefined) return "kubernetes";
  return "env";
}

/** The job this process belongs to, or null for a plain single-process run. */
export function clusterFromEnv(env: NodeJS.ProcessEnv = process.env): ClusterEnv | null {
  const launcher = launcherOf(env);
  let world: World;
  if (launcher === "slurm") {
    world = slurmWorld(env);
  } else {
    const worldSize = intFrom(env, "WORLD_SIZE", 1);
    if (worldSize === undefined) return null;
    const rank = intFrom(env, "RANK", 0);
    if (rank === undefined) throw new Error("WORLD_SIZE is set but RANK is not");
    if (rank >= worldSize) throw new Error(`RANK ${rank} is not below WORLD_SIZE ${worldSize}`);
    // A PyTorchJob runs one process per pod: without LOCAL_RANK, this is the pod's only rank.
    const onePerPod = launcher === "kubernetes" && env.LOCAL_RANK === undefined;
    const localRank = intFrom(env, "LOCAL_RANK", 0) ?? (onePerPod ? 0 : rank);
    const localWorldSize = intFrom(env, "LOCAL_WORLD_SIZE", 1) ?? (onePerPod ? 1 : worldSize);
    const masterPort = intFrom(env, "MASTER_PORT", 1);
    if (worldSize > 1 && masterPort === undefined) throw new Error("WORLD_SIZE > 1 needs MASTER_PORT (and MASTER_ADDR) for the rendezvous");
    world = { rank, localRank, worldSize, localWorldSize, masterAddr: env.MASTER_ADDR || "127.0.0.1", masterPort: masterPort ?? 0 };
  }
  if (world.masterPort > 65535) throw new Error(`MASTER_PORT must be at most 65535, got ${world.masterPort}`);
  return {
    world,
    launcher,
    agentStore: launcher === "torchrun" && env.TORCHELASTIC_USE_AGENT_STORE === "True",
    restartCount: launcher === "torchrun" ? intFrom(env, "TORCHELASTIC_RESTART_COUNT", 0) ?? 0 : 0,
    runId: launcher === "torchrun" ? env.TORCHELASTIC_RUN_ID ?? "none" : "",
  };
}
