import { beforeAll, describe, expect, it } from "vitest";
import { normErr } from "../helpers/numeric";
import { ensureCompiled, launch, readRanks, tempDir } from "./helpers";

interface Out {
  size: number;
  buckets: string[][];
  params: Record<string, number[]>;
  gradSeen: Record<string, boolean>;
  bucketsStartedInBackward: number;
  memory: { tensors: number; storages: number; bytes: number }[];
  localBuffers: Record<string, number[]>;
  buffers: Record<string, number[]>;
}

/** workers/ddp_train.js: k SGD steps on a global batch of 8, on `nproc` ranks of 8/nproc samples each. */
async function train(nproc: number, env: NodeJS.ProcessEnv): Promise<Out[]> {
  const dir = tempDir(`ddp${nproc}`);
  const run = await launch("ddp_train.js", nproc, { OUT_DIR: dir, STEPS: "5", GLOBAL_BATCH: "8", ...env });
  expect(run.stderr).toBe("");
  expect(run.exitCode).toBe(0);
  return readRanks<Out>(dir, nproc);
}

describe("DistributedDataParallel on Gloo", () => {
  beforeAll(() => ensureCompiled());

  it("2 processes with batch b take the same SGD steps as 1 process with batch 2b, in several buckets", async () => {
    const env = { BUCKET_MB: "0.0001" }; // ~100 bytes: several buckets
    const [single] = await train(1, env);
    const [r0, r1] = await train(2, env);
    // Reverse registration order, cut at the cap.
    expect(r0.buckets).toEqual([["unused", "branch", "b2", "w2"], ["beta", "gamma"], ["b1", "w1"]]);
    // Every bucket was already on its way when backward returned (overlap, not one reduction at the end).
    expect(r0.bucketsStartedInBackward).toBe(3);
    for (const name of Object.keys(single.params)) {
      // Ranks started from different weights; after the initial broadcast and averaged steps they stay identical.
      expect(r1.params[name]).toEqual(r0.params[name]);
      expect(normErr(r0.params[name], single.params[name])).toBeLessThan(1e-6);
    }
    // Nothing leaks from step to step (stand-in gradients, the used-parameter map, bucket messages).
    for (const o of [r0, r1]) expect(new Set(o.memory.map((m) => JSON.stringify(m))).size).toBe(1);
    // "branch" is used by rank 0's samples only: rank 1 contributes zeros and still steps.
    expect(r1.gradSeen.branch).toBe(true);
    // Unused everywhere (and gamma/beta without SyncBN): .grad stays null, as PyTorch's find_unused_parameters.
    for (const o of [single, r0, r1]) {
      expect(o.gradSeen.unused).toBe(false);
      expect(o.gradSeen.gamma).toBe(false);
    }
    // broadcast_buffers: each rank's own statistic differs until rank 0's overwrites it.
    expect(normErr(r1.localBuffers.inputMean, r0.localBuffers.inputMean)).toBeGreaterThan(1e-2);
    expect(r1.buffers.inputMean).toEqual(r0.localBuffers.inputMean);
  });

  it("with SyncBN in the model the 2-process run still matches the 1-process run (one bucket)", async () => {
    const env = { SYNCBN: "1" };
    const [single] = await train(1, env);
    const [r0, r1] = await train(2, env);
    expect(r0.buckets).toEqual([["unused", "branch", "b2", "w2", "beta", "gamma", "b1", "w1"]]);
    for (const name of Object.keys(single.params)) {
      expect(r1.params[name]).toEqual(r0.params[name]);
      expect(normErr(r0.params[name], single.params[name])).toBeLessThan(2e-6);
    }
    expect(r0.gradSeen.gamma).toBe(true);
    for (const o of [r0, r1]) expect(new Set(o.memory.map((m) => JSON.stringify(m))).size).toBe(1);
    for (const k of ["runningMean", "runningVar"]) expect(normErr(r0.localBuffers[k], single.localBuffers[k])).toBeLessThan(1e-6);
  });
});
