import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { buildConfig, type Config } from "../../lib/config";
import { keyUseProblems } from "../../lib/config/key_use";
import { foldBatchNorms } from "../../lib/nn/fold_bn";
import { createResNet, type ResNet } from "../../lib/nn/resnet";
import { fakeQuantize, type QParams } from "../../lib/quant/fake_quant";
import { weightQuantizer, type UniformQuantizer } from "../../lib/quant/quantizer";
import { AdaRoundWeight } from "../../lib/quant/reconstruct/adaround";
import { resnetPieces } from "../../lib/quant/reconstruct/block_data";
import { reconstructWeights } from "../../lib/quant/reconstruct/brecq";
import { linearTempDecay } from "../../lib/quant/reconstruct/loss";
import { methodConfigs } from "../../lib/quant/reconstruct/methods";
import { reconstructionOptions } from "../../lib/quant/reconstruct/options";
import { noGrad } from "../../lib/tensor/autograd";
import { Generator } from "../../lib/tensor/ops/random";
import { tensor, type Tensor } from "../../lib/tensor/tensor";
import { bits } from "../helpers/fixtures";

function model(seed = 1): ResNet {
  const m = createResNet("cifar_resnet18", new Generator(seed), { numClasses: 10 });
  m.eval();
  return m;
}

/** Weight quantizers of the convs whose names match `only` (the others stay full precision and are not reconstructed). */
function weightQParams(m: ResNet, wBits: number, only = /^(conv1|layer1\.0\.|layer2\.0\.)/): { qps: Map<string, QParams>; quantizers: UniformQuantizer[] } {
  const qps = new Map<string, QParams>();
  const quantizers: UniformQuantizer[] = [];
  for (const p of resnetPieces(m, "layer")) {
    const u = p.units[0];
    if (!only.test(u.name)) continue;
    const q = weightQuantizer({ bits: wBits, name: u.name });
    q.observe(u.conv.weight);
    q.freeze();
    quantizers.push(q);
    qps.set(u.name, q.qparams().qp);
  }
  return { qps, quantizers };
}

function images(n: number, seed: number): Tensor {
  const g = new Generator(seed);
  void g;
  const data = new Float32Array(n * 3 * 8 * 8);
  let s = seed;
  for (let i = 0; i < data.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    data[i] = (s / 2 ** 32) * 2 - 1;
  }
  return tensor(data, [n, 3, 8, 8]).keep();
}

const opts = { granularity: "block" as const, iters: 6, batchSize: 4, warmup: 0.2, bStart: 20, bEnd: 2, lr: 1e-3, seed: 0 };

describe("AdaRound / BRECQ reconstruction", () => {
  it("starts at nearest rounding: alpha's hard rounding equals round-half-up of w / scale", async () => {
    const m = model();
    const { qps, quantizers } = weightQParams(m, 4);
    const w = m.layers[0].layers[0] as unknown as { conv1: { weight: Tensor } };
    const qp = qps.get("layer1.0.conv1")!;
    const a = new AdaRoundWeight("layer1.0.conv1", w.conv1.weight, qp);
    const up = (await a.roundsUp().toArray()) as Float32Array;
    const wd = (await w.conv1.weight.toArray()) as Float32Array;
    const sc = (await qp.scale.toArray()) as Float32Array;
    const per = wd.length / sc.length;
    let same = 0;
    for (let i = 0; i < wd.length; i++) {
      const q = Math.fround(wd[i] / sc[Math.floor(i / per)]);
      same += up[i] === (q - Math.floor(q) >= 0.5 ? 1 : 0) ? 1 : 0;
    }
    // w / scale in float32, as the quantizer divides (each channel's extreme weight is a .5 tie there); the rectified
    // sigmoid's inverse in float32 may land on the other side for remainders within ~1e-7 of 0.5.
    expect(same / wd.length).toBeGreaterThan(0.9999);
    a.dispose();
    for (const q of quantizers) q.dispose();
    m.dispose();
  });

  it("writes hard-rounded weights that the unchanged weight quantizers reproduce bit for bit", async () => {
    for (const wBits of [2, 4]) {
      const m = model(2);
      const { qps, quantizers } = weightQParams(m, wBits);
      const x = images(8, 5);
      const before = new Map<string, Float32Array>();
      for (const p of resnetPieces(m, "layer")) if (qps.has(p.name)) before.set(p.name, (await p.units[0].conv.weight.toArray()) as Float32Array);
      const reports = await reconstructWeights(m, qps, [x, images(8, 6)], opts);
      expect(reports.map((r) => r.name)).toEqual(["conv1", "layer1.0", "layer2.0"]);
      let changed = 0;
      for (const p of resnetPieces(m, "layer").filter((q) => qps.has(q.name))) {
        const w = p.units[0].conv.weight;
        const again = noGrad(() => fakeQuantize(w, qps.get(p.name)!));
        expect(Array.from(bits((await again.toArray()) as Float32Array)), `${p.name} at ${wBits} bits`).toEqual(Array.from(bits((await w.toArray()) as Float32Array)));
        again.dispose();
        const w0 = before.get(p.name)!;
        const w1 = (await w.toArray()) as Float32Array;
        if (w1.some((v, i) => v !== w0[i])) changed++;
      }
      expect(changed).toBe(before.size);
      expect(before.size).toBe(6);
      x.dispose();
      for (const q of quantizers) q.dispose();
      m.dispose();
    }
  }, 900_000);

  it("resumes from the per-piece state in its folder with the same weights", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "recon-"));
    const run = async () => {
      const m = model(3);
      const { qps, quantizers } = weightQParams(m, 4, /^(conv1|layer1\.0\.)/);
      const x = images(8, 7);
      const lines: string[] = [];
      const r = await reconstructWeights(m, qps, [x], { ...opts, granularity: "layer", stateDir: dir, fingerprint: "f", log: (l) => lines.push(l) });
      const w = (await m.conv1.weight.toArray()) as Float32Array;
      x.dispose();
      for (const q of quantizers) q.dispose();
      m.dispose();
      return { r, w, lines };
    };
    const first = await run();
    expect(first.r.every((p) => !p.resumed)).toBe(true);
    expect(first.lines[0]).toMatch(/^reconstruct conv1 \(1 layer\): 6 iterations, rec loss [\d.]+ -> [\d.]+, rounded up [\d.]+% in [\d.]+ s$/);
    const second = await run();
    expect(second.r.every((p) => p.resumed)).toBe(true);
    expect(Array.from(second.w)).toEqual(Array.from(first.w));
    expect(second.r.map((p) => p.units.map((u) => u.upFraction))).toEqual(first.r.map((p) => p.units.map((u) => u.upFraction)));
    expect(second.r.map((p) => p.name)).toEqual(["conv1", "layer1.0.conv1", "layer1.0.conv2"]);
  }, 900_000);

  it("anneals the regularizer temperature as the original's LinearTempDecay", () => {
    // t_max 100, warmup 0.2: 20 until step 20, then linearly to 2 at step 100.
    expect([1, 19, 20, 60, 100].map((t) => linearTempDecay(t, 100, 0.2, 20, 2))).toEqual([20, 20, 20, 11, 2]);
  });
});

describe("BN folding (QUANT.FOLD_BN)", () => {
  it("folds every BN into its conv, leaves a BN that only shifts, and keeps the network's outputs", async () => {
    const m = model(4);
    // Non-trivial BN statistics, as after training.
    let k = 1;
    for (const [name, t] of m.stateDict()) {
      if (!/bn|downsample\.1/.test(name) || name.endsWith("num_batches_tracked")) continue;
      const data = (await t.toArray()) as Float32Array;
      const v = data.map(() => ((k = (Math.imul(k, 48271) % 2147483647) >>> 0) / 2147483647));
      const val = name.endsWith("running_var") || name.endsWith("weight") ? v.map((x) => 0.5 + x) : v.map((x) => 0.4 * x - 0.2);
      const src = tensor(Float32Array.from(val), t.shape);
      t.ops.copy_(t.handle, src.handle);
      src.dispose();
    }
    const x = images(4, 9);
    const y0 = (await noGrad(() => m.forward(x)).toArray()) as Float32Array;
    const names = await foldBatchNorms(m);
    expect(names.length).toBe(20);
    const y1 = (await noGrad(() => m.forward(x)).toArray()) as Float32Array;
    let err = 0, ref = 0;
    for (let i = 0; i < y0.length; i++) {
      err = Math.max(err, Math.abs(y0[i] - y1[i]));
      ref = Math.max(ref, Math.abs(y0[i]));
    }
    expect(err / ref).toBeLessThan(1e-4);
    // The folded BN is exactly a shift: its eval forward adds the bias.
    const bn = m.bn1;
    const probe = images(2, 11);
    const conv = noGrad(() => m.conv1.forward(probe));
    const shifted = (await noGrad(() => bn.forward(conv)).toArray()) as Float32Array;
    const c = (await conv.toArray()) as Float32Array;
    const b = (await bn.bias!.toArray()) as Float32Array;
    const hw = 64;
    expect(Array.from(shifted)).toEqual(Array.from(c, (v, i) => Math.fround(v + b[Math.floor(i / hw) % 64])));
    // Folding again (the ONNX exporter folds BN itself) leaves the conv weight bit for bit.
    const w1 = (await m.conv1.weight.toArray()) as Float32Array;
    await foldBatchNorms(m);
    expect(Array.from(bits((await m.conv1.weight.toArray()) as Float32Array))).toEqual(Array.from(bits(w1)));
    m.dispose();
  });
});

describe("bad reconstruction settings stop with the key named", () => {
  const cfg = (quant: Record<string, unknown> = {}, finetune: Record<string, unknown> = {}): Config =>
    buildConfig({ QUANT: { W: { QUANTIZER: "adaRound" }, CALIBRATION: { SIZE: 64 }, FINETUNE: { ITERS_W: 100, BATCHSIZE: 32, ...finetune }, ...quant } } as never);
  const cases: [string, Config, number, RegExp][] = [
    ["no iterations", cfg({}, { ITERS_W: 0 }), 4, /^QUANT\.FINETUNE\.ITERS_W: 0: adaRound needs at least 1/],
    ["calibration set below one batch", cfg({ CALIBRATION: { SIZE: 16 } }), 4, /^QUANT\.CALIBRATION\.SIZE: 16 calibration images are fewer than one reconstruction batch \(QUANT\.FINETUNE\.BATCHSIZE 32\)/],
    ["warm-up out of range", cfg({}, { WARMUP: 1.5 }), 4, /^QUANT\.FINETUNE\.WARMUP: 1\.5: must lie in \[0, 1\)/],
    ["temperature range inverted", cfg({}, { B_RANGE: [2, 20] }), 4, /^QUANT\.FINETUNE\.B_RANGE: \[2, 20\]: expected \[start, end\] with start >= end > 0/],
    ["learning rate", cfg({}, { LR: 0 }), 4, /^QUANT\.FINETUNE\.LR: 0: must be > 0/],
    ["1-bit weights", cfg(), 1, /^QUANT\.W\.QUANTIZER: adaRound reconstructs 2\.\.8-bit weights; the setting 1w quantizes weights to 1 bits/],
    ["16-bit weights", cfg(), 16, /^QUANT\.W\.QUANTIZER: adaRound reconstructs 2\.\.8-bit weights/],
    ["activations", cfg({ A: { QUANTIZER: "adaRound" } }), 4, /^QUANT\.A\.QUANTIZER: adaRound for activations .* is not implemented/],
    ["finetune method", cfg({}, { METHOD: "qdrop" }), 4, /^QUANT\.FINETUNE\.METHOD: 'qdrop' is not a finetune method; allowed: brecq/],
  ];
  for (const [what, c, w, message] of cases) it(what, () => expect(() => reconstructionOptions(c, w)).toThrow(message));

  it("an unknown or repeated method in QUANT.METHODS", () => {
    expect(() => methodConfigs(buildConfig({ QUANT: { METHODS: ["minmax", "adaroud"] } } as never))).toThrow(/^QUANT\.METHODS: unknown PTQ method 'adaroud'; known: minmax, mse, .*adaround, brecq$/);
    expect(() => methodConfigs(buildConfig({ QUANT: { METHODS: ["brecq", "BRECQ"] } } as never))).toThrow(/^QUANT\.METHODS: 'BRECQ' is listed twice$/);
  });

  it("maps methods to config overrides", () => {
    const m = methodConfigs(buildConfig({ QUANT: { METHODS: ["minmax", "mse", "adaround", "brecq"] } } as never));
    expect(m.map((x) => [x.method, x.cfg.QUANT.W.QUANTIZER, x.cfg.QUANT.W.OBSERVER_METHOD.NAME, x.cfg.QUANT.A.OBSERVER_METHOD.NAME, x.cfg.QUANT.FINETUNE.GRANULARITY])).toEqual([
      ["minmax", "uniform", "MINMAX", "MINMAX", "block"],
      ["mse", "uniform", "MSE", "MSE", "block"],
      ["adaround", "adaRound", "MINMAX", "MINMAX", "layer"],
      ["brecq", "adaRound", "MINMAX", "MINMAX", "block"],
    ]);
  });

  it("adaRound outside ptq", () => {
    const c = buildConfig({ QUANT: { W: { QUANTIZER: "adaRound" } } } as never);
    expect(keyUseProblems("linear", c)).toContainEqual({ key: "QUANT.W.QUANTIZER", message: "'adaRound': only ptq reconstructs the weight rounding (AdaRound/BRECQ); supported for linear: uniform" });
    expect(keyUseProblems("ptq", c).filter((p) => p.key === "QUANT.W.QUANTIZER")).toEqual([]);
  });
});
