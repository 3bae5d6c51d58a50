/**
 * Whole training steps on CUDA (`check.js step`), the counterpart of bench/torch_ssql_step.py: the CIFAR ResNet-18
 * SSL methods built from the shipped configs by buildSslMethod, moved with Module.to("cuda"), one step = the
 * method's forward (SSQL_SimSiam: FP and fake-quantized passes of both views, 4 encoder passes), backward and the
 * SGD step, on a fixed random batch of `batch` images per view. The median step after warm-up, each timed between synchronize() calls;
 * peak memory is the caching allocator's peak of allocated blocks after warm-up (torch.cuda.max_memory_allocated).
 */
import * as fs from "node:fs";
import { loadConfig } from "../../lib/config";
import { SGD } from "../../lib/optim/sgd";
import { buildSslMethod } from "../../lib/ssl/build";
import { backward } from "../../lib/tensor/autograd";
import { cpuOps, cudaOps, type Device } from "../../lib/tensor/binding";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import type { Tensor } from "../../lib/tensor/tensor";

export interface StepRow {
  method: string;
  config: string;
  batch: number;
  steps?: number;
  setup_ms?: number;
  step_ms?: number;
  /** One step split by synchronize() calls (slower than a free-running step; shows where the time goes). */
  phases_ms?: { forward: number; backward: number; sgd: number };
  images_per_s?: number;
  peak_bytes?: number;
  /** The process's peak resident memory so far (Linux VmHWM): run one config per process to compare it. */
  peak_rss_bytes?: number;
  loss?: number;
  bits?: { w: number; a: number };
  parameters?: number;
  /** One step with a synchronize() after every native call: where the device time goes, and what is left for JS. */
  profile?: OpProfile;
  error?: string;
}

/** device "cpu" is a smoke test of this code without a GPU (no memory statistics). */
export async function stepBench(configs: string[], batch: number, steps: number, warmup: number, out: string, device: Device = "cuda"): Promise<number> {
  const cuda = device === "cuda" ? cudaOps() : null;
  const sync = () => cuda?.synchronize();
  const info = cuda ? cuda.cudaInfo() : cpuOps().backendInfo();
  const rows: StepRow[] = [];
  const save = () => fs.writeFileSync(out, JSON.stringify({ device: info, rows }, null, 2));
  for (const file of configs) {
    const row: StepRow = { method: "?", config: file, batch };
    rows.push(row);
    const owned: { dispose(): void }[] = [];
    try {
      const cfg = loadConfig(file);
      row.method = String(cfg.SSL.TYPE);
      const built = buildSslMethod(cfg, new Generator(cfg.SEED ?? 0));
      const method = built.method.to(device);
      method.train();
      owned.push(method, ...(built.quant ? [built.quant] : []));
      const params = method.parameters();
      row.parameters = params.reduce((s, p) => s + (p.requiresGrad ? p.numel : 0), 0);
      const opt = new SGD(params, {
        lr: cfg.TRAIN.LR_SCHEDULER.BASE_LR,
        momentum: cfg.TRAIN.OPTIMIZER.MOMENTUM,
        weightDecay: cfg.TRAIN.OPTIMIZER.WEIGHT_DECAY,
      });
      const gen = new Generator(7);
      const x1 = gen.normal([batch, 3, 32, 32], 0, 1, device).keep();
      const x2 = gen.normal([batch, 3, 32, 32], 0, 1, device).keep();
      owned.push(x1, x2, {
        dispose: () => {
          opt.zeroGrad();
          opt.dispose();
        },
      });
      const step = (phases?: number[]): Tensor => {
        const loss = tidy(() => {
          const o = method.step(x1, x2);
          row.bits = o.bits;
          if (phases) {
            sync();
            phases.push(performance.now());
          }
          backward(o.loss);
          if (phases) {
            sync();
            phases.push(performance.now());
          }
          return o.loss;
        });
        opt.step();
        opt.zeroGrad();
        method.afterStep();
        if (phases) {
          sync();
          phases.push(performance.now());
        }
        return loss;
      };
      const t0 = performance.now();
      for (let i = 0; i < warmup; i++) step().dispose();
      sync();
      row.setup_ms = Math.round(performance.now() - t0);
      cuda?.resetPeakMemoryStats();
      let last: Tensor | null = null;
      const each: number[] = [];
      for (let i = 0; i < steps; i++) {
        const t1 = performance.now();
        last?.dispose();
        last = step();
        sync();
        each.push(performance.now() - t1);
      }
      row.steps = steps;
      row.step_ms = median(each);
      row.images_per_s = batch / (row.step_ms / 1000);
      row.peak_bytes = cuda?.memoryStats().peakBytes;
      row.peak_rss_bytes = peakResidentBytes();
      row.loss = last!.itemSync();
      last!.dispose();
      if (!Number.isFinite(row.loss)) throw new Error(`the loss is ${row.loss}`);
      const times: number[][] = [];
      for (let i = 0; i < 3; i++) {
        const ph = [performance.now()];
        step(ph).dispose();
        times.push(ph.slice(1).map((t, k) => t - ph[k]));
      }
      const med = (k: number) => times.map((t) => t[k]).sort((a, b) => a - b)[1];
      row.phases_ms = { forward: med(0), backward: med(1), sgd: med(2) };
      row.profile = profileStep((cuda ?? cpuOps()) as unknown as Record<string, unknown>, () => step().dispose(), sync);
      console.log(`  ${row.method.padEnd(14)} batch ${batch}/view: ${row.step_ms.toFixed(1)} ms/step (${row.images_per_s.toFixed(0)} img/s per view), ` +
        `split fwd ${row.phases_ms.forward.toFixed(1)} / bwd ${row.phases_ms.backward.toFixed(1)} / sgd ${row.phases_ms.sgd.toFixed(1)} ms, ` +
        `peak ${((row.peak_bytes ?? 0) / 2 ** 20).toFixed(0)} MiB, loss ${row.loss.toFixed(4)}, setup ${row.setup_ms} ms`);
    } catch (e) {
      row.error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      console.log(`  ${row.method} (${file}): ERROR ${row.error}`);
    } finally {
      for (const o of owned.reverse()) {
        try {
          o.dispose();
        } catch {
          // freeing after a failure must not hide it
        }
      }
      sync();
      cuda?.emptyCache();
    }
    save();
  }
  save();
  return rows.some((r) => r.error) ? 1 : 0;
}

function peakResidentBytes(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync("/proc/self/status", "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined; // not Linux
  }
}

/** The median, so that a step disturbed by another process on a shared machine does not move the result. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

export interface OpProfile {
  /** Multiply-adds x 2 of the step's convolutions (all passes), matmuls and linear layers. */
  gflop: number;
  wall_ms: number;
  ops_ms: number;
  gc_ms: number;
  gc_count: number;
  top: { op: string; calls: number; ms: number }[];
}

type Dims = readonly number[];

/** FLOPs of one call of the GEMM-like ops (2 per multiply-add), from its argument and result shapes. */
function opFlops(shape: (h: unknown) => Dims, op: string, args: unknown[], result: unknown): number {
  const numel = (d: Dims) => d.reduce((a, b) => a * b, 1);
  const perOutput = (w: Dims) => 2 * w[1] * w[2] * w[3];
  switch (op) {
    case "conv2d":
      return numel(shape(result)) * perOutput(shape(args[1]));
    case "conv2dBackwardData":
      return numel(shape(args[0])) * perOutput(shape(args[1]));
    case "conv2dBackwardWeight":
      return numel(shape(args[0])) * perOutput(args[2] as Dims);
    case "matmul": {
      const [a, b] = [shape(args[0]), shape(args[1])];
      return 2 * a[0] * a[1] * (args[3] ? b[0] : b[1]);
    }
    case "linear": {
      const [x, w] = [shape(args[0]), shape(args[1])];
      return 2 * x[0] * w[0] * w[1];
    }
    default:
      return 0;
  }
}

/** Times every native call of one step (synchronizing after each) and the garbage collections during it. */
export function profileStep(ops: Record<string, unknown>, run: () => void, sync: () => void): OpProfile {
  const { PerformanceObserver } = require("node:perf_hooks") as typeof import("node:perf_hooks");
  const stats = new Map<string, { calls: number; ms: number }>();
  const saved = new Map<string, unknown>();
  const shape = (ops.shape as (h: unknown) => Dims).bind(ops);
  let flops = 0;
  for (const [k, v] of Object.entries(ops)) {
    if (typeof v !== "function" || k === "synchronize") continue;
    saved.set(k, v);
    const fn = v as (...a: unknown[]) => unknown;
    ops[k] = (...args: unknown[]) => {
      const t0 = performance.now();
      const r = fn(...args);
      sync();
      flops += opFlops(shape, k, args, r);
      const e = stats.get(k) ?? { calls: 0, ms: 0 };
      e.calls++;
      e.ms += performance.now() - t0;
      stats.set(k, e);
      return r;
    };
  }
  let gcMs = 0;
  let gcCount = 0;
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      gcCount++;
    }
  });
  obs.observe({ entryTypes: ["gc"] });
  const t0 = performance.now();
  try {
    run();
    sync();
  } finally {
    for (const [k, v] of saved) ops[k] = v;
  }
  const wall = performance.now() - t0;
  for (const e of obs.takeRecords()) {
    gcMs += e.duration;
    gcCount++;
  }
  obs.disconnect();
  const top = [...stats.entries()].map(([op, e]) => ({ op, calls: e.calls, ms: e.ms })).sort((a, b) => b.ms - a.ms);
  const opsMs = top.reduce((a, b) => a + b.ms, 0);
  console.log(`    profile: ${(flops / 1e9).toFixed(1)} GFLOP, wall ${wall.toFixed(1)} ms, native calls ${opsMs.toFixed(1)} ms, GC ${gcMs.toFixed(1)} ms in ${gcCount}; top: ` +
    top.slice(0, 14).map((t) => `${t.op} ${t.ms.toFixed(1)}/${t.calls}`).join(", "));
  return { gflop: flops / 1e9, wall_ms: wall, ops_ms: opsMs, gc_ms: gcMs, gc_count: gcCount, top: top.slice(0, 30) };
}
