import { cpuOps } from "../lib/tensor/binding";
import type { NativeTensor } from "../lib/tensor/native";
import { type Timing, runPython, table, time } from "./common";

/** Training-mode batch norm on CIFAR ResNet-18's activations at batch 32, and SimSiam's projector BN. */
const shapes = [
  [32, 64, 32, 32],
  [32, 128, 16, 16],
  [32, 256, 8, 8],
  [32, 512, 4, 4],
  [256, 2048],
];

export function benchBatchNorm(reps = 20, warmup = 3): unknown {
  const o = cpuOps();
  const threads = o.getNumThreads();
  const free = (h: NativeTensor | null) => h && o.dispose(h);
  const ours = shapes.map((shape, i) => {
    const C = shape[1];
    const x = o.normal(shape, 0, 1, 1 + i, 0);
    const gy = o.normal(shape, 0, 1, 100 + i, 0);
    const [w, b, rm, rv] = [o.full([C], 1), o.full([C], 0), o.full([C], 0), o.full([C], 1)];
    const [y, mean, invStd] = o.batchNorm(x, w, b, rm, rv, true, 0.1, 1e-5);
    const r: Record<"forward" | "backward", Timing> = {
      forward: time(() => o.batchNorm(x, w, b, rm, rv, true, 0.1, 1e-5).forEach(free), reps, warmup),
      backward: time(() => o.batchNormBackward(gy, x, w, mean, invStd, true, true).forEach(free), reps, warmup),
    };
    [x, gy, w, b, rm, rv, y, mean, invStd].forEach(free);
    return r;
  });
  const torch = runPython<{ torch: string; threads: number; results: Record<"forward" | "backward", Timing>[] }>("torch_batch_norm.py", {
    threads,
    reps,
    warmup,
    shapes,
  });
  const rows: (string | number)[][] = [["shape", "pass", "ours ms", "torch ms", "ours/torch", "GB/s"]];
  const results = shapes.map((shape, i) => {
    const bytes = shape.reduce((a, b) => a * b, 1) * 4;
    return (["forward", "backward"] as const).map((pass) => {
      const mine = ours[i][pass].medianMs;
      const ref = torch.results[i][pass].medianMs;
      // Compulsory traffic: forward reads x and writes y; backward reads gy and x and writes dx.
      const traffic = (pass === "forward" ? 2 : 3) * bytes;
      rows.push([shape.join("x"), pass, mine, ref, mine / ref, traffic / (mine * 1e6)]);
      return { shape, pass, ours: ours[i][pass], torch: torch.results[i][pass] };
    });
  });
  console.log(`batch norm (training), ${threads} threads; PyTorch ${torch.torch} with ${torch.threads} threads`);
  console.log(table(rows));
  return { threads, torch: torch.torch, results };
}
