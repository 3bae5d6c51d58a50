/**
 * AdaRound / BRECQ reconstruction speed: seconds per 1000 optimisation steps per piece of a cifar_resnet18 (CIFAR
 * inputs at 16 px, 4-bit weights, QUANT.FINETUNE.BATCHSIZE 32 from 64 calibration images), ours (CPU) against the original's
 * reconstruct_modules under the local torch in the same run. Each side runs a piece at two step counts and reports
 * the slope, so capturing the piece's inputs and outputs cancels out.
 */
import * as os from "node:os";
import { env } from "../lib/env";
import { createResNet } from "../lib/nn/resnet";
import type { QParams } from "../lib/quant/fake_quant";
import { weightQuantizer } from "../lib/quant/quantizer";
import { resnetPieces } from "../lib/quant/reconstruct/block_data";
import { reconstructWeights } from "../lib/quant/reconstruct/brecq";
import { cpuOps } from "../lib/tensor/binding";
import { Generator } from "../lib/tensor/ops/random";
import { tensor } from "../lib/tensor/tensor";
import { runPython, table } from "./common";

const PIECES = ["conv1", "layer1.0", "layer3.0", "layer2.0.conv1"];
// Two step counts per piece: the slope between them is the cost of a step (the shared capture cancels).
const ITERS: [number, number] = [2, 8];
const BATCH = 32, IMAGES = 64, SIZE = 16, BITS = 4;

export async function benchPtqReconstruct(): Promise<unknown> {
  const threads = Number(env.threads ?? os.availableParallelism());
  cpuOps().setNumThreads(threads);
  const ours: Record<string, number> = {};
  for (const name of PIECES) {
    const granularity = name.split(".").length > 2 ? "layer" : "block";
    const times: number[] = [];
    for (const iters of ITERS) {
      const model = createResNet("cifar_resnet18", new Generator(0), { numClasses: 10 });
      const piece = resnetPieces(model, granularity).find((p) => p.name === name)!;
      const qps = new Map<string, QParams>();
      const quantizers = piece.units.map((u) => {
        const q = weightQuantizer({ bits: BITS, name: u.name });
        q.observe(u.conv.weight);
        q.freeze();
        qps.set(u.name, q.qparams().qp);
        return q;
      });
      const data = new Float32Array(IMAGES * 3 * SIZE * SIZE).map((_, i) => Math.sin(i * 12.9898) * 0.9);
      const batches = Array.from({ length: IMAGES / BATCH }, (_, b) => tensor(data.subarray(b * BATCH * 3 * SIZE * SIZE, (b + 1) * BATCH * 3 * SIZE * SIZE), [BATCH, 3, SIZE, SIZE]).keep());
      const t0 = process.hrtime.bigint();
      await reconstructWeights(model, qps, batches, { granularity, iters, batchSize: BATCH, warmup: 0.2, bStart: 20, bEnd: 2, lr: 1e-3, seed: 0 });
      times.push(Number(process.hrtime.bigint() - t0) / 1e9);
      for (const b of batches) b.dispose();
      for (const q of quantizers) q.dispose();
      model.dispose();
    }
    ours[name] = ((times[1] - times[0]) / (ITERS[1] - ITERS[0])) * 1000;
  }
  const torch = runPython<{ torch: string; threads: number; seconds_per_1000: Record<string, number> }>("ptq_reconstruct_torch.py", {
    threads, pieces: PIECES, iters: ITERS, batch: BATCH, images: IMAGES, size: SIZE, bits: BITS,
  });
  const rows: (string | number)[][] = [["piece (cifar_resnet18, 4-bit w, batch 32, 16 px)", "ours s/1000 it", `torch ${torch.torch} s/1000 it`, "ours / torch"]];
  for (const p of PIECES) rows.push([p, ours[p], torch.seconds_per_1000[p], ours[p] / torch.seconds_per_1000[p]]);
  console.log(`AdaRound / BRECQ reconstruction, CPU, ${threads} threads (torch ${torch.threads})\n${table(rows)}`);
  return { threads, pieces: PIECES, iters: ITERS, ours, torch };
}
