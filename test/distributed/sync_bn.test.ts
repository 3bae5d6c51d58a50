import { describe, expect, it } from "vitest";
import { syncBatchNorm } from "../../lib/distributed/sync_bn";
import { mul } from "../../lib/tensor/ops/elementwise";
import { sum } from "../../lib/tensor/ops/reduce";
import { tensor } from "../../lib/tensor/tensor";
import { gradCheck, normErr, randomTensor } from "../helpers/numeric";
import { ensureCompiled, launch, readRanks, tempDir } from "./helpers";
import { batch } from "./workers/sync_bn_data";

/** Textbook batch norm over the whole batch in float64: output, input gradient, weight/bias gradients, stats. */
function referenceBatchNorm(shape: number[], x: ArrayLike<number>, g: ArrayLike<number>, weight: ArrayLike<number>, bias: ArrayLike<number>, eps: number) {
  const [N, C] = shape;
  const S = shape.slice(2).reduce((a, b) => a * b, 1);
  const idx = (n: number, c: number, s: number) => (n * C + c) * S + s;
  const count = N * S;
  const y = new Float64Array(x.length), dx = new Float64Array(x.length);
  const dw = new Float64Array(C), db = new Float64Array(C), mean = new Float64Array(C), varUnbiased = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let m = 0;
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) m += x[idx(n, c, s)];
    m /= count;
    let v = 0;
    for (let n = 0; n < N; n++) for (let s = 0; s < S; s++) v += (x[idx(n, c, s)] - m) ** 2;
    const inv = 1 / Math.sqrt(v / count + eps);
    mean[c] = m;
    varUnbiased[c] = v / (count - 1);
    let sg = 0, sgx = 0;
    for (let n = 0; n < N; n++)
      for (let s = 0; s < S; s++) {
        const i = idx(n, c, s), xh = (x[i] - m) * inv;
        y[i] = xh * weight[c] + bias[c];
        sg += g[i];
        sgx += g[i] * xh;
      }
    dw[c] = sgx;
    db[c] = sg;
    for (let n = 0; n < N; n++)
      for (let s = 0; s < S; s++) {
        const i = idx(n, c, s), xh = (x[i] - m) * inv;
        dx[i] = weight[c] * inv * (g[i] - sg / count - (xh * sgx) / count);
      }
  }
  return { y, dx, dw, db, mean, varUnbiased };
}

describe("syncBatchNorm", () => {
  it("on one process it is batch norm: output against the float64 reference, gradients against finite differences", () => {
    const shape = [4, 3, 2, 2];
    const x = randomTensor(shape, 3);
    const w = randomTensor([3], 4);
    const b = randomTensor([3], 5);
    const g = randomTensor(shape, 6, false);
    const y = syncBatchNorm(x, w, b, null, null, { group: null, training: true });
    const ref = referenceBatchNorm(shape, x.toArraySync(), g.toArraySync(), w.toArraySync(), b.toArraySync(), 1e-5);
    expect(normErr(y.toArraySync(), ref.y)).toBeLessThan(1e-6);
    const err = gradCheck(([xi, wi, bi]) => sum(mul(syncBatchNorm(xi, wi, bi, null, null, { group: null, training: true }), g)), [x, w, b], 1e-2);
    expect(err).toBeLessThan(2e-2);
  });

  it("without affine parameters and in evaluation mode", () => {
    const shape = [5, 2];
    const x = randomTensor(shape, 7);
    const g = randomTensor(shape, 8, false);
    const ref = referenceBatchNorm(shape, x.toArraySync(), g.toArraySync(), [1, 1], [0, 0], 1e-5);
    const y = syncBatchNorm(x, null, null, null, null, { group: null, training: true });
    expect(normErr(y.toArraySync(), ref.y)).toBeLessThan(1e-6);
    const rm = tensor([0.5, -1], [2]);
    const rv = tensor([4, 0.25], [2]);
    const w = randomTensor([2], 9);
    const b = randomTensor([2], 10);
    const ye = syncBatchNorm(x, w, b, rm, rv, { group: null, training: false });
    const xs = x.toArraySync(), ws = w.toArraySync(), bs = b.toArraySync(), rms = [0.5, -1], rvs = [4, 0.25];
    const expected = Array.from(xs, (v, i) => ((v - rms[i % 2]) / Math.sqrt(rvs[i % 2] + 1e-5)) * ws[i % 2] + bs[i % 2]);
    expect(normErr(ye.toArraySync(), expected)).toBeLessThan(1e-6);
    expect(gradCheck(([xi, wi, bi]) => sum(mul(syncBatchNorm(xi, wi, bi, rm, rv, { group: null, training: false }), g)), [x, w, b], 1e-2)).toBeLessThan(1e-2);
  });

  it("across 2 processes with uneven batches equals batch norm over the union (float64 reference)", async () => {
    ensureCompiled();
    const dir = tempDir("syncbn");
    const run = await launch("sync_bn.js", 2, { OUT_DIR: dir });
    expect(run.stderr).toBe("");
    type Out = { y: number[]; dx: number[]; dw: number[]; db: number[]; runningMean: number[]; runningVar: number[] };
    const [r0, r1] = readRanks<Out>(dir, 2);
    const { shape, x, g, weight, bias } = batch();
    const ref = referenceBatchNorm(shape, x, g, weight, bias, 1e-5);
    // float32 carries about 7 digits of x ~ 100 into x - mean (std ~1.7): a few 1e-6 is the precision floor.
    expect(normErr([...r0.y, ...r1.y], ref.y)).toBeLessThan(5e-6);
    expect(normErr([...r0.dx, ...r1.dx], ref.dx)).toBeLessThan(5e-6);
    // Weight and bias gradients are each rank's share; DDP's average (times the world size) gives the whole.
    expect(normErr(r0.dw.map((v, c) => v + r1.dw[c]), ref.dw)).toBeLessThan(1e-5);
    expect(normErr(r0.db.map((v, c) => v + r1.db[c]), ref.db)).toBeLessThan(1e-6);
    for (const r of [r0, r1]) {
      expect(normErr(r.runningMean, Array.from(ref.mean, (m) => 0.9 * 0.5 + 0.1 * m))).toBeLessThan(1e-6);
      expect(normErr(r.runningVar, Array.from(ref.varUnbiased, (v) => 0.9 * 2 + 0.1 * v))).toBeLessThan(1e-6);
    }
  });
});
