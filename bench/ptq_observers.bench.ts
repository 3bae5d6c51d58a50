// `npm run bench -- ptq` (observer part): seconds per range observer to calibrate ResNet-18-shaped weights (per
// channel, as QUANT.W's default) and activations (per tensor, QUANT.A's default), ours (native CPU ops) against the
// original's observer classes under the local torch in the same run (bench/ptq_observers_torch.py), same threads.
//   npx tsc -p bench && node bench/ptq_observers.bench.js [--threads N] [--bits B]
// One calibration per case (weights: one observe; activations: the range pass and the observing pass over one batch
// of 8 images at 224 x 224), timed once: these take seconds, and the machine is often shared.
import * as os from "node:os";
import { env } from "../lib/env";
import { createObserver } from "../lib/quant/observers";
import { cpuOps } from "../lib/tensor/binding";
import { tensor, type Tensor } from "../lib/tensor/tensor";
import { runPython } from "./common";

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const threads = Number(flag("threads") ?? env.threads ?? os.availableParallelism());
const bits = Number(flag("bits") ?? 4);
const OBSERVERS = ["MINMAX", "MSE", "PERCENTILE", "KL_HISTOGRAM", "GAUSSIAN"];
// HISTOGRAM is MSE's code under another name in the original; timing it again adds nothing.

/** ResNet-18 (ImageNet) tensors: its stem, a stage-1 and a stage-4 conv weight; one conv output per stage, batch 8. */
const CASES = [
  { name: "w conv1 [64,3,7,7]", kind: "weight", shape: [64, 3, 7, 7] },
  { name: "w layer1 [64,64,3,3]", kind: "weight", shape: [64, 64, 3, 3] },
  { name: "w layer4 [512,512,3,3]", kind: "weight", shape: [512, 512, 3, 3] },
  { name: "a conv1 [8,64,112,112]", kind: "act", shape: [8, 64, 112, 112] },
  { name: "a layer1 [8,64,56,56]", kind: "act", shape: [8, 64, 56, 56] },
  { name: "a layer2 [8,128,28,28]", kind: "act", shape: [8, 128, 28, 28] },
  { name: "a layer3 [8,256,14,14]", kind: "act", shape: [8, 256, 14, 14] },
  { name: "a layer4 [8,512,7,7]", kind: "act", shape: [8, 512, 7, 7] },
] as const;

function randn(shape: readonly number[], scale: number, relu: boolean): Tensor {
  const n = shape.reduce((p, d) => p * d, 1);
  const v = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i += 2) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const u = (s + 0.5) / 2 ** 32;
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const r = Math.sqrt(-2 * Math.log(u)), t = 2 * Math.PI * ((s + 0.5) / 2 ** 32);
    v[i] = r * Math.cos(t) * scale;
    if (i + 1 < n) v[i + 1] = r * Math.sin(t) * scale;
  }
  if (relu) for (let i = 0; i < n; i++) v[i] = Math.max(v[i], 0);
  return tensor(v, shape).keep();
}

function ours(name: string, kind: string, x: Tensor): number {
  const obs = createObserver(name, { axis: kind === "weight" ? 0 : null, bits, alpha: 0.0001, bins: 2049 });
  const t0 = process.hrtime.bigint();
  if (kind === "act" && obs.needsRangePass) obs.observeRange!(x);
  obs.observe(x);
  const r = obs.range()!;
  const [s, z, e] = x.ops.calcQParams(r.min.handle, r.max.handle, bits, kind === "weight");
  r.min.toArraySync(); // wait for the result
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  for (const h of [s, z, e]) x.ops.dispose(h);
  obs.dispose();
  return secs;
}

function main(): void {
  cpuOps().setNumThreads(threads);
  const mine: Record<string, Record<string, number>> = {};
  for (const name of OBSERVERS) mine[name] = {};
  for (const c of CASES) {
    const x = randn(c.shape, c.kind === "weight" ? 0.05 : 1, c.kind === "act");
    for (const name of OBSERVERS) mine[name][c.name] = ours(name, c.kind, x);
    x.dispose();
  }
  const theirs = runPython<Record<string, unknown>>("ptq_observers_torch.py", {
    threads, bits, alpha: 0.0001, bins: 2049, sample_channels: 8, observers: OBSERVERS, cases: CASES,
  });
  const rows: string[] = [];
  const fmt = (v: number) => (v < 0.01 ? v.toExponential(2) : v.toFixed(3));
  console.log(`range observers, ${bits} bits, ${threads} threads (seconds per calibration; weights per channel, activations per tensor)`);
  console.log(`original: torch ${theirs.torch}; extrapolated from 8 channels: ${(theirs.extrapolated as string[]).join(", ") || "none"}`);
  console.log(["observer", "case", "ours s", "original s", "speed-up"].join("\t"));
  const result: Record<string, unknown> = { threads, bits, torch: theirs.torch, extrapolated: theirs.extrapolated, observers: {} };
  for (const name of OBSERVERS) {
    const t = theirs[name] as Record<string, number>;
    let sumOurs = 0, sumTheirs = 0;
    for (const c of CASES) {
      const [a, b] = [mine[name][c.name], t[c.name]];
      sumOurs += a;
      sumTheirs += b;
      rows.push([name, c.name, fmt(a), fmt(b), (b / a).toFixed(1) + "x"].join("\t"));
    }
    rows.push([name, "total", fmt(sumOurs), fmt(sumTheirs), (sumTheirs / sumOurs).toFixed(1) + "x"].join("\t"));
    (result.observers as Record<string, unknown>)[name] = { ours: mine[name], original: t, totalOurs: sumOurs, totalOriginal: sumTheirs };
  }
  console.log(rows.join("\n"));
  console.log(`RESULT ${JSON.stringify(result)}`);
}

main();
