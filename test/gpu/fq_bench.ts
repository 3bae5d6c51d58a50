/**
 * Fake-quant benchmark of the CUDA addon (`check.js fqbench`), the counterpart of test/gpu/torch_fq_bench.py:
 * forward + backward of a [512,512,3,3] weight per channel (symmetric 4 bit) and a [128,64,32,32] activation per
 * tensor (asymmetric 8 bit), the observer reductions, and the device copy bandwidth that bounds them all.
 * Effective bandwidth counts the bytes the ops must move: forward reads x and writes out and the uint8 mask
 * (9 bytes per element), backward reads grad and mask and writes dx (9 bytes), a copy reads and writes 8; the
 * range backward reads grad and x and writes dx (12 bytes).
 */
import * as fs from "node:fs";
import { cudaOps, type CudaNativeOps } from "../../lib/tensor/binding";
import type { NativeTensor } from "../../lib/tensor/native";
import type { QuantRounding } from "../../lib/tensor/native/quant";

export interface FqRow {
  /** Matches the row of test/gpu/torch_fq_bench.py that measures the same thing. */
  key: string;
  name: string;
  ms: number;
  /** Host milliseconds per call to queue the work: near `ms`, the loop is bound by the host, not the GPU. */
  enqueueMs?: number;
  bytes: number;
  gbps: number;
  /** Effective bandwidth as a fraction of the measured device copy bandwidth. */
  ofCopy?: number;
  error?: string;
}

/**
 * Milliseconds per call, wall clock between two synchronize() calls, after `warmup` calls; and the host time per
 * call spent queueing (before the final synchronize).
 */
export function timePerCall(
  cuda: CudaNativeOps, iters: number, warmup: number, f: () => (NativeTensor | null)[],
): { ms: number; enqueueMs: number } {
  const run = () => {
    for (const h of f()) if (h) cuda.dispose(h);
  };
  for (let i = 0; i < warmup; i++) run();
  cuda.synchronize();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) run();
  const queued = performance.now();
  cuda.synchronize();
  return { ms: (performance.now() - t0) / iters, enqueueMs: (queued - t0) / iters };
}

export async function fqBench(out: string): Promise<number> {
  const cuda = cudaOps();
  const rows: FqRow[] = [];
  const iters = 100, warmup = 10;
  const measure = (key: string, name: string, bytes: number, f: () => (NativeTensor | null)[]) => {
    try {
      const { ms, enqueueMs } = timePerCall(cuda, iters, warmup, f);
      rows.push({ key, name, ms, enqueueMs, bytes, gbps: bytes / ms / 1e6 });
    } catch (e) {
      rows.push({ key, name, ms: NaN, bytes, gbps: NaN, error: (e as Error).message });
    }
  };

  const copyN = 64 * 2 ** 20;
  const big = cuda.uniform([copyN], -1, 1, 1, 0);
  measure("copy", "copy 256 MiB (device to device)", 8 * copyN, () => [cuda.clone(big)]);
  cuda.dispose(big);
  const copy = rows[0].gbps;

  const shapes = {
    weight: { shape: [512, 512, 3, 3], axis: 0 as number | null, qmin: -8, qmax: 7, bits: 4, symmetric: true },
    activation: { shape: [128, 64, 32, 32], axis: null as number | null, qmin: 0, qmax: 255, bits: 8, symmetric: false },
  };
  for (const [kind, s] of Object.entries(shapes)) {
    const n = s.shape.reduce((a, b) => a * b, 1);
    const C = s.axis === null ? 1 : s.shape[s.axis];
    const x = cuda.uniform(s.shape, -0.5, 0.5, 11, 0);
    const g = cuda.uniform(s.shape, -1, 1, 12, 0);
    const mn = cuda.full([C], 0, "float32"), mx = cuda.full([C], 0, "float32");
    const amin = cuda.full([C], 0, "int32"), amax = cuda.full([C], 0, "int32");
    cuda.aminmax_(x, mn, mx, amin, amax, s.axis, false);
    const [scale, zp, en] = cuda.calcQParams(mn, mx, s.bits, s.symmetric);
    // PyTorch's rounding for the rows compared with torch.fake_quantize_*; the original's x / scale beside it.
    const fq = (withMask: boolean, rounding: QuantRounding = "reciprocal") =>
      s.axis === null
        ? cuda.fakeQuantPerTensor(x, scale, zp, s.qmin, s.qmax, en, withMask, rounding)
        : cuda.fakeQuantPerChannel(x, scale, zp, s.axis, s.qmin, s.qmax, en, withMask, rounding);
    const label = `${kind} [${s.shape}] ${s.axis === null ? "per tensor" : "per channel"} ${s.bits} bit`;
    measure(`${kind}:fwd+bwd`, `${label}: forward + backward (mask)`, 18 * n, () => {
      const [o, m] = fq(true);
      return [o, m, cuda.fakeQuantBackward(g, m!)];
    });
    measure(`${kind}:fwd`, `${label}: forward (no mask)`, 8 * n, () => fq(false));
    // QUANT.ROUNDING's default, the original's x / scale (IEEE division), against the row above (x * (1 / scale)).
    measure(`${kind}:fwd-divide`, `${label}: forward (no mask), x / scale (QUANT.ROUNDING: divide)`, 8 * n, () => fq(false, "divide"));
    if (kind === "weight")
      measure(`${kind}:fwd+range-bwd`, `${label}: forward + range backward (SSQL weight path)`, 20 * n, () => {
        const [o] = fq(false, "divide");
        return [o, cuda.fakeQuantRangeBackward(g, x, scale, zp, mn, mx, amin, amax, s.axis, s.qmin, s.qmax, s.symmetric, en, "divide")];
      });
    measure(`${kind}:observer`, `${label}: observer aminmax_${s.axis === null ? "" : " with indices"} + calcQParams`, 4 * n, () => {
      cuda.aminmax_(x, mn, mx, s.axis === null ? null : amin, s.axis === null ? null : amax, s.axis, false);
      return cuda.calcQParams(mn, mx, s.bits, s.symmetric);
    });
    for (const h of [x, g, mn, mx, amin, amax, scale, zp, en]) cuda.dispose(h);
  }
  for (const r of rows) if (Number.isFinite(copy) && copy > 0) r.ofCopy = r.gbps / copy;
  console.log(`fake quant on ${cuda.cudaInfo().name} (ms per call over ${iters} calls; GB/s of the bytes each must move; share of copy bandwidth):`);
  for (const r of rows)
    console.log(`  ${r.name.padEnd(86)} ${Number.isFinite(r.ms) ? r.ms.toFixed(4) : "-"} ms  ${r.gbps.toFixed(0)} GB/s` +
      (r.ofCopy !== undefined ? `  ${(100 * r.ofCopy).toFixed(0)}% of copy` : "") +
      (r.enqueueMs !== undefined ? `  (host queues ${r.enqueueMs.toFixed(4)} ms/call${r.enqueueMs > 0.9 * r.ms ? ": host-bound" : ""})` : "") +
      (r.error ? `  ERROR ${r.error}` : ""));
  fs.writeFileSync(out, JSON.stringify({ device: cuda.cudaInfo(), iters, copy_gbps: copy, rows }, null, 2));
  return rows.some((r) => r.error) ? 1 : 0;
}
