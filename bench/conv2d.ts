import { cpuOps } from "../lib/tensor/binding";
import type { NativeTensor } from "../lib/tensor/native";
import { type Timing, runPython, sgemmGflops, table, time, writeResult } from "./common";

/** CIFAR ResNet-18's convolutions at batch 32 (3x3 convs with padding 1, 1x1 downsamples without); `uses`: how often the network runs each shape. */
const N = 32;
const layers = [
  { name: "conv1", uses: 1, C: 3, O: 64, H: 32, k: 3, stride: 1 },
  { name: "layer1", uses: 4, C: 64, O: 64, H: 32, k: 3, stride: 1 },
  { name: "layer2.0.conv1", uses: 1, C: 64, O: 128, H: 32, k: 3, stride: 2 },
  { name: "layer2.conv", uses: 3, C: 128, O: 128, H: 16, k: 3, stride: 1 },
  { name: "layer2.0.downsample", uses: 1, C: 64, O: 128, H: 32, k: 1, stride: 2 },
  { name: "layer3.0.conv1", uses: 1, C: 128, O: 256, H: 16, k: 3, stride: 2 },
  { name: "layer3.conv", uses: 3, C: 256, O: 256, H: 8, k: 3, stride: 1 },
  { name: "layer3.0.downsample", uses: 1, C: 128, O: 256, H: 16, k: 1, stride: 2 },
  { name: "layer4.0.conv1", uses: 1, C: 256, O: 512, H: 8, k: 3, stride: 2 },
  { name: "layer4.conv", uses: 3, C: 512, O: 512, H: 4, k: 3, stride: 1 },
  { name: "layer4.0.downsample", uses: 1, C: 256, O: 512, H: 8, k: 1, stride: 2 },
];
const passes = ["forward", "backwardData", "backwardWeight"] as const;
type Pass = (typeof passes)[number];

export function benchConv2d(reps = 10, warmup = 2): unknown {
  const o = cpuOps();
  const threads = o.getNumThreads();
  const rand = (shape: number[], seed: number) => o.normal(shape, 0, 1, seed, 0);
  const free = (h: NativeTensor | null) => h && o.dispose(h);

  const sgemm = sgemmGflops();

  const problems = layers.map((l) => ({ ...l, N, W: l.H, padding: l.k === 3 ? 1 : 0 }));
  const ours = problems.map((p, i) => {
    const st: [number, number] = [p.stride, p.stride];
    const pad: [number, number] = [p.padding, p.padding];
    const x = rand([N, p.C, p.H, p.W], 10 + i);
    const w = rand([p.O, p.C, p.k, p.k], 100 + i);
    const y = o.conv2d(x, w, null, st, pad, [1, 1], 1);
    const gy = rand(o.shape(y), 1000 + i);
    free(y);
    const r: Record<Pass, Timing> = {
      forward: time(() => free(o.conv2d(x, w, null, st, pad, [1, 1], 1)), reps, warmup),
      backwardData: time(() => free(o.conv2dBackwardData(gy, w, [N, p.C, p.H, p.W], st, pad, [1, 1], 1)), reps, warmup),
      backwardWeight: time(() => o.conv2dBackwardWeight(gy, x, [p.O, p.C, p.k, p.k], st, pad, [1, 1], 1, false).forEach(free), reps, warmup),
    };
    [x, w, gy].forEach(free);
    return r;
  });

  const torch = runPython<{ torch: string; threads: number; results: Record<Pass, Timing>[] }>("torch_conv2d.py", {
    threads,
    reps,
    warmup,
    problems,
  });

  // The algorithm each problem timed fastest with (native/cpu/conv_algorithm.h; keys as conv.cc's Geometry::key).
  const chosen = o.convAlgorithms();
  const passKey: Record<Pass, string> = { forward: "fwd", backwardData: "bwd_data", backwardWeight: "bwd_weights" };
  const algorithm = (p: (typeof problems)[number], pass: Pass) =>
    chosen[`${passKey[pass]},${N},${p.C},${p.H},${p.W},${p.O},${p.k},${p.k},${p.stride},${p.stride},${p.padding},${p.padding},1,1,1,0;t${threads}`] ?? "?";
  const rows: (string | number)[][] = [["layer", "pass", "algorithm", "ours ms", "torch ms", "ours/torch", "GFLOP/s", "of sgemm"]];
  const totals = { ours: 0, torch: 0 };
  const network = { ours: 0, torch: 0, gflop: 0 };
  const results = problems.map((p, i) => {
    const oh = Math.floor((p.H + 2 * p.padding - p.k) / p.stride) + 1;
    const gflop = (2 * N * p.O * oh * oh * p.C * p.k * p.k) / 1e9;
    const perPass = passes.map((pass) => {
      const mine = ours[i][pass].medianMs;
      const ref = torch.results[i][pass].medianMs;
      totals.ours += mine;
      totals.torch += ref;
      network.ours += p.uses * mine;
      network.torch += p.uses * ref;
      network.gflop += p.uses * gflop;
      const rate = gflop / (mine / 1e3);
      rows.push([`${p.name} ${p.C}->${p.O} k${p.k} s${p.stride} ${p.H}x${p.W}`, pass, algorithm(p, pass), mine, ref, mine / ref, rate, `${((100 * rate) / sgemm).toFixed(0)}%`]);
      return { pass, algorithm: algorithm(p, pass), ours: ours[i][pass], torch: torch.results[i][pass], gflop, fractionOfSgemm: rate / sgemm };
    });
    return { ...p, passes: perPass };
  });
  rows.push(["total", "", "", totals.ours, totals.torch, totals.ours / totals.torch, "", ""]);
  const networkRate = network.gflop / (network.ours / 1e3);
  rows.push(["ResNet-18 (each shape x its uses)", "all", "", network.ours, network.torch, network.ours / network.torch, networkRate, `${((100 * networkRate) / sgemm).toFixed(0)}%`]);
  console.log(`conv2d, batch ${N}, ${threads} threads; sgemm 2048^3: ${sgemm.toFixed(0)} GFLOP/s; PyTorch ${torch.torch} with ${torch.threads} threads`);
  console.log(table(rows));
  return { threads, sgemmGflops: sgemm, torch: torch.torch, totals, network: { ...network, fractionOfSgemm: networkRate / sgemm }, results };
}
