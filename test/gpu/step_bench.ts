/**
 * Whole training steps on CUDA (`check.js step`), the counterpart of bench/torch_ssql_step.py: the CIFAR ResNet-18
 * SSL methods built from the shipped configs by buildSslMethod, moved with Module.to("cuda"), one step = the
 * method's forward (SSQL_SimSiam: FP and fake-quantized passes of both views, 4 encoder passes), backward and the
 * SGD step, on a fixed random batch of `batch` images per view. Timed after warm-up between synchronize() calls;
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
  loss?: number;
  bits?: { w: number; a: number };
  parameters?: number;
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
          for (const s of Object.values(opt.stateDict().state)) s.momentumBuffer.dispose();
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
      const t1 = performance.now();
      let last: Tensor | null = null;
      for (let i = 0; i < steps; i++) {
        last?.dispose();
        last = step();
      }
      sync();
      row.steps = steps;
      row.step_ms = (performance.now() - t1) / steps;
      row.images_per_s = batch / (row.step_ms / 1000);
      row.peak_bytes = cuda?.memoryStats().peakBytes;
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
