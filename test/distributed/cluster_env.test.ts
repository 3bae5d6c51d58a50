import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { clusterFromEnv, firstSlurmHost, slurmDefaultPort } from "../../lib/distributed/cluster_env";
import { findFreePort } from "../../lib/distributed/launch";
import { openStore } from "../../lib/distributed/rendezvous";
import { resumeAfterRestart } from "../../lib/distributed/restart";
import { StoreServer } from "../../lib/distributed/store";
import { ensureCompiled, root, tempDir, workers } from "./helpers";
import { python, TorchStore } from "./torch_store";

describe("the job from the launcher's variables", () => {
  it("torchrun: joins the agent's store, and counts restarts", () => {
    const c = clusterFromEnv({
      RANK: "1", LOCAL_RANK: "1", WORLD_SIZE: "2", LOCAL_WORLD_SIZE: "2", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "29611",
      TORCHELASTIC_USE_AGENT_STORE: "True", TORCHELASTIC_RESTART_COUNT: "3", TORCHELASTIC_RUN_ID: "none",
    })!;
    expect(c).toEqual({
      world: { rank: 1, localRank: 1, worldSize: 2, localWorldSize: 2, masterAddr: "127.0.0.1", masterPort: 29611 },
      launcher: "torchrun", agentStore: true, restartCount: 3, runId: "none",
    });
    // Without the agent store (TORCHELASTIC_USE_AGENT_STORE=False), rank 0 serves ours on MASTER_PORT as usual.
    expect(clusterFromEnv({ RANK: "0", WORLD_SIZE: "1", TORCHELASTIC_RUN_ID: "x", TORCHELASTIC_USE_AGENT_STORE: "False" })!.agentStore).toBe(false);
  });

  it("our launcher and hand-set variables never join an agent store", () => {
    expect(clusterFromEnv({ RANK: "0", WORLD_SIZE: "2", MASTER_PORT: "1", SSQL_LAUNCHER: "1" })).toMatchObject({ launcher: "ssql", agentStore: false, restartCount: 0 });
    expect(clusterFromEnv({ RANK: "0", WORLD_SIZE: "2", MASTER_PORT: "1" })).toMatchObject({ launcher: "env", agentStore: false });
    expect(clusterFromEnv({})).toBeNull();
  });

  it("Slurm: task variables, MASTER_ADDR from the node list and MASTER_PORT from the job id when the script sets none", () => {
    expect(clusterFromEnv({ SLURM_PROCID: "3", SLURM_NTASKS: "4", SLURM_LOCALID: "1", SLURM_NTASKS_PER_NODE: "2", SLURM_JOB_NODELIST: "gpu[07-08]", SLURM_JOB_ID: "123456" })).toEqual({
      world: { rank: 3, localRank: 1, worldSize: 4, localWorldSize: 2, masterAddr: "gpu07", masterPort: slurmDefaultPort(123456) },
      launcher: "slurm", agentStore: false, restartCount: 0, runId: "",
    });
    expect(slurmDefaultPort(123456)).toBe(15000 + (123456 % 20000));
    // The job script's MASTER_ADDR/PORT win.
    expect(clusterFromEnv({ SLURM_PROCID: "0", SLURM_NTASKS: "2", SLURM_NODELIST: "a,b", MASTER_ADDR: "10.0.0.9", MASTER_PORT: "29400" })!.world).toMatchObject({ masterAddr: "10.0.0.9", masterPort: 29400 });
    expect(() => clusterFromEnv({ SLURM_PROCID: "0", SLURM_NTASKS: "2", MASTER_PORT: "1" })).toThrow("needs MASTER_ADDR or SLURM_NODELIST");
    expect(() => clusterFromEnv({ SLURM_PROCID: "0", SLURM_NTASKS: "2", SLURM_NODELIST: "a" })).toThrow("needs MASTER_PORT (or SLURM_JOB_ID");
    expect(() => clusterFromEnv({ SLURM_PROCID: "0", SLURM_NTASKS: "4", WORLD_SIZE: "8", SLURM_NODELIST: "a", MASTER_PORT: "1" })).toThrow("WORLD_SIZE 8 does not match SLURM_NTASKS 4");
    expect(() => clusterFromEnv({ SLURM_PROCID: "4", SLURM_NTASKS: "4", SLURM_NODELIST: "a", MASTER_PORT: "1" })).toThrow("SLURM_PROCID 4 is not below SLURM_NTASKS 4");
  });

  it("reads the first host of a Slurm node list", () => {
    expect(firstSlurmHost("node01")).toBe("node01");
    expect(firstSlurmHost("gpu[07-10,12],cpu3")).toBe("gpu07");
    expect(firstSlurmHost("nid[00100-00103]-ib")).toBe("nid00100-ib");
    expect(firstSlurmHost("a,b[1-2]")).toBe("a");
    expect(firstSlurmHost("rack1-n[3,5]")).toBe("rack1-n3");
    expect(() => firstSlurmHost("")).toThrow("cannot read a host from the Slurm node list ''");
    expect(() => firstSlurmHost("n[x-y]")).toThrow("range 'x-y'");
  });

  it("Kubernetes PyTorchJob: one process per pod, so the local rank is 0", () => {
    expect(clusterFromEnv({ KUBERNETES_SERVICE_HOST: "10.96.0.1", MASTER_ADDR: "job-master-0", MASTER_PORT: "23456", WORLD_SIZE: "3", RANK: "2" })).toEqual({
      world: { rank: 2, localRank: 0, worldSize: 3, localWorldSize: 1, masterAddr: "job-master-0", masterPort: 23456 },
      launcher: "kubernetes", agentStore: false, restartCount: 0, runId: "",
    });
  });
});

describe("resume after a torchrun restart", () => {
  it("turns a restart with a checkpoint into a bare --resume, and leaves everything else alone", () => {
    const dir = tempDir("restart");
    const ck = path.join(dir, "checkpoint.json");
    const torchrun = (count: string) => ({ RANK: "1", WORLD_SIZE: "2", MASTER_PORT: "1", TORCHELASTIC_RUN_ID: "none", TORCHELASTIC_RESTART_COUNT: count });
    expect(resumeAfterRestart(false, ck, torchrun("1"))).toBe(false); // nothing to resume from yet
    fs.writeFileSync(ck, "{}");
    expect(resumeAfterRestart(false, ck, torchrun("1"))).toBe(true);
    expect(resumeAfterRestart(false, ck, torchrun("0"))).toBe(false);
    expect(resumeAfterRestart("other.json", ck, torchrun("2"))).toBe("other.json");
    expect(resumeAfterRestart(false, ck, {})).toBe(false);
  });
});

describe("rendezvous errors", () => {
  it("a rank whose WORLD_SIZE is not rank 0's", async () => {
    const port = await findFreePort();
    const world = (rank: number, worldSize: number) => ({ rank, localRank: rank, worldSize, localWorldSize: worldSize, masterAddr: "127.0.0.1", masterPort: port });
    const zero = await openStore(world(0, 2), 5000);
    try {
      await expect(openStore(world(1, 3), 5000)).rejects.toThrow("rank 1 has WORLD_SIZE 3 but rank 0 has WORLD_SIZE 2");
    } finally {
      await zero.close();
    }
  });

  it.skipIf(!python)("under torchrun: a rank 0 that never publishes the job's store, and a rank 0 of another world size", async () => {
    const agent = await TorchStore.start(false);
    try {
      const where = { host: "127.0.0.1", port: agent.port, key: "ssql/none/store" };
      const world = { rank: 1, localRank: 1, worldSize: 2, localWorldSize: 2, masterAddr: "127.0.0.1", masterPort: agent.port };
      await expect(openStore(world, 1000, where)).rejects.toThrow(
        `rank 1 waited 1 s for rank 0 to publish the job's store under 'ssql/none/store' in torchrun's store at 127.0.0.1:${agent.port}; rank 0 never did`,
      );
      // A store left by a killed attempt (nobody listens there any more): wait for this attempt's rank 0.
      const dead = await findFreePort();
      expect(await agent.ask(`set ssql/none/store ${JSON.stringify({ host: "127.0.0.1", port: dead, worldSize: 2, nonce: "old" })}`)).toBe("ok");
      await expect(openStore(world, 1000, where)).rejects.toThrow(`only a store that does not answer was published there ({"host":"127.0.0.1","port":${dead}`);
      // This attempt's rank 0 (world size 3) publishes while rank 1 still waits: rank 1 moves over, then sees the mismatch.
      const joining = openStore(world, 20_000, where);
      const rank0 = await openStore({ ...world, rank: 0, worldSize: 3 }, 20_000, where);
      try {
        await expect(joining).rejects.toThrow("rank 1 has WORLD_SIZE 2 but rank 0 has WORLD_SIZE 3");
        // A rank of the same world size joins it.
        const ok = await openStore({ ...world, rank: 2, worldSize: 3 }, 5000, where);
        expect(ok.port).toBe(rank0.server!.port);
        await ok.close();
      } finally {
        await rank0.close();
      }
      expect(await agent.ask("set ssql/none/store garbage")).toBe("ok");
      await expect(openStore(world, 1000, where)).rejects.toThrow("holds 'garbage', not the address of rank 0's store");
    } finally {
      agent.stop();
    }
  }, 60_000);

  it("under torchrun: MASTER_PORT that is not a c10d store (our own store there) is named", async () => {
    const ours = await StoreServer.listen(0, "127.0.0.1");
    try {
      const world = { rank: 1, localRank: 1, worldSize: 2, localWorldSize: 2, masterAddr: "127.0.0.1", masterPort: ours.port };
      await expect(openStore(world, 1500, { host: "127.0.0.1", port: ours.port, key: "k" })).rejects.toThrow(/does not speak torch's c10d TCPStore protocol/);
    } finally {
      ours.close();
    }
  });

  it("a node that never comes: the ranks that came name the ones missing, within the timeout", async () => {
    ensureCompiled();
    const port = await findFreePort();
    // Rank 0 of a world of 3 started by hand (as a Kubernetes pod would be), and nobody else.
    const r = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const p = spawn(process.execPath, [path.join(workers, "cluster_world.js")], {
        cwd: root,
        env: { ...process.env, SSQL_LAUNCHER: "", KUBERNETES_SERVICE_HOST: "10.96.0.1", MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), WORLD_SIZE: "3", RANK: "0", SSQL_DIST_TIMEOUT: "2" },
        stdio: ["ignore", "pipe", "pipe"],
      });
      let output = "";
      p.stdout.on("data", (d: Buffer) => (output += d.toString()));
      p.stderr.on("data", (d: Buffer) => (output += d.toString()));
      const timer = setTimeout(() => p.kill("SIGKILL"), 60_000);
      p.on("close", (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
    expect(r.code).toBe(1);
    expect(r.output).toContain("barrier 'init' timed out after 2 s: ranks 1, 2 of 3 did not arrive");
  }, 90_000);
});

/** Starts one process per rank with the given variables and returns what each printed. */
async function handStarted(n: number, envOf: (rank: number) => NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }[]> {
  ensureCompiled();
  return Promise.all(
    Array.from({ length: n }, (_, rank) =>
      new Promise<{ code: number | null; output: string }>((resolve) => {
        const p = spawn(process.execPath, [path.join(workers, "cluster_world.js")], {
          cwd: root,
          env: { ...process.env, SSQL_LAUNCHER: "", SSQL_DIST_TIMEOUT: "60", OMP_NUM_THREADS: "1", ...envOf(rank) },
          stdio: ["ignore", "pipe", "pipe"],
        });
        let output = "";
        p.stdout.on("data", (d: Buffer) => (output += d.toString()));
        p.stderr.on("data", (d: Buffer) => (output += d.toString()));
        const timer = setTimeout(() => p.kill("SIGKILL"), 90_000);
        p.on("close", (code) => {
          clearTimeout(timer);
          resolve({ code, output });
        });
      }),
    ),
  );
}

describe("jobs started by hand as their launchers would", () => {
  it("Slurm (srun's variables, MASTER_ADDR from SLURM_NODELIST): 3 tasks on 2 'nodes' all-reduce together", async () => {
    const port = await findFreePort();
    const runs = await handStarted(3, (rank) => ({
      SLURM_PROCID: String(rank), SLURM_NTASKS: "3", SLURM_LOCALID: String(rank % 2), SLURM_NTASKS_PER_NODE: "2",
      SLURM_NODELIST: "localhost", SLURM_JOB_ID: "4242", MASTER_PORT: String(port),
    }));
    for (const [rank, r] of runs.entries()) {
      expect(r.code, r.output).toBe(0);
      const line = JSON.parse(r.output.trim().split("\n").at(-1)!) as { launcher: string; world: { rank: number; localRank: number; masterAddr: string }; sum: number };
      expect(line).toMatchObject({ launcher: "slurm", world: { rank, localRank: rank % 2, masterAddr: "localhost" }, sum: 6 });
    }
  }, 120_000);

  it("Kubernetes PyTorchJob (MASTER_ADDR, MASTER_PORT, WORLD_SIZE, RANK per pod): 2 pods all-reduce together", async () => {
    const port = await findFreePort();
    const runs = await handStarted(2, (rank) => ({ KUBERNETES_SERVICE_HOST: "10.96.0.1", MASTER_ADDR: "127.0.0.1", MASTER_PORT: String(port), WORLD_SIZE: "2", RANK: String(rank) }));
    for (const [rank, r] of runs.entries()) {
      expect(r.code, r.output).toBe(0);
      expect(JSON.parse(r.output.trim().split("\n").at(-1)!)).toMatchObject({ launcher: "kubernetes", world: { rank, localRank: 0, worldSize: 2 }, sum: 3 });
    }
  }, 120_000);
});
