// Exported ONNX models in onnxruntime-node (CPU): images/s of the fp32 model against the 8w8f Q/DQ model, at batch 1
// and 64, with our own eval-mode forward (fp and fake-quantized 8w8f) for reference:
//   npx tsc -p bench && node bench/onnx_int8.bench.js [--reps R] [--arch cifar_resnet18] [--size 32]
// The model is a cifar_resnet18 with random weights and BN statistics, calibrated on random batches (speed does not
// depend on the values). The optimized graph ONNX Runtime runs is dumped and its operators counted, to show whether
// the Q/DQ pairs around each Conv became integer kernels (QLinearConv / QLinearAdd) or ran as float Conv.
import { mkdtempSync, readFileSync } from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { onnx } from "onnx-proto";
import * as ort from "onnxruntime-node";
import { buildConfig } from "../lib/config";
import { buildResNetOnnx } from "../lib/export/resnet_onnx";
import type { HostTensors } from "../lib/io/host_tensor";
import { ARCHS, createResNet } from "../lib/nn/resnet";
import { captureQuantizerState } from "../lib/quant/state";
import { noGrad } from "../lib/tensor/autograd";
import { Generator } from "../lib/tensor/ops/random";
import { tidy } from "../lib/tensor/scope";
import { tensor } from "../lib/tensor/tensor";
import { quantizeClassifier } from "../lib/train/calibrate";

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const reps = Number(flag("reps") ?? 10);
const arch = flag("arch") ?? "cifar_resnet18";
const size = Number(flag("size") ?? 32);

function randn(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let u = seed;
  for (let i = 0; i < n; i++) {
    u = (Math.imul(u, 1664525) + 1013904223) >>> 0;
    out[i] = (u / 4294967296) * 2 - 1;
  }
  return out;
}

async function bestMs(fn: () => Promise<unknown> | unknown, n = reps): Promise<number> {
  for (let i = 0; i < 2; i++) await fn();
  let best = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return best;
}

async function main(): Promise<void> {
  const cfg = buildConfig({ MODEL: { ARCH: arch, NUM_CLASSES: 10 } } as never);
  const model = createResNet(arch, new Generator(1), { numClasses: 10 });
  model.eval();
  const tensors: HostTensors = {};
  for (const [k, t] of model.stateDict()) tensors[k] = { dtype: "float32", shape: [...t.shape], data: t.toArraySync() as Float32Array };
  const quant = quantizeClassifier(model, cfg);
  const calib = tensor(randn(64 * 3 * size * size, 7), [64, 3, size, size]).keep();
  quant.observe();
  noGrad(() => tidy(() => void model.forward(calib)));
  quant.quantize(8, 8);
  quant.freeze();
  const state = await captureQuantizerState(quant, "8w8f");
  const dir = mkdtempSync(path.join(os.tmpdir(), "onnx-bench-"));
  const common = { arch, spec: ARCHS[arch]!, tensors, classifier: true, inputShape: [3, size, size], metadata: {} };
  const files = { fp32: path.join(dir, "fp.onnx"), "8w8f": path.join(dir, "8w8f.onnx") };
  const { writeFileSync } = await import("node:fs");
  writeFileSync(files.fp32, buildResNetOnnx({ ...common, state: null }));
  writeFileSync(files["8w8f"], buildResNetOnnx({ ...common, state }));

  const rows: { model: string; batch: number; imagesPerS: number }[] = [];
  const ops: Record<string, Record<string, number>> = {};
  for (const [name, file] of Object.entries(files)) {
    const optimized = path.join(dir, `${name}.optimized.onnx`);
    const session = await ort.InferenceSession.create(file, { optimizedModelFilePath: optimized, graphOptimizationLevel: "all" });
    const counts: Record<string, number> = {};
    for (const n of onnx.ModelProto.decode(readFileSync(optimized)).graph!.node ?? []) counts[n.opType!] = (counts[n.opType!] ?? 0) + 1;
    ops[name] = counts;
    for (const batch of [1, 64]) {
      const x = new ort.Tensor("float32", randn(batch * 3 * size * size, 3), [batch, 3, size, size]);
      const ms = await bestMs(() => session.run({ input: x }), batch === 1 ? reps * 5 : reps);
      rows.push({ model: `ONNX Runtime ${name}`, batch, imagesPerS: (1000 * batch) / ms });
    }
    await session.release();
  }
  for (const [name, quantized] of [["fp32", false], ["8w8f fake-quant", true]] as const) {
    if (quantized) quant.quantize(8, 8);
    else quant.fullPrecision();
    for (const batch of [1, 64]) {
      const x = tensor(randn(batch * 3 * size * size, 3), [batch, 3, size, size]).keep();
      const ms = await bestMs(() => noGrad(() => tidy(() => void model.forward(x).toArraySync())), batch === 1 ? reps * 5 : reps);
      x.dispose();
      rows.push({ model: `ours (eval forward) ${name}`, batch, imagesPerS: (1000 * batch) / ms });
    }
  }
  const speedup = (b: number) => rows.find((r) => r.model === "ONNX Runtime 8w8f" && r.batch === b)!.imagesPerS / rows.find((r) => r.model === "ONNX Runtime fp32" && r.batch === b)!.imagesPerS;
  console.log(`${arch} at ${size}x${size}, ${os.cpus()[0]?.model}, ${os.availableParallelism()} threads, ORT ${ort.env.versions.common}; best of ${reps} (batch 64) / ${reps * 5} (batch 1)\n`);
  console.log("| model | batch | images/s |\n|---|---|---|");
  for (const r of rows) console.log(`| ${r.model} | ${r.batch} | ${r.imagesPerS.toFixed(1)} |`);
  console.log(`\nint8 speed-up in ONNX Runtime: ${speedup(1).toFixed(2)}x at batch 1, ${speedup(64).toFixed(2)}x at batch 64`);
  console.log(`operators ONNX Runtime runs (optimized graph): ${JSON.stringify(ops)}`);
  const { writeResult } = await import("./common");
  console.log(`results: ${writeResult("onnx_int8", { arch, size, rows, speedup: { batch1: speedup(1), batch64: speedup(64) }, ops })}`);
  quant.dispose();
  model.dispose();
  calib.dispose();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
