import { describe, expect, it } from "vitest";
import { parseLaunchArgs } from "../../lib/cli/launch";
import { worldFromEnv } from "../../lib/distributed/launch";
import { cpus, ensureCompiled, launch } from "./helpers";

describe("worldFromEnv", () => {
  it("reads the torchrun variables, and is null without them", () => {
    expect(worldFromEnv({})).toBeNull();
    expect(worldFromEnv({ RANK: "3", LOCAL_RANK: "1", WORLD_SIZE: "4", LOCAL_WORLD_SIZE: "2", MASTER_ADDR: "10.0.0.1", MASTER_PORT: "29500" })).toEqual({
      rank: 3, localRank: 1, worldSize: 4, localWorldSize: 2, masterAddr: "10.0.0.1", masterPort: 29500,
    });
    expect(worldFromEnv({ RANK: "0", WORLD_SIZE: "1" })).toEqual({ rank: 0, localRank: 0, worldSize: 1, localWorldSize: 1, masterAddr: "127.0.0.1", masterPort: 0 });
  });

  it("falls back to SLURM's task variables", () => {
    expect(worldFromEnv({ SLURM_PROCID: "5", SLURM_NTASKS: "8", SLURM_LOCALID: "1", SLURM_NTASKS_PER_NODE: "4", MASTER_ADDR: "node01", MASTER_PORT: "29400" })).toEqual({
      rank: 5, localRank: 1, worldSize: 8, localWorldSize: 4, masterAddr: "node01", masterPort: 29400,
    });
  });

  it("names what is wrong", () => {
    expect(() => worldFromEnv({ RANK: "2", WORLD_SIZE: "2", MASTER_PORT: "1" })).toThrow("RANK 2 is not below WORLD_SIZE 2");
    expect(() => worldFromEnv({ WORLD_SIZE: "2", MASTER_PORT: "1" })).toThrow("WORLD_SIZE is set but RANK is not");
    expect(() => worldFromEnv({ RANK: "0", WORLD_SIZE: "2" })).toThrow("WORLD_SIZE > 1 needs MASTER_PORT");
    expect(() => worldFromEnv({ RANK: "x", WORLD_SIZE: "2" })).toThrow("RANK must be an integer >= 0, got 'x'");
  });
});

describe("launch command line", () => {
  it("splits launcher flags (dashes or underscores) from the command", () => {
    expect(parseLaunchArgs(["--nproc-per-node", "4", "--master_port=1234", "ssl", "--config", "a.yaml"])).toEqual({
      nproc: 4, opts: { masterPort: 1234 }, rest: ["ssl", "--config", "a.yaml"],
    });
    expect(parseLaunchArgs(["--nnodes=2", "--node-rank", "1", "--master-addr", "10.1.1.1", "linear"]).opts).toEqual({ nnodes: 2, nodeRank: 1, masterAddr: "10.1.1.1" });
    expect(() => parseLaunchArgs(["--nproc-per-node", "2"])).toThrow("which command should the workers run?");
    expect(() => parseLaunchArgs(["--bogus", "1", "ssl"])).toThrow("unknown option --bogus");
    expect(() => parseLaunchArgs(["--nnodes", "two", "ssl"])).toThrow("--nnodes must be an integer, got 'two'");
  });
});

describe("spawnWorkers", () => {
  it("sets the torchrun variables per rank and prefixes the output of ranks above 0", async () => {
    ensureCompiled();
    const run = await launch("env.js", 2, {}, { nnodes: 3, nodeRank: 1, masterAddr: "127.0.0.1", masterPort: 29999 });
    expect(run.exitCode).toBe(0);
    // Only global rank 0 prints unprefixed; this node holds ranks 2 and 3.
    const byRank = new Map(run.stdout.trim().split("\n").map((l) => {
      const m = /^\[rank (\d)\] (.*)$/.exec(l)!;
      return [Number(m[1]), JSON.parse(m[2]) as Record<string, string>];
    }));
    expect([...byRank.keys()].sort()).toEqual([2, 3]);
    expect(byRank.get(2)).toMatchObject({ RANK: "2", LOCAL_RANK: "0", WORLD_SIZE: "6", LOCAL_WORLD_SIZE: "2", GROUP_RANK: "1", MASTER_ADDR: "127.0.0.1", MASTER_PORT: "29999" });
    expect(byRank.get(3)).toMatchObject({ RANK: "3", LOCAL_RANK: "1", WORLD_SIZE: "6" });
    expect(run.stderr).toContain("[rank 3] rank 3 says hello\n[rank 3] and goodbye\n");
  });

  it("picks a free port on one node and limits each worker's threads", async () => {
    ensureCompiled();
    const run = await launch("env.js", 2);
    const envs = run.stdout.trim().split("\n").map((l) => JSON.parse(l.replace(/^\[rank \d\] /, "")) as Record<string, string>);
    expect(Number(envs[0].MASTER_PORT)).toBeGreaterThan(0);
    expect(envs[0].MASTER_PORT).toBe(envs[1].MASTER_PORT);
    expect(envs[0].WORLD_SIZE).toBe("2");
    if (!process.env.OMP_NUM_THREADS && !process.env.SSQL_THREADS) expect(envs[0].OMP_NUM_THREADS).toBe(String(Math.max(1, Math.floor(cpus / 2))));
  });

  it("refuses a multi-node launch without the address of node 0", async () => {
    await expect(launch("env.js", 1, {}, { nnodes: 2, nodeRank: 0 })).rejects.toThrow("needs --master-addr");
  });
});
