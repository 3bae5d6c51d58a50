// Fake-quant forward + backward, ours against PyTorch measured in the same run with the same thread count:
//   npx tsc -p bench && node bench/fake_quant.bench.js [--threads N] [--reps R] [--default-malloc]
// Cases: a [512,512,3,3] weight per channel (4 bits), a [128,64,32,32] activation per tensor (8 bits), and SSQL's
// weight path with the differentiable max-abs scale (ours: min/max + qparams + forward + fused range backward;
// PyTorch: the original's observer and STE code under autograd). Bandwidth is reported against measured memcpy
// bandwidth (read + write; the larger of ours and torch's copy_ on 64 MiB). Times are the best of R runs (the machines
// this runs on are often shared).
// Variants: "live" runs forward then backward with the forward's output alive, as training does; "kernels" is the sum
// of forward and backward timed apart, each freeing its outputs at once (so freed blocks are reused and no fresh
// pages are touched); "autograd" compares our op pair with torch.fake_quantize_*(x).backward(g). These rows round
// x * (1 / scale) as torch.fake_quantize_* does; the SSQL rows x / scale as the original; a last table puts the two
// rules side by side (QUANT.ROUNDING).
// Allocation: with glibc's defaults, large aligned_alloc blocks often come from fresh pages (the heap grows by a block
// per step and freed blocks are trimmed), and then both sides mostly time page faults. So every case runs in its own
// process (ours and PyTorch's), with malloc tuned to keep freed memory (GLIBC_TUNABLES below) and the heap grown once
// up front; --default-malloc keeps glibc's defaults and shows what the allocator costs.
import { spawnSync } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import { env } from "../lib/env";
import { cpuOps } from "../lib/tensor/binding";
import type { NativeTensor as H } from "../lib/tensor/native";

const TUNABLES = "glibc.malloc.mmap_threshold=1073741824:glibc.malloc.trim_threshold=4294967296";
const CASES = ["weight", "act", "ssql", "memcpy"] as const;
type Case = (typeof CASES)[number];

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const threads = Number(flag("threads") ?? env.threads ?? os.availableParallelism());
const reps = Number(flag("reps") ?? 20);
const defaultMalloc = process.argv.includes("--default-malloc");
const childEnv = defaultMalloc ? process.env : { ...process.env, GLIBC_TUNABLES: TUNABLES };

function bestMs(fn: () => void): number {
  for (let i = 0; i < 3; i++) fn();
  let best = Infinity;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}

function randn(n: number, s = 1): Float32Array {
  const out = new Float32Array(n);
  let u = 12345;
  for (let i = 0; i < n; i++) {
    u = (Math.imul(u, 1664525) + 1013904223) >>> 0;
    const v = (u / 4294967296) * 2 - 1;
    out[i] = (v + v * v * v) * s;
  }
  return out;
}

const WN = 512 * 4608;
const AN = 128 * 64 * 1024;

/** One case in this process; returns its timings. */
function runCase(c: Case): Record<string, number> {
  const ops = cpuOps();
  ops.setNumThreads(threads);
  if (!defaultMalloc) ops.dispose(ops.full([64 << 20], 0, "float32")); // grow the heap once (256 MiB)
  const F = (data: Float32Array, shape: number[]): H => ops.fromArray(data, shape);
  const I = (data: number[], shape: number[]): H => ops.fromArray(Int32Array.from(data), shape);
  const free = (...hs: (H | null)[]): void => hs.forEach((h) => h && ops.dispose(h));
  if (c === "memcpy") {
    const big = F(new Float32Array(16 << 20), [16 << 20]), dst = F(new Float32Array(16 << 20), [16 << 20]);
    return { copy_ms_64MiB: bestMs(() => ops.copy_(dst, big)) };
  }
  if (c === "act") {
    const shape = [128, 64, 32, 32];
    const data = randn(AN).map((v) => Math.max(v, 0));
    const x = F(data, shape), g = F(randn(AN), shape);
    const s = F(new Float32Array([2 / 255]), [1]), z = I([0], [1]);
    const mask = ops.fakeQuantPerTensor(x, s, z, 0, 255, null, true, "reciprocal")[1]!;
    return {
      live: bestMs(() => {
        const [o, m] = ops.fakeQuantPerTensor(x, s, z, 0, 255, null, true, "reciprocal");
        free(o, m, ops.fakeQuantBackward(g, m!));
      }),
      kernels:
        bestMs(() => free(...ops.fakeQuantPerTensor(x, s, z, 0, 255, null, true, "reciprocal"))) +
        bestMs(() => free(ops.fakeQuantBackward(g, mask))),
      fwd_reciprocal: bestMs(() => free(...ops.fakeQuantPerTensor(x, s, z, 0, 255, null, false, "reciprocal"))),
      fwd_divide: bestMs(() => free(...ops.fakeQuantPerTensor(x, s, z, 0, 255, null, false, "divide"))),
    };
  }
  const shape = [512, 512, 3, 3];
  const w = F(randn(WN, 0.05), shape), g = F(randn(WN), shape);
  if (c === "weight") {
    const s = F(new Float32Array(512).fill(0.05 / 7.5), [512]), z = I(new Array(512).fill(0), [512]);
    const mask = ops.fakeQuantPerChannel(w, s, z, 0, -8, 7, null, true, "reciprocal")[1]!;
    return {
      live: bestMs(() => {
        const [o, m] = ops.fakeQuantPerChannel(w, s, z, 0, -8, 7, null, true, "reciprocal");
        free(o, m, ops.fakeQuantBackward(g, m!));
      }),
      kernels:
        bestMs(() => free(...ops.fakeQuantPerChannel(w, s, z, 0, -8, 7, null, true, "reciprocal"))) +
        bestMs(() => free(ops.fakeQuantBackward(g, mask))),
      fwd_reciprocal: bestMs(() => free(...ops.fakeQuantPerChannel(w, s, z, 0, -8, 7, null, false, "reciprocal"))),
      fwd_divide: bestMs(() => free(...ops.fakeQuantPerChannel(w, s, z, 0, -8, 7, null, false, "divide"))),
    };
  }
  const mn = F(new Float32Array(512), [512]), mx = F(new Float32Array(512), [512]);
  const imn = I(new Array(512).fill(0), [512]), imx = I(new Array(512).fill(0), [512]);
  const live = bestMs(() => {
    ops.aminmax_(w, mn, mx, imn, imx, 0, false);
    const [s, z, e] = ops.calcQParams(mn, mx, 4, true);
    const [o] = ops.fakeQuantPerChannel(w, s, z, 0, -8, 7, e, false, "divide");
    free(ops.fakeQuantRangeBackward(g, w, s, z, mn, mx, imn, imx, 0, -8, 7, true, e, "divide"), s, z, e, o);
  });
  const [s, z, e] = ops.calcQParams(mn, mx, 4, true);
  const kernels =
    bestMs(() => {
      ops.aminmax_(w, mn, mx, imn, imx, 0, false);
      free(...ops.calcQParams(mn, mx, 4, true));
    }) +
    bestMs(() => free(...ops.fakeQuantPerChannel(w, s, z, 0, -8, 7, e, false, "divide"))) +
    bestMs(() => free(ops.fakeQuantRangeBackward(g, w, s, z, mn, mx, imn, imx, 0, -8, 7, true, e, "divide")));
  return { live, kernels };
}

function child(cmd: string, args: string[]): Record<string, number> & { torch?: string; threads?: number } {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: childEnv });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

function main(): void {
  const only = flag("case");
  if (only) {
    console.log(JSON.stringify(runCase(only as Case)));
    return;
  }
  const self = [__filename, "--threads", String(threads), "--reps", String(reps), ...(defaultMalloc ? ["--default-malloc"] : [])];
  const ours = Object.fromEntries(CASES.map((c) => [c, child(process.execPath, [...self, "--case", c])]));
  const python = env.python ?? path.join(path.resolve(__dirname, ".."), ".venv", "bin", "python");
  const script = path.join(__dirname, "fake_quant_torch.py");
  let torch: Record<string, Record<string, number> & { torch?: string; threads?: number }>;
  try {
    torch = Object.fromEntries(CASES.map((c) => [c, child(python, [script, String(threads), String(reps), c, defaultMalloc ? "0" : "1"])]));
  } catch (e) {
    console.error(`PyTorch reference failed (${python}; set SSQL_PYTHON or run 'sh scripts/setup.sh --python'):\n${(e as Error).message}`);
    process.exit(1);
  }
  const memBytes = 2 * 64 * 2 ** 20;
  const gbs = (bytes: number, ms: number) => bytes / ms / 1e6;
  const memGBs = Math.max(gbs(memBytes, ours.memcpy.copy_ms_64MiB), gbs(memBytes, torch.memcpy.copy_ms_64MiB));
  // Least bytes moved: forward x in, out + mask out; backward grad + mask in, dx out.
  const masked = (n: number) => n * (4 + 4 + 1 + 4 + 1 + 4);
  // Range path: min/max pass over x, forward x in / out, backward grad + x in, dx out.
  const ranged = (n: number) => n * (4 + 4 + 4 + 4 + 4 + 4);
  const rows: [string, string, number, number, number][] = [
    ["weight [512,512,3,3] per-channel 4b", "live", ours.weight.live, torch.weight.live, masked(WN)],
    ["", "kernels", ours.weight.kernels, torch.weight.kernels, masked(WN)],
    ["", "autograd", ours.weight.live, torch.weight.autograd, masked(WN)],
    ["act [128,64,32,32] per-tensor 8b", "live", ours.act.live, torch.act.live, masked(AN)],
    ["", "kernels", ours.act.kernels, torch.act.kernels, masked(AN)],
    ["", "autograd", ours.act.live, torch.act.autograd, masked(AN)],
    ["SSQL weight, live max-abs scale 4b", "live", ours.ssql.live, torch.ssql.autograd, ranged(WN)],
    ["  (PyTorch: the original's code)", "kernels", ours.ssql.kernels, torch.ssql.autograd, ranged(WN)],
  ];
  console.log(`fake quant fwd+bwd, ${threads} thread(s), best of ${reps}; torch ${torch.weight.torch} (${torch.weight.threads} threads); malloc ${defaultMalloc ? "glibc defaults" : `GLIBC_TUNABLES=${TUNABLES}`}`);
  console.log(`memcpy (read + write): ours ${gbs(memBytes, ours.memcpy.copy_ms_64MiB).toFixed(1)} GB/s, torch copy_ ${gbs(memBytes, torch.memcpy.copy_ms_64MiB).toFixed(1)} GB/s`);
  console.log("case                                 variant    ours ms  torch ms  speedup  ours GB/s  of memcpy");
  for (const [name, variant, o, t, bytes] of rows)
    console.log(
      `${name.padEnd(36)} ${variant.padEnd(8)} ${o.toFixed(2).padStart(8)} ${t.toFixed(2).padStart(9)} ${(t / o).toFixed(2).padStart(7)}x ${gbs(bytes, o).toFixed(1).padStart(10)} ${((100 * gbs(bytes, o)) / memGBs).toFixed(0).padStart(9)}%`,
    );
  console.log("(the 9 MiB weight fits in the last-level cache, hence above 100% of DRAM memcpy)");
  // QUANT.ROUNDING: the original's x / scale (IEEE division, the default) against PyTorch's x * (1 / scale).
  console.log("rounding rule, forward only (no mask)   divide ms  reciprocal ms  divide cost");
  for (const [name, r] of [["weight [512,512,3,3] per-channel 4b", ours.weight], ["act [128,64,32,32] per-tensor 8b", ours.act]] as const)
    console.log(
      `${name.padEnd(38)} ${r.fwd_divide.toFixed(2).padStart(9)} ${r.fwd_reciprocal.toFixed(2).padStart(14)} ${(((r.fwd_divide - r.fwd_reciprocal) / r.fwd_reciprocal) * 100).toFixed(0).padStart(10)}%`,
    );
}

main();
