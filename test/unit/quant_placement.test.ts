import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../lib/config";
import type { ProducedOutput, QuantHooks } from "../../lib/nn/hooks";
import type { Sequential } from "../../lib/nn/module";
import { createResNet } from "../../lib/nn/resnet";
import { BitSampler } from "../../lib/quant/sampling";
import { buildSslMethod, type BuiltMethod } from "../../lib/ssl/build";
import { quantizeClassifier } from "../../lib/train/calibrate";
import type { SSQLSimSiam } from "../../lib/ssl/simsiam";
import { backward, noGrad } from "../../lib/tensor/autograd";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import type { Tensor } from "../../lib/tensor/tensor";

/**
 * Where SSQL quantizes (ssql-reference §5.2, checked by running the original on a CIFAR ResNet-18): with the shipped
 * QUANT.BIT_CONFIG of configs/cifar/resnet18_ssql_simsiam_cifar.yaml and sampled bits (Wb, Ab), every unit of the
 * encoder gets exactly the bits of the table, and the predictor is never quantized.
 */

const root = path.resolve(__dirname, "..", "..");
const recipe = path.join(root, "configs", "cifar", "resnet18_ssql_simsiam_cifar.yaml");

type Role = "stem" | "branch-relu" | "branch-last" | "downsample" | "block" | "projector";

/** Every quantization unit of the CIFAR ResNet-18 SSQL encoder, in forward order, with its row of the table. */
const UNITS: [string, Role][] = [
  ["conv1", "stem"],
  ["layer1.0.conv1", "branch-relu"], ["layer1.0.conv2", "branch-last"], ["layer1.0", "block"],
  ["layer1.1.conv1", "branch-relu"], ["layer1.1.conv2", "branch-last"], ["layer1.1", "block"],
  ["layer2.0.conv1", "branch-relu"], ["layer2.0.conv2", "branch-last"], ["layer2.0.downsample", "downsample"], ["layer2.0", "block"],
  ["layer2.1.conv1", "branch-relu"], ["layer2.1.conv2", "branch-last"], ["layer2.1", "block"],
  ["layer3.0.conv1", "branch-relu"], ["layer3.0.conv2", "branch-last"], ["layer3.0.downsample", "downsample"], ["layer3.0", "block"],
  ["layer3.1.conv1", "branch-relu"], ["layer3.1.conv2", "branch-last"], ["layer3.1", "block"],
  ["layer4.0.conv1", "branch-relu"], ["layer4.0.conv2", "branch-last"], ["layer4.0.downsample", "downsample"], ["layer4.0", "block"],
  ["layer4.1.conv1", "branch-relu"], ["layer4.1.conv2", "branch-last"], ["layer4.1", "block"],
  ["fc.0", "projector"], ["fc.3", "projector"], ["fc.6", "projector"],
];

/** §5.2: weight bits and output-activation bits per role (undefined: no such quantizer, 0 would be "present, off"). */
function table(role: Role, wb: number, ab: number): { w?: number; a?: number } {
  switch (role) {
    case "stem":
      return { w: 8, a: 8 };
    case "branch-relu":
      return { w: wb, a: ab };
    case "branch-last":
    case "downsample":
      return { w: wb }; // the pre-add BN output stays FP
    case "block":
      return { a: ab }; // after add + ReLU
    case "projector":
      return { w: 8 }; // 8-bit weights, FP outputs
  }
}

function config(extra: { key: string; value: unknown }[] = []): Config {
  // Small heads keep the test fast; the BIT_CONFIG is the recipe's.
  return loadConfig(recipe, [{ key: "SSL.SETTING.DIM", value: 128 }, { key: "SSL.SETTING.HIDDEN_DIM", value: 32 }, ...extra]);
}

/** Distinct values of each row (dim 0) of t: the number of levels a per-channel quantizer left. */
function levelsPerRow(t: Tensor): number {
  const a = t.toArraySync();
  const rows = t.shape[0];
  const n = a.length / rows;
  let most = 0;
  for (let r = 0; r < rows; r++) most = Math.max(most, new Set(a.subarray(r * n, (r + 1) * n)).size);
  return most;
}

function levels(t: Tensor): number {
  return new Set(t.toArraySync()).size;
}

/** `inner` with every output's `produced` reported to `seen`, and the producers' epilogues asked for or not (`fused`). */
function epilogueSpy(inner: QuantHooks, fused: boolean, seen: (produced: ProducedOutput | undefined) => void): QuantHooks {
  return {
    weight: inner.weight,
    output: (unit, y, produced) => {
      seen(produced);
      return inner.output(unit, y, produced);
    },
    outputEpilogue: fused ? inner.outputEpilogue : () => ({}),
  };
}

describe("SSQL quantizer placement on a CIFAR ResNet-18 (the shipped BIT_CONFIG)", () => {
  let built: BuiltMethod;
  beforeAll(() => {
    built = buildSslMethod(config(), new Generator(0));
  });
  afterAll(() => {
    built.method.dispose();
    built.quant?.dispose();
  });

  it("has one quantized layer per unit of the original's QuantModel, weight quantizers exactly on conv/linear units", () => {
    const q = built.quant!;
    expect(q.layers.map((l) => l.name)).toEqual(UNITS.map(([n]) => n));
    for (const l of q.layers) {
      const role = UNITS.find(([n]) => n === l.name)![1];
      expect(l.hasWeight, l.name).toBe(role !== "block");
      expect(l.hasAct, l.name).toBe(true);
    }
  });

  const draws: [number, number][] = [[2, 4], [8, 8], [3, 7]];
  const sampler = new BitSampler(7, [2, 9], [4, 9]);
  for (let i = 0; i < 5; i++) {
    const b = sampler.next();
    draws.push([b.w, b.a]);
  }

  for (const [wb, ab] of draws) {
    it(`gives every unit the bits of the table at W=${wb}, A=${ab}`, () => {
      const q = built.quant!;
      q.quantize(wb, ab);
      const expected: Record<string, { w?: number; a?: number }> = {};
      for (const [name, role] of UNITS) {
        const bits = table(role, wb, ab);
        if (bits.w || bits.a) expected[name] = bits;
      }
      expect(q.activeBits()).toEqual(expected);
      for (const [name, role] of UNITS) {
        const l = q.layer(name)!;
        const bits = table(role, wb, ab);
        expect(l.weight?.bits ?? undefined, `${name} weight bits`).toBe(bits.w);
        expect(l.act!.bits, `${name} output bits`).toBe(bits.a ?? 0);
      }
      q.fullPrecision();
    });
  }

  it("really quantizes exactly those tensors in an SSQL pass, and never the predictor", () => {
    const method = built.method as SSQLSimSiam;
    const q = built.quant!;
    const enc = method.encoder;
    const gen = new Generator(3);
    const [wb, ab] = [3, 5];
    const seen: { unit: string; kind: "weight" | "output"; levels: number }[] = [];
    noGrad(() =>
      tidy(() => {
        const x = gen.normal([4, 3, 32, 32]);
        q.observe();
        enc.forward(x);
        q.fullPrecision();
        q.quantize(wb, ab);
        const inner = enc.slot.hooks;
        const spy: QuantHooks = {
          weight: (unit, w) => {
            const out = inner.weight(unit, w);
            seen.push({ unit, kind: "weight", levels: levelsPerRow(out) });
            return out;
          },
          output: (unit, y) => {
            const out = inner.output(unit, y);
            seen.push({ unit, kind: "output", levels: levels(out) });
            return out;
          },
        };
        enc.slot.hooks = spy;
        const z = enc.forward(x);
        // The predictor runs with the quantizing hooks installed and still calls none of them.
        const before = seen.length;
        const p = (method.predictor as Sequential).forward(z);
        expect(seen.length).toBe(before);
        q.fullPrecision();
        const pFp = (method.predictor as Sequential).forward(z);
        expect(Array.from(p.toArraySync())).toEqual(Array.from(pFp.toArraySync()));
      }),
    );
    // Every unit was called once for its weight (conv/linear) and once for its output, in forward order.
    const calls = seen.map((s) => `${s.unit}:${s.kind}`);
    const expectedCalls = UNITS.flatMap(([n, role]) => (role === "block" ? [`${n}:output`] : [`${n}:weight`, `${n}:output`]));
    expect([...calls].sort()).toEqual([...expectedCalls].sort());
    for (const s of seen) {
      const role = UNITS.find(([n]) => n === s.unit)![1];
      const bits = table(role, wb, ab)[s.kind === "weight" ? "w" : "a"];
      if (bits) expect(s.levels, `${s.unit} ${s.kind}: at most 2^${bits} levels`).toBeLessThanOrEqual(2 ** bits);
      else expect(s.levels, `${s.unit} ${s.kind}: full precision`).toBeGreaterThan(2 ** 8);
    }
  });

  it("observes the same output ranges whether the producing batch norm hands its output's range over or not", () => {
    const q = built.quant!;
    const enc = (built.method as SSQLSimSiam).encoder;
    const x = new Generator(5).normal([4, 3, 32, 32]).keep();
    const observed = (fused: boolean) =>
      noGrad(() =>
        tidy(() => {
          q.observe();
          let handed = 0;
          enc.slot.hooks = epilogueSpy(enc.slot.hooks, fused, (p) => (handed += p?.range ? 1 : 0));
          enc.forward(x);
          enc.forward(x);
          const r = q.layers.map((l) => {
            const o = l.act!.observer.range()!;
            return [l.name, ...o.min.toArraySync(), ...o.max.toArraySync()];
          });
          q.fullPrecision();
          return { r, handed };
        }),
      );
    const fused = observed(true), own = observed(false);
    expect(own.handed).toBe(0);
    // Every unit on the CPU (conv and projector units end in BN, blocks in add + ReLU); none where not computed.
    expect(fused.handed).toBe(x.device === "cpu" ? 2 * UNITS.length : 0);
    expect(fused.r).toEqual(own.r);
    x.dispose();
  });

  it("quantizes alike whether the producing ops fake-quantize the outputs in their pass or the quantizers do", () => {
    const q = built.quant!;
    const enc = (built.method as SSQLSimSiam).encoder;
    const x = new Generator(6).normal([4, 3, 32, 32]).keep();
    const params = enc.parameters();
    const pass = (fused: boolean) => {
      for (const p of params) p.grad = null;
      let fusedUnits = 0;
      const z = tidy(() => {
        q.observe();
        noGrad(() => enc.forward(x));
        q.quantize(3, 5);
        enc.slot.hooks = epilogueSpy(enc.slot.hooks, fused, (p) => (fusedUnits += p?.fakeQuantized ? 1 : 0));
        const out = enc.forward(x);
        q.fullPrecision();
        const v = Array.from(out.toArraySync());
        backward(out, new Generator(8).normal(out.shape));
        return v;
      });
      const grads = params.filter((p) => p.grad).map((p) => Array.from(p.grad!.toArraySync(), (v) => v + 0));
      return { z, grads, fusedUnits };
    };
    const fused = pass(true), own = pass(false);
    expect(own.fusedUnits).toBe(0);
    // Units with an output quantizer: the stem, each block's conv1 and each block (BN or addRelu last); none off the CPU.
    expect(fused.fusedUnits).toBe(x.device === "cpu" ? 1 + 8 + 8 : 0);
    expect(fused.z).toEqual(own.z);
    expect(fused.grads).toEqual(own.grads);
    x.dispose();
  });

  it("rejects a BIT_CONFIG entry that names no layer, listing the valid names", () => {
    const bad = config([{ key: "QUANT.BIT_CONFIG", value: [{ conv1: { w: 8, a: 8 }, "layer5.0.conv1": { a: 0 } }] }]);
    const names = UNITS.map(([n]) => n).join(", ");
    expect(() => buildSslMethod(bad, new Generator(0))).toThrow(`no quantized layer named 'layer5.0.conv1'; valid names: ${names}`);
  });
});

describe("QUANT.ROUNDING reaches every quantizer", () => {
  for (const rounding of [undefined, "divide", "reciprocal"] as const) {
    it(`${rounding ?? "(default)"}: ssl encoder and linear/ptq classifier quantizers`, () => {
      const cfg = config(rounding ? [{ key: "QUANT.ROUNDING", value: rounding }] : []);
      const want = rounding ?? "divide";
      const built = buildSslMethod(cfg, new Generator(0));
      const linearCfg = loadConfig(path.join(root, "configs", "cifar", "resnet18_linear_eval_cifar.yaml"), rounding ? [{ key: "QUANT.ROUNDING", value: rounding }] : []);
      const net = createResNet(linearCfg.MODEL.ARCH, new Generator(1), { numClasses: linearCfg.MODEL.NUM_CLASSES });
      const classifier = quantizeClassifier(net, linearCfg);
      try {
        for (const q of [built.quant!, classifier])
          for (const l of q.layers) {
            expect(l.weight?.rounding ?? want, `${l.name} weight`).toBe(want);
            expect(l.act!.rounding, `${l.name} output`).toBe(want);
          }
      } finally {
        classifier.dispose();
        net.dispose();
        built.method.dispose();
        built.quant?.dispose();
      }
    });
  }
});
