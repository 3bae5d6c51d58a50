/**
 * Where a training step's memory goes, on the CPU: peak storage bytes of one SSL step (buildSslMethod from the shipped
 * configs, as test/gpu/step_bench.ts) against the lower bound PyTorch reaches (parameters + gradients + momentum
 * buffers + the tensors the tape saves for backward), and the live bytes at the forward/backward boundary and at the
 * peak, grouped by the code that created them.
 *
 *   tsc -p bench/tsconfig.json && node bench/step_memory.js [--batch 32] [--steps 2] [--keep] [config.yaml ...]
 *
 * --keep runs the steps under keepTemporaries (every temporary lives until the step scope ends, as before early
 * freeing), for the before/after comparison.
 */
import * as path from "node:path";
import { loadConfig } from "../lib/config";
import { SGD } from "../lib/optim/sgd";
import { buildSslMethod } from "../lib/ssl/build";
import { backward } from "../lib/tensor/autograd";
import { cpuOps } from "../lib/tensor/binding";
import { Generator } from "../lib/tensor/ops/random";
import { keepTemporaries, tidy } from "../lib/tensor/scope";
import { root } from "./common";
import { stepLowerBound } from "../test/helpers/memory";

const MiB = 2 ** 20;
const DTYPE_BYTES: Record<string, number> = { float32: 4, int32: 4, uint8: 1 };

interface Origin {
  where: string;
  bytes: number;
}

/** Wraps every native op so that each returned handle remembers its creator (views count 0 bytes). */
function instrument(): { live: Map<object, Origin>; restore: () => void; onCall: (fn: () => void) => void } {
  const ops = cpuOps() as unknown as Record<string, unknown>;
  const shapeOf = ops.shape as (h: object) => number[];
  const dtypeOf = ops.dtype as (h: object) => string;
  const live = new Map<object, Origin>();
  const saved = new Map<string, unknown>();
  let after: (() => void) | null = null;
  const isHandle = (v: unknown) => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Promise) && Object.keys(v).length === 0;
  for (const [name, fn] of Object.entries(ops)) {
    if (typeof fn !== "function" || ["shape", "dtype", "memoryStats", "isDisposed", "resetPeakMemoryStats"].includes(name)) continue;
    saved.set(name, fn);
    ops[name] = (...args: unknown[]) => {
      if (name === "dispose") live.delete(args[0] as object);
      const r = (fn as (...a: unknown[]) => unknown)(...args);
      const out = Array.isArray(r) ? r : [r];
      const handles = out.filter(isHandle) as object[];
      if (handles.length) {
        const frames = (new Error().stack ?? "").split("\n").slice(2);
        const frame = frames.find((f) => !/tensor[/\\](tensor|autograd|scope)\.js/.test(f) && !f.includes("step_memory")) ?? "?";
        const m = /at (?:(\S+) )?\(?(.*?):(\d+):\d+\)?$/.exec(frame.trim());
        const where = m ? `${m[1] ?? "<anon>"} ${path.relative(root, m[2])}:${m[3]} (${name})` : name;
        for (const h of handles) {
          const view = name === "reshape";
          const bytes = view ? 0 : shapeOf(h).reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtypeOf(h)];
          live.set(h, { where, bytes });
        }
      }
      after?.();
      return r;
    };
  }
  return {
    live,
    restore: () => {
      for (const [k, v] of saved) ops[k] = v;
    },
    onCall: (fn) => (after = fn),
  };
}

function groups(live: Map<object, Origin>, top = 12): string {
  const by = new Map<string, { n: number; bytes: number }>();
  for (const o of live.values()) {
    const e = by.get(o.where) ?? { n: 0, bytes: 0 };
    e.n++;
    e.bytes += o.bytes;
    by.set(o.where, e);
  }
  return [...by.entries()]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, top)
    .map(([w, e]) => `      ${(e.bytes / MiB).toFixed(1).padStart(8)} MiB ${String(e.n).padStart(5)}x  ${w}`)
    .join("\n");
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const opt = (k: string, d: number) => {
    const i = args.indexOf(k);
    if (i < 0) return d;
    const v = Number(args[i + 1]);
    args.splice(i, 2);
    return v;
  };
  const batch = opt("--batch", 32);
  const steps = opt("--steps", 2);
  const keepAt = args.indexOf("--keep");
  const keep = keepAt >= 0;
  if (keep) args.splice(keepAt, 1);
  const configs = args.length ? args : ["resnet18_simsiam_cifar.yaml", "resnet18_ssql_simsiam_cifar.yaml"].map((c) => path.join(root, "configs", "cifar", c));
  const ops = cpuOps();
  for (const file of configs) {
    const cfg = loadConfig(file);
    const built = buildSslMethod(cfg, new Generator(cfg.SEED ?? 0));
    const method = built.method;
    method.train();
    const params = method.parameters();
    const opt_ = new SGD(params, { lr: 0.05, momentum: cfg.TRAIN.OPTIMIZER.MOMENTUM, weightDecay: cfg.TRAIN.OPTIMIZER.WEIGHT_DECAY });
    const gen = new Generator(7);
    const x1 = gen.normal([batch, 3, 32, 32]).keep();
    const x2 = gen.normal([batch, 3, 32, 32]).keep();
    const trainable = params.filter((p) => p.requiresGrad).reduce((s, p) => s + p.numel * 4, 0);
    const allParams = method.stateDict();
    const stateBytes = [...allParams.values()].reduce((s, t) => s + t.numel * 4, 0);
    const inst = instrument();
    console.log(`${cfg.SSL.TYPE}${keep ? " (temporaries kept)" : ""}, batch ${batch} per view: parameters+buffers ${(stateBytes / MiB).toFixed(1)} MiB, trainable ${(trainable / MiB).toFixed(1)} MiB`);
    for (let s = 0; s < steps; s++) {
      const last = s === steps - 1;
      let peak = 0;
      let atPeak = "";
      if (last)
        inst.onCall(() => {
          const b = ops.memoryStats().bytes;
          if (b > peak) {
            peak = b;
            atPeak = groups(inst.live);
          }
        });
      const before = ops.memoryStats();
      ops.resetPeakMemoryStats();
      let boundary = 0;
      let lb = { state: 0, grads: 0, momentum: 0, saved: 0, total: 0 };
      let boundaryGroups = "";
      const run = () =>
        tidy(() => {
          const o = method.step(x1, x2);
          boundary = ops.memoryStats().bytes;
          lb = stepLowerBound(method, o.loss);
          if (last) boundaryGroups = groups(inst.live);
          backward(o.loss);
          return o.loss;
        });
      const loss = keep ? keepTemporaries(run) : run();
      opt_.step();
      const peakBytes = ops.memoryStats().peakBytes;
      opt_.zeroGrad();
      method.afterStep();
      const value = loss.itemSync();
      loss.dispose();
      const after = ops.memoryStats();
      inst.onCall(() => {});
      const bound = lb.total;
      console.log(
        `  step ${s}: loss ${value.toFixed(6)}  peak ${(peakBytes / MiB).toFixed(1)} MiB  at the forward/backward boundary ${(boundary / MiB).toFixed(1)} MiB  ` +
          `saved for backward ${(lb.saved / MiB).toFixed(1)} MiB  lower bound ${(bound / MiB).toFixed(1)} MiB (peak/bound ${(peakBytes / bound).toFixed(3)})  ` +
          `live before/after ${before.storages}/${after.storages}`,
      );
      if (last) {
        console.log(`    live at the boundary by creator:\n${boundaryGroups}`);
        console.log(`    live at the peak (${(peak / MiB).toFixed(1)} MiB) by creator:\n${atPeak}`);
      }
    }
    inst.restore();
    opt_.dispose();
    x1.dispose();
    x2.dispose();
    method.dispose();
    built.quant?.dispose();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
