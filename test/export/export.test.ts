import { execFileSync } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { buildConfig, type Config } from "../../lib/config";
import { evaluateOnnx } from "../../lib/export/eval_onnx";
import { exportModel } from "../../lib/export/export";
import { saveCheckpoint } from "../../lib/io/checkpoint";
import type { HostTensors } from "../../lib/io/host_tensor";
import { loadSafetensors } from "../../lib/io/safetensors";
import { parseTorchCheckpoint } from "../../lib/io/torch_pickle";
import { createResNet } from "../../lib/nn/resnet";
import { captureQuantizerState, loadQuantizerState, saveQuantizerState } from "../../lib/quant/state";
import { noGrad } from "../../lib/tensor/autograd";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import { calibrate, calibrationBatches, quantizeClassifier } from "../../lib/train/calibrate";
import { openClassifierData } from "../../lib/train/classifier_data";
import { evaluate } from "../../lib/train/evaluate";
import { runLinear } from "../../lib/train/linear";
import { loadIntoModel, readStateDict } from "../../lib/train/pretrained";
import { runPtq } from "../../lib/train/ptq";
import type { SettingResult } from "../../lib/train/results";
import { loadSettingModel, openSettingFolder, readSettingInfo, settingConfig } from "../../lib/train/setting_folder";
import { reproducibleConvolutions } from "../distributed/helpers";
import { pythonPath } from "../helpers/fixtures";
import { normErr } from "../helpers/numeric";

const haveFmnist = existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
const python = pythonPath();
const pythonOnnx = (() => {
  if (!python) return false;
  try {
    execFileSync(python, ["-c", "import onnx, onnxruntime"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();
if (!python) console.log("export tests: no Python with torch (.venv): the PyTorch and Python onnxruntime checks are skipped");
else if (!pythonOnnx) console.log("export tests: onnx/onnxruntime missing in .venv (sh scripts/setup.sh --python): the Python ONNX checks are skipped");

const SETTINGS = ["fp", "8w8f", "4w4f", "2w4f"];
/** Normalized logits error ONNX Runtime vs ours allowed per setting (measured values are printed). */
const LOGITS_TOL: Record<string, number> = { fp: 1e-5, "8w8f": 1e-2, "4w4f": 1e-5, "2w4f": 1e-2 };

function config(pretrained: string, extra: Record<string, unknown> = {}): Config {
  return buildConfig({
    SEED: 3,
    MODEL: { ARCH: "cifar_resnet18", NUM_CLASSES: 10, INPUTSHAPE: [16, 16], PRETRAINED: pretrained },
    DATA: { TRAIN_SUBSET: 128, VAL_SUBSET: 200 },
    LINEAR: { BITS: SETTINGS },
    TRAIN: { DATASET: "fmnist", EPOCHS: 2, BATCH_SIZE: 32, LINEAR_EVAL: true, OPTIMIZER: { NAME: "sgd", MOMENTUM: 0.9 }, LR_SCHEDULER: { TYPE: "cosine", BASE_LR: 0.05 } },
    QUANT: { W: { BIT: 0 }, A: { BIT: 0 } },
    AUG: { TRAIN: { NORMLIZATION: { MEAN: [0.286, 0.286, 0.286], STD: [0.353, 0.353, 0.353] } }, EVALUATION: { NORMLIZATION: { MEAN: [0.286, 0.286, 0.286], STD: [0.353, 0.353, 0.353] } } },
    ...extra,
  } as never);
}

/** A backbone whose BatchNorms are not the identity: gammas (about 1 in 8 negative), betas, running statistics. */
function backboneTensors(): HostTensors {
  const backbone = createResNet("cifar_resnet18", new Generator(1), { numClasses: 10 });
  let seed = 12345;
  const u = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const tensors: HostTensors = {};
  for (const [k, t] of backbone.stateDict()) {
    const data = t.toArraySync() as Float32Array;
    const isBn = /(bn\d|downsample\.1)\./.test(k);
    if (isBn && k.endsWith(".weight")) data.forEach((_, i) => (data[i] = (0.6 + 0.8 * u()) * (u() < 0.125 ? -1 : 1)));
    if (isBn && k.endsWith(".bias")) data.forEach((_, i) => (data[i] = 0.4 * (u() - 0.5)));
    if (k.endsWith(".running_mean")) data.forEach((_, i) => (data[i] = 0.4 * (u() - 0.5)));
    if (k.endsWith(".running_var")) data.forEach((_, i) => (data[i] = 0.5 + 1.5 * u()));
    tensors[`model.encoder.${k}`] = { dtype: "float32", shape: [...t.shape], data };
  }
  backbone.dispose();
  return tensors;
}

function writeF32(file: string, a: Float32Array): void {
  writeFileSync(file, Buffer.from(a.buffer, a.byteOffset, a.byteLength));
}

function py(args: string[]): { norm_err: number; max_abs?: number; opset?: number; ir?: number; keys?: number; types?: string[] } {
  return JSON.parse(execFileSync(python!, [join(__dirname, "check_export.py"), ...args], { encoding: "utf-8" }).trim().split("\n").pop()!);
}

/** Nothing but `keep` in `dir`: no output, no temporary file left by an atomic write. */
function expectNothingWritten(dir: string, keep: string[] = []): void {
  expect(readdirSync(dir).filter((f) => !keep.includes(f))).toEqual([]);
}

describe.skipIf(!haveFmnist)("deploy: quantizer state, ONNX export, torchvision state dicts (Fashion-MNIST, 16 px)", () => {
  // oneDNN's direct convolutions: the 4w4f logits are compared with ONNX Runtime's float convolutions at 1e-5, and
  // the last-bit differences of Winograd or GEMM convolutions flip roundings of the fake-quantized activations (7e-4).
  reproducibleConvolutions();
  const dir = mkdtempSync(join(tmpdir(), "export-"));
  const ssl = join(dir, "ssl");
  const out = join(dir, "linear");
  const files = join(dir, "exported");
  const results = new Map<string, SettingResult>();
  /** The first validation batch and our logits for it, per setting. */
  let batch: { x: Float32Array; shape: number[] };

  beforeAll(async () => {
    mkdirSync(ssl);
    mkdirSync(files);
    await saveCheckpoint(join(ssl, "checkpoint.json"), backboneTensors(), { epoch: 1, step: 1, config: { ssl: "SSQL_SimSiam", arch: "cifar_resnet18", dataset: "fmnist" } });
    const r = await runLinear({ cfg: config(ssl), output: out, device: "cpu", workers: 2, printFreq: 100, resume: false, quiet: true });
    for (const s of r.results.settings) results.set(s.bits, s);
    const data = await openClassifierData(config(ssl), { device: "cpu" });
    for await (const b of data.valLoader.epoch(0)) {
      batch = { x: (await b.images.toArray()) as Float32Array, shape: [...b.images.shape] };
      b.dispose();
      break;
    }
    data.dispose();
  }, 900_000);

  it("each setting folder describes itself and, quantized, holds every active quantizer's qparams", async () => {
    for (const bits of SETTINGS) {
      const info = (await readSettingInfo(join(out, bits)))!;
      expect(info).toMatchObject({ command: "linear", bits, arch: "cifar_resnet18", numClasses: 10, dataset: "fmnist", weights: "checkpoint.json", quantizers: bits !== "fp" });
      expect(info.input).toMatchObject({ shape: [3, 16, 16], mean: [0.286, 0.286, 0.286], std: [0.353, 0.353, 0.353] });
      expect(existsSync(join(out, bits, "quantizers.json"))).toBe(bits !== "fp");
      if (bits === "fp") continue;
      const st = await loadQuantizerState(join(out, bits));
      const [w, a] = bits.split("w").map((s) => parseInt(s, 10));
      // 20 convs (weight + output) and 8 blocks (output); the classifier stays in full precision.
      expect(st.entries.length).toBe(20 * 2 + 8);
      for (const e of st.entries) {
        expect(e.observer).toBe("MINMAX");
        expect(e.layer.startsWith("fc")).toBe(false);
        expect(e.bits).toBe(e.role === "weight" ? w : a);
        expect(e.role === "weight" ? [e.symmetric, e.axis] : [e.symmetric, e.axis]).toEqual(e.role === "weight" ? [true, 0] : [false, null]);
      }
    }
  });

  it("re-evaluating a setting from its folder reproduces its top-1 exactly, without recalibrating", async () => {
    const data = await openClassifierData(config(ssl), { device: "cpu" });
    try {
      for (const bits of SETTINGS) {
        const m = loadSettingModel(await openSettingFolder(join(out, bits)), "cpu");
        try {
          for (const l of m.quant?.layers ?? []) for (const q of [l.weight, l.act]) if (q && q.bits > 0) expect(q.frozen).toBe(true);
          const acc = await evaluate(m.model, data.valLoader, 10);
          expect(acc.top1, bits).toBe(results.get(bits)!.top1);
          expect(acc.top5, bits).toBe(results.get(bits)!.top5);
        } finally {
          m.dispose();
        }
      }
    } finally {
      data.dispose();
    }
  }, 300_000);

  it("quantizer state round-trips: saved, loaded and re-saved identically; installed it gives the calibrated model's outputs bit for bit", async () => {
    const folder = await openSettingFolder(join(out, "4w4f"));
    const m = loadSettingModel(folder, "cpu");
    const again = join(dir, "roundtrip");
    mkdirSync(again);
    try {
      const captured = await captureQuantizerState(m.quant!, "4w4f");
      expect(captured.entries).toEqual(folder.state!.entries);
      for (const [k, t] of Object.entries(folder.state!.tensors)) expect(Array.from(captured.tensors[k]!.data as Float32Array), k).toEqual(Array.from(t.data as Float32Array));
      await saveQuantizerState(again, captured);
      expect(readFileSync(join(again, "quantizers.safetensors"))).toEqual(readFileSync(join(out, "4w4f", "quantizers.safetensors")));
      expect(readFileSync(join(again, "quantizers.json"), "utf-8")).toBe(readFileSync(join(out, "4w4f", "quantizers.json"), "utf-8"));

      // The same classifier calibrated afresh on the same batches as the run did.
      const cfg = config(ssl);
      const data = await openClassifierData(cfg, { device: "cpu" });
      const fresh = createResNet("cifar_resnet18", new Generator(0), { numClasses: 10 });
      loadIntoModel(fresh, folder.weights, "cpu", "required");
      const quant = quantizeClassifier(fresh, settingConfig(folder.info));
      try {
        await calibrate(fresh, quant, data.trainLoader, calibrationBatches(cfg, data.trainLoader.length), { w: 4, a: 4 });
        fresh.eval();
        const { tensor } = await import("../../lib/tensor/tensor");
        const x = tensor(batch.x, batch.shape).keep();
        const [a, b] = noGrad(() => tidy(() => [m.model.forward(x).toArraySync(), fresh.forward(x).toArraySync()]));
        x.dispose();
        expect(Array.from(a as Float32Array)).toEqual(Array.from(b as Float32Array));
      } finally {
        quant.dispose();
        fresh.dispose();
        data.dispose();
      }
    } finally {
      m.dispose();
    }
  }, 300_000);

  for (const bits of SETTINGS) {
    it(`${bits}: the exported ONNX model's top-1 in onnxruntime-node equals ours; logits agree (and in Python onnxruntime + onnx.checker)`, async () => {
      const file = join(files, `${bits}.onnx`);
      const r = await exportModel({ from: join(out, bits), output: file });
      expect(r).toMatchObject({ format: "onnx", bits });
      const ev = await evaluateOnnx({ model: file, cfg: config(ssl), device: "cpu" });
      expect(ev.source).toBe(join(out, bits));
      expect(ev.images).toBe(200);
      expect(ev.ours!.top1).toBe(results.get(bits)!.top1);
      expect(Math.abs(ev.onnx.top1 - ev.ours!.top1)).toBeLessThanOrEqual(0.1);
      console.log(`[${bits}] ONNX top-1 ${ev.onnx.top1.toFixed(2)} / ours ${ev.ours!.top1.toFixed(2)}; logits normalized error ${ev.logitsNormErr!.toExponential(2)}, max |diff| ${ev.logitsMaxAbs!.toExponential(2)}`);
      expect(ev.logitsNormErr!).toBeLessThan(LOGITS_TOL[bits]!);
      if (!pythonOnnx) return;
      const m = loadSettingModel(await openSettingFolder(join(out, bits)), "cpu");
      const { tensor } = await import("../../lib/tensor/tensor");
      const x = tensor(batch.x, batch.shape).keep();
      const ours = noGrad(() => tidy(() => m.model.forward(x).toArraySync())) as Float32Array;
      x.dispose();
      m.dispose();
      writeF32(join(dir, "input.f32"), batch.x);
      writeF32(join(dir, `logits-${bits}.f32`), ours);
      const p = py(["onnx", file, join(dir, "input.f32"), JSON.stringify(batch.shape), join(dir, `logits-${bits}.f32`)]);
      console.log(`[${bits}] Python onnxruntime: logits normalized error ${p.norm_err.toExponential(2)} (opset ${p.opset}, IR ${p.ir})`);
      expect(p.norm_err).toBeLessThan(LOGITS_TOL[bits]!);
      expect([p.opset, p.ir]).toEqual([21, 10]);
      // Integer types of the initializers: weights (signed), activation zero points (unsigned), int32 biases at 8 bits.
      const types = { fp: ["float32"], "8w8f": ["float32", "int32", "int8", "uint8"], "4w4f": ["float32", "int4", "uint4"], "2w4f": ["float32", "int4", "uint4"] }[bits];
      // The graph as written (no ONNX Runtime rewrites) for the record: 4-bit settings match ours to float rounding.
      expect(p.types).toEqual(types);
    }, 300_000);
  }

  it("ptq writes a setting folder too, which exports and re-evaluates the same way", async () => {
    const ptqOut = join(dir, "ptq");
    const r = await runPtq({ cfg: config(join(out, "fp")), output: ptqOut, device: "cpu", workers: 2, quiet: true, settings: ["8w8f"] });
    const info = (await readSettingInfo(join(ptqOut, "8w8f")))!;
    expect(info).toMatchObject({ command: "ptq", bits: "8w8f", quantizers: true });
    expect(info.weights).toBe(join(out, "fp", "checkpoint.json"));
    const file = join(files, "ptq-8w8f.onnx");
    await exportModel({ from: join(ptqOut, "8w8f"), output: file });
    const ev = await evaluateOnnx({ model: file, cfg: config(ssl), device: "cpu" });
    expect(ev.ours!.top1).toBe(r.settings[0]!.top1);
    expect(Math.abs(ev.onnx.top1 - ev.ours!.top1)).toBeLessThanOrEqual(0.1);
  }, 300_000);

  it("the .safetensors / .pth state dict has torchvision's keys and nothing else, and loads into PyTorch with strict=True", async () => {
    const cases = [
      { from: ssl, name: "backbone", classes: 0 },
      { from: join(out, "fp"), name: "classifier", classes: 10 },
    ];
    for (const c of cases) {
      const model = createResNet("cifar_resnet18", new Generator(0), { numClasses: 10 });
      const st = await readStateDict(c.from);
      loadIntoModel(model, st, "cpu", c.classes ? "required" : "fresh");
      model.eval();
      const { tensor } = await import("../../lib/tensor/tensor");
      const x = tensor(batch.x, batch.shape).keep();
      const features = noGrad(() => tidy(() => model.features(x).toArraySync())) as Float32Array;
      x.dispose();
      const keys = [...model.stateDict().keys()].filter((k) => c.classes || !k.startsWith("fc."));
      model.dispose();
      const bn = keys.filter((k) => k.endsWith(".running_var")).map((k) => k.replace(/running_var$/, "num_batches_tracked"));
      const expected = [...keys, ...bn].sort();
      for (const ext of ["safetensors", "pth"]) {
        const file = join(files, `${c.name}.${ext}`);
        await exportModel({ from: c.from, output: file });
        const held = ext === "pth" ? (parseTorchCheckpoint(readFileSync(file), file) as HostTensors) : (await loadSafetensors(file)).tensors;
        expect(Object.keys(held).sort()).toEqual(expected);
        expect(keys).toContain("layer2.0.downsample.0.weight");
        if (!python) continue;
        writeF32(join(dir, "input.f32"), batch.x);
        writeF32(join(dir, `features-${c.name}.f32`), features);
        const p = py(["state_dict", file, join(dir, "input.f32"), JSON.stringify(batch.shape), join(dir, `features-${c.name}.f32`), String(c.classes)]);
        console.log(`${c.name}.${ext}: PyTorch features normalized error ${p.norm_err.toExponential(2)} (${p.keys} keys)`);
        expect(p.norm_err).toBeLessThan(1e-5);
      }
    }
  }, 300_000);

  it("the ONNX model of an ssl run is the backbone with its pooled features as output", async () => {
    const file = join(files, "ssl-features.onnx");
    await expect(exportModel({ from: ssl, output: file })).rejects.toThrow(/does not record the input it was trained on .*pass --config/);
    const r = await exportModel({ from: ssl, output: file, cfg: config(ssl) });
    expect(r.source.classifier).toBe(false);
    await expect(evaluateOnnx({ model: file, cfg: config(ssl), device: "cpu" })).rejects.toThrow(/outputs backbone features, not logits/);
  }, 120_000);

  describe("bad input: a clear error and nothing written", () => {
    const target = () => join(files, "bad");

    it("bits the run never calibrated", async () => {
      mkdirSync(target(), { recursive: true });
      await expect(exportModel({ from: join(out, "4w4f"), output: join(target(), "m.onnx"), bits: "8w4f" })).rejects.toThrow(/--bits 8w4f: .*4w4f setting of its run; bit setting 8w4f was not calibrated here/);
      await expect(exportModel({ from: ssl, output: join(target(), "m.onnx"), bits: "4w4f" })).rejects.toThrow(/checkpoint without quantizer state; quantized settings export from a linear\/ptq setting folder/);
      await expect(exportModel({ from: join(out, "4w4f"), output: join(target(), "m.onnx"), bits: "4x4" })).rejects.toThrow(/invalid bit setting '4x4'/);
      expectNothingWritten(target());
    });

    it("an output path in a missing folder, or of an unknown format", async () => {
      await expect(exportModel({ from: ssl, output: join(dir, "no-such-dir", "m.onnx") })).rejects.toThrow(/the folder .*no-such-dir does not exist/);
      await expect(exportModel({ from: ssl, output: join(target(), "m.tflite") })).rejects.toThrow(/unknown format '.tflite'; use .onnx, .safetensors or .pth/);
      expect(existsSync(join(dir, "no-such-dir"))).toBe(false);
    });

    it("a truncated, missing or mismatched quantizer state", async () => {
      mkdirSync(target(), { recursive: true });
      const copy = (name: string) => {
        const d = join(dir, name);
        cpSync(join(out, "4w4f"), d, { recursive: true });
        // setting.json names checkpoint.json relative to the folder: point it at the original run's.
        const info = JSON.parse(readFileSync(join(d, "setting.json"), "utf-8"));
        info.weights = join(out, "4w4f", "checkpoint.json");
        writeFileSync(join(d, "setting.json"), JSON.stringify(info));
        return d;
      };
      const truncated = copy("truncated");
      truncateSync(join(truncated, "quantizers.safetensors"), 100);
      await expect(exportModel({ from: truncated, output: join(target(), "m.onnx") })).rejects.toThrow(/quantizers.safetensors.*truncated/);
      const missing = copy("missing");
      rmSync(join(missing, "quantizers.json"));
      await expect(exportModel({ from: missing, output: join(target(), "m.onnx") })).rejects.toThrow(/quantizers.json.*no quantizer state here/);
      const fewer = copy("fewer");
      const m = JSON.parse(readFileSync(join(fewer, "quantizers.json"), "utf-8"));
      m.quantizers = m.quantizers.filter((e: { name: string }) => e.name !== "layer3.1.conv2.weight");
      writeFileSync(join(fewer, "quantizers.json"), JSON.stringify(m));
      await expect(exportModel({ from: fewer, output: join(target(), "m.onnx") })).rejects.toThrow(/no saved qparams for 'layer3.1.conv2.weight', which is quantized at 4 bits here/);
      const other = copy("other-bits");
      const o = JSON.parse(readFileSync(join(other, "quantizers.json"), "utf-8"));
      o.quantizers[0].bits = 8;
      writeFileSync(join(other, "quantizers.json"), JSON.stringify(o));
      await expect(exportModel({ from: other, output: join(target(), "m.onnx") })).rejects.toThrow(/quantizer 'conv1.weight': quantMin\/quantMax \[-8, 7\] differ from the 8-bit signed grid/);
      expectNothingWritten(target());
    }, 120_000);

    it("a folder without weights, and a checkpoint of another architecture", async () => {
      mkdirSync(target(), { recursive: true });
      const noWeights = join(dir, "no-weights");
      cpSync(join(out, "4w4f"), noWeights, { recursive: true });
      for (const f of readdirSync(noWeights)) if (f.startsWith("checkpoint")) rmSync(join(noWeights, f));
      await expect(exportModel({ from: noWeights, output: join(target(), "m.onnx") })).rejects.toThrow(/no-weights\/checkpoint.json: no such file or folder/);
      const empty = join(dir, "empty");
      mkdirSync(empty);
      await expect(exportModel({ from: empty, output: join(target(), "m.pth") })).rejects.toThrow(/no checkpoint here/);
      // An ssl run that says cifar_resnet34, holding a ResNet-18.
      const other = join(dir, "other-arch");
      mkdirSync(other);
      for (const f of readdirSync(ssl)) copyFileSync(join(ssl, f), join(other, f));
      const manifest = JSON.parse(readFileSync(join(other, "checkpoint.json"), "utf-8"));
      manifest.config.arch = "cifar_resnet34";
      writeFileSync(join(other, "checkpoint.json"), JSON.stringify(manifest));
      await expect(exportModel({ from: other, output: join(target(), "m.onnx") })).rejects.toThrow(/missing.*layer1\.2\.conv1\.weight/s);
      expectNothingWritten(target());
    }, 120_000);
  });
});
