import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config";
import { SGD } from "../../lib/optim/sgd";
import { buildSslMethod } from "../../lib/ssl/build";
import { keyPermutation } from "../../lib/ssl/key_shuffle";
import type { MoCo } from "../../lib/ssl/moco";
import { momentumUpdate } from "../../lib/ssl/momentum";
import { backward, noGrad } from "../../lib/tensor/autograd";
import { add, mul, mulScalar } from "../../lib/tensor/ops/elementwise";
import { matmul } from "../../lib/tensor/ops/linear";
import { crossEntropy } from "../../lib/tensor/ops/loss";
import { normalize } from "../../lib/tensor/ops/norm";
import { Generator } from "../../lib/tensor/ops/random";
import { sum } from "../../lib/tensor/ops/reduce";
import { concat } from "../../lib/tensor/ops/shape";
import { tidy } from "../../lib/tensor/scope";
import { tensor, zeros } from "../../lib/tensor/tensor";
import { normErr } from "../helpers/numeric";
import { ensureCompiled, launch, readRanks, reproducibleConvolutions, tempDir } from "./helpers";
import * as d from "./workers/moco_data";

interface Step {
  loss: number;
  permutation: number[];
  queue: number[];
  queuePtr: number;
}
interface Out {
  rank: number;
  steps: Step[];
  queuePtr: number;
  keySteps: number;
  error: string | null;
}

const G = d.PER_RANK * d.RANKS;
const K = 32;
const DIM = 16;

async function train(env: NodeJS.ProcessEnv = {}): Promise<{ dir: string; ranks: Out[] }> {
  const dir = tempDir("moco");
  const run = await launch("moco_train.js", d.RANKS, { OUT_DIR: dir, ...env });
  expect(run.stderr).toBe("");
  expect(run.exitCode).toBe(0);
  return { dir, ranks: readRanks<Out>(dir, d.RANKS) };
}

/** Columns [from, from + n) of a [DIM, K] queue as n rows of DIM. */
function queueColumns(queue: ArrayLike<number>, from: number, n: number): Float32Array {
  const out = new Float32Array(n * DIM);
  for (let j = 0; j < n; j++) for (let c = 0; c < DIM; c++) out[j * DIM + c] = queue[c * K + from + j];
  return out;
}

/**
 * The 2-process computation redone in one process by hand: every step both ranks' queries through E_q (each half
 * on its own, as each rank's BN sees only its batch), the key images permuted by `perms[s]` and E_k run on each
 * half of the permuted batch, the keys put back in image order, per-rank InfoNCE against the shared queue, the mean
 * of the two losses back-propagated (DDP's averaged gradients), SGD, and the global batch's keys written at ptr.
 */
function reference(perms: readonly Int32Array[]) {
  const cfg = loadConfig(d.configFile(), d.overrides(K));
  const moco = buildSslMethod(cfg, new Generator(cfg.SEED ?? 0)).method as MoCo;
  moco.train();
  const T = cfg.SSL.SETTING.T;
  const params = moco.parameters();
  const optimizer = new SGD(params, d.SGD_OPTIONS);
  const queue = Float32Array.from(moco.queue.toArraySync() as Float32Array);
  const shape = [d.PER_RANK, ...d.IMAGE];
  const rankRows = (r: number) => Array.from({ length: d.PER_RANK }, (_, i) => r * d.PER_RANK + i);
  const steps: { losses: number[]; keys: Float32Array; queue: Float32Array; unshuffledKeys: Float32Array }[] = [];
  let grads0: Float32Array | null = null;
  let ptr = 0;
  for (let s = 0; s < perms.length; s++) {
    const perm = perms[s];
    const { xq, xk } = d.globalViews(s);
    const encodeKeys = (rows: readonly number[]) =>
      noGrad(() => tidy(() => normalize(moco.keyEncoder.forward(tensor(d.imageRows(xk, rows), shape)), 1).toArraySync() as Float32Array));
    momentumUpdate(moco.keyEncoder, moco.encoder, cfg.SSL.SETTING.MOMENTUM);
    // Row j of the permuted batch is image perm[j]; its key goes back to row perm[j].
    const keys = new Float32Array(G * DIM);
    for (let r = 0; r < d.RANKS; r++) {
      const slice = Array.from(perm.subarray(r * d.PER_RANK, (r + 1) * d.PER_RANK));
      const k = encodeKeys(slice);
      slice.forEach((img, i) => keys.set(k.subarray(i * DIM, (i + 1) * DIM), img * DIM));
    }
    // What each rank would get without the shuffle (its own images in its own BN batch).
    const unshuffledKeys = new Float32Array(G * DIM);
    for (let r = 0; r < d.RANKS; r++) unshuffledKeys.set(encodeKeys(rankRows(r)), r * d.PER_RANK * DIM);
    const losses = tidy(() => {
      const queueT = tensor(queue, [DIM, K]);
      const perRank = Array.from({ length: d.RANKS }, (_, r) => {
        const q = normalize(moco.encoder.forward(tensor(d.imageRows(xq, rankRows(r)), shape)), 1);
        const k = tensor(keys.slice(r * d.PER_RANK * DIM, (r + 1) * d.PER_RANK * DIM), [d.PER_RANK, DIM]);
        const logits = mulScalar(concat([sum(mul(q, k), 1, true), matmul(q, queueT)], 1), 1 / T);
        return crossEntropy(logits, zeros([d.PER_RANK], "cpu", "int32"));
      });
      backward(mulScalar(add(perRank[0], perRank[1]), 1 / d.RANKS));
      return perRank.map((l) => l.itemSync());
    });
    if (s === 0) {
      const gs = params.filter((p) => p.grad).map((p) => p.grad!.toArraySync() as Float32Array);
      grads0 = new Float32Array(gs.reduce((n, g) => n + g.length, 0));
      gs.reduce((o, g) => (grads0!.set(g, o), o + g.length), 0);
    }
    optimizer.step();
    optimizer.zeroGrad();
    for (let j = 0; j < G; j++) for (let c = 0; c < DIM; c++) queue[c * K + ptr + j] = keys[j * DIM + c];
    ptr = (ptr + G) % K;
    steps.push({ losses, keys, queue: Float32Array.from(queue), unshuffledKeys });
  }
  optimizer.dispose();
  moco.dispose();
  return { steps, grads0: grads0!, ptr };
}

describe("MoCo on 2 processes (shuffle-BN, queue of the global batch)", () => {
  // The reference below is computed in this process and compared at 1e-5 with the ranks'.
  reproducibleConvolutions();
  beforeAll(() => ensureCompiled());

  it("keeps one queue on both ranks, filled with the global batch's keys, and matches the computation redone in one process", async () => {
    const { dir, ranks } = await train({ DUMP_GRADS: "1" });
    const grads = new Float32Array(fs.readFileSync(path.join(dir, "grads0.bin")).buffer.slice(0));
    fs.rmSync(dir, { recursive: true, force: true }); // the gradients of a ResNet-18: 45 MB
    const [r0, r1] = ranks;
    for (const r of ranks) {
      expect(r.error).toBeNull();
      expect(r.steps.length).toBe(d.STEPS);
      expect(r.keySteps).toBe(d.STEPS);
    }
    // The same queue and pointer on both ranks after every step.
    for (let s = 0; s < d.STEPS; s++) {
      expect(r1.steps[s].queue).toEqual(r0.steps[s].queue);
      expect(r1.steps[s].queuePtr).toBe(r0.steps[s].queuePtr);
      expect(r0.steps[s].queuePtr).toBe(((s + 1) * G) % K);
    }
    expect(r0.queuePtr).toBe((d.STEPS * G) % K);

    // Both ranks used rank 0's permutation, reproducible from the seed, and it mixes the ranks' images.
    const seed = loadConfig(d.configFile(), d.overrides(K)).SEED ?? 0;
    const perms = r0.steps.map((st, s) => {
      expect(r1.steps[s].permutation).toEqual(st.permutation);
      expect(st.permutation).toEqual(Array.from(keyPermutation(seed, s, G)));
      expect(st.permutation.slice(0, d.PER_RANK).some((img) => img >= d.PER_RANK)).toBe(true);
      return Int32Array.from(st.permutation);
    });

    const ref = reference(perms);
    // Step 0's DDP-averaged gradients are those of the mean of the two ranks' losses.
    expect(grads.length).toBe(ref.grads0.length);
    expect(normErr(grads, ref.grads0)).toBeLessThan(1e-5);
    for (let s = 0; s < d.STEPS; s++) {
      const from = s * G;
      const keys2p = queueColumns(r0.steps[s].queue, from, G);
      // The queue took both ranks' keys in global-batch order: rank 0's images, then rank 1's.
      expect(normErr(keys2p, ref.steps[s].keys), `keys, step ${s}`).toBeLessThan(1e-5);
      expect(normErr(r0.steps[s].queue, ref.steps[s].queue), `queue, step ${s}`).toBeLessThan(1e-5);
      // Without the shuffle the keys would be measurably different (the test can tell).
      expect(normErr(keys2p, ref.steps[s].unshuffledKeys), `unshuffled keys, step ${s}`).toBeGreaterThan(1e-2);
      // Each rank's loss uses the keys of its own images.
      ranks.forEach((r, i) => expect(Math.abs(r.steps[s].loss - ref.steps[s].losses[i]) / ref.steps[s].losses[i], `loss, rank ${i}, step ${s}`).toBeLessThan(1e-5));
    }
  }, 300_000);

  it("SSQL_MoCo shares the queue the same way", async () => {
    const { ranks } = await train({ SSL_TYPE: "SSQL_MoCo" });
    const [r0, r1] = ranks;
    for (let s = 0; s < d.STEPS; s++) {
      expect(r1.steps[s].queue).toEqual(r0.steps[s].queue);
      expect(r0.steps[s].queuePtr).toBe(((s + 1) * G) % K);
    }
    // The losses differ (each rank's own queries and keys), the queue does not.
    expect(r0.steps[0].loss).not.toBe(r1.steps[0].loss);
  }, 300_000);

  it("a MoCo K that the per-process batch divides but the global batch does not is an error on every rank", async () => {
    const { ranks } = await train({ MOCO_K: "12" });
    for (const r of ranks) {
      expect(r.steps.length).toBe(0);
      expect(r.error).toBe("MoCo: SSL.SETTING.MOCO_K (12) must be a multiple of the global batch (8 = 4 per process x 2 processes)");
    }
  }, 300_000);
});
