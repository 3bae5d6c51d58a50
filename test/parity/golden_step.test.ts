import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig, type Config } from "../../lib/config";
import type { Module } from "../../lib/nn/module";
import { BatchNorm } from "../../lib/nn/layers";
import { SGD } from "../../lib/optim/sgd";
import { buildSslMethod, type BuiltMethod } from "../../lib/ssl/build";
import { backward } from "../../lib/tensor/autograd";
import { add } from "../../lib/tensor/ops/elementwise";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import type { Tensor } from "../../lib/tensor/tensor";
import { reproducibleConvolutions } from "../distributed/helpers";
import { GENERATE_MS, compareGroup, expectScalarClose, goldenSkipReason, hostToTensor, loadGolden, loadInit, type Golden } from "../helpers/golden";

/**
 * One training step of SSQL_SimSiam, SSQL_BYOL and SimSiam on a CIFAR ResNet-18 against the original code itself
 * (test/fixtures/generate_golden.py runs its classes from ../shared/reference-code): same initial weights, BN state
 * and views, bits fixed at W=4 / A=5 with the shipped BIT_CONFIG, QUANT.ROUNDING at its default (divide, as the
 * original). Loss within 1e-5 relative, every parameter gradient within 1e-4 normalized error, every BN running
 * statistic within 1e-6, weight scales bit-exact, activation scales within 1e-5. Then two steps with the optimizer
 * update between them.
 */

const root = path.resolve(__dirname, "..", "..");
const skip = goldenSkipReason();
if (skip) console.warn(`golden_step: skipped: ${skip}`);

const LOSS_TOL = 1e-5;
const GRAD_TOL = 1e-4;
const STAT_TOL = 2e-6; // worst seen 1.1e-6 (a BN running mean of layer4 in SSQL_BYOL)
/**
 * Weight scales come from the loaded weights alone: bit-exact. An activation scale is (max - min) / (2^b - 1) of one
 * FP conv output, so it carries that output's float noise (up to ~2e-6 seen: a different convolution summation order).
 */
const ACT_SCALE_TOL = 1e-5;
const UPDATE_TOL = 1e-5;

/** The original's plain names with its method prefixes → our state-dict keys. */
function rename(key: string): string | null {
  if (key.endsWith("num_batches_tracked")) return null;
  if (key.startsWith("encoder_q.")) return `encoder.${key.slice("encoder_q.".length)}`;
  return key; // encoder_k.*, predictor.* are ours already
}

/**
 * The CIFAR SSQL recipe (its BIT_CONFIG; MoCo's own yaml for SSQL_MoCo) at the fixture's sizes; a one-value
 * BIT_RANGE pins the drawn bits.
 */
function configFor(type: string, g: Golden): Config {
  const o = (key: string, value: unknown) => ({ key, value });
  const moco = type === "SSQL_MoCo";
  return loadConfig(path.join(root, "configs", "cifar", moco ? "resnet18_ssql_moco_cifar.yaml" : "resnet18_ssql_simsiam_cifar.yaml"), [
    o("SSL.TYPE", type),
    o("SSL.SETTING.DIM", Number(g.meta.dim)),
    o("SSL.SETTING.HIDDEN_DIM", Number(g.meta.hidden_dim)),
    o("SSL.SETTING.MOMENTUM", Number(g.meta.momentum ?? 0.99)),
    ...(moco ? [o("SSL.SETTING.MOCO_K", Number(g.meta.moco_k)), o("SSL.SETTING.T", Number(g.meta.temperature))] : []),
    o("QUANT.W.BIT_RANGE", [Number(g.meta.w_bit), Number(g.meta.w_bit) + 1]),
    o("QUANT.A.BIT_RANGE", [Number(g.meta.a_bit), Number(g.meta.a_bit) + 1]),
  ]);
}

interface StepResult {
  loss: number;
  bits?: { w: number; a: number };
}

function runStep(built: BuiltMethod, g: Golden): StepResult {
  const m = built.method;
  m.train();
  const x1 = hostToTensor(g.tensors.x1);
  const x2 = hostToTensor(g.tensors.x2);
  try {
    return tidy(() => {
      const out = m.step(x1, x2);
      backward(out.loss);
      return { loss: out.loss.itemSync(), bits: out.bits };
    });
  } finally {
    x1.dispose();
    x2.dispose();
  }
}

function byName(m: Module): { params: Map<string, Tensor>; buffers: Map<string, Tensor> } {
  return { params: new Map(m.namedParameters()), buffers: new Map(m.namedBuffers()) };
}

function report(what: string, c: { worst: { key: string; err: number }; count: number }): void {
  console.log(`${what}: ${c.count} tensors, worst ${c.worst.err.toExponential(2)} at ${c.worst.key}`);
}

/** Every parameter and BN statistic against the fixture; also: a parameter has a gradient iff PyTorch's has. */
function compareAll(built: BuiltMethod, g: Golden, label: string, suffix = ""): void {
  const { params, buffers } = byName(built.method);
  const grad = `grad${suffix}`, after = `after${suffix}`;
  const gradKeys = new Set(Object.keys(g.tensors).filter((k) => k.startsWith(`${grad}/`)).map((k) => rename(k.slice(grad.length + 1))));
  for (const [name, p] of params) expect(p.grad !== null, `${name}: has a gradient`).toBe(gradKeys.has(name));
  report(`${label} grads`, compareGroup(g, grad, (k) => params.get(rename(k)!)?.grad, GRAD_TOL));
  // after/ holds every BN running statistic, and for BYOL also the momentum-updated target parameters.
  report(`${label} after-step state`, compareGroup(g, after, (k) => buffers.get(rename(k)!) ?? params.get(rename(k)!), STAT_TOL));
  const bnStats = [...built.method.namedModules()].filter(([, m]) => m instanceof BatchNorm).length * 2;
  expect(Object.keys(g.tensors).filter((k) => k.startsWith(`${after}/`) && /running_(mean|var)$/.test(k)).length).toBe(bnStats);
}

/** The quantizers' scales, computed from what the FP passes observed, against the original's. */
function compareScales(built: BuiltMethod, g: Golden, label: string, group = "scale"): void {
  const quant = built.quant!;
  const c = compareGroup(
    g,
    group,
    (k) => {
      const m = /^(.*)\.(w|a)$/.exec(k)!;
      const q = m[2] === "w" ? quant.layer(m[1])?.weight : quant.layer(m[1])?.act;
      return q?.qparams().qp.scale;
    },
    ACT_SCALE_TOL,
  );
  report(`${label} scales`, c);
  let weights = 0;
  for (const [k, h] of Object.entries(g.tensors)) {
    const m = new RegExp(`^${group}/(.*)\\.w$`).exec(k);
    if (!m) continue;
    const ours = quant.layer(m[1])!.weight!.qparams().qp.scale.toArraySync() as Float32Array;
    expect(Array.from(ours), `${k}: weight scales bit-exact`).toEqual(Array.from(h.data as Float32Array));
    weights++;
  }
  expect(weights).toBeGreaterThan(0);
  // Every active quantizer is in the fixture, and no other.
  const active = Object.entries(quant.activeBits()).flatMap(([n, b]) => [...(b.w ? [`${n}.w`] : []), ...(b.a ? [`${n}.a`] : [])]);
  const fixture = Object.keys(g.tensors).filter((k) => k.startsWith(`${group}/`)).map((k) => k.slice(group.length + 1));
  expect(active.sort()).toEqual(fixture.sort());
}

// oneDNN's direct convolutions, as the original's (PyTorch's): the running statistics are compared at 2e-6 and
// measured 1.1e-6 apart with them; the other algorithms differ from them by about 1e-6 relative.
reproducibleConvolutions();

describe.skipIf(skip !== null)("one training step against the original's own code", () => {
  const built: BuiltMethod[] = [];
  afterAll(() => {
    for (const b of built) {
      b.method.dispose();
      b.quant?.dispose();
    }
  });

  // fixture name, SSL.TYPE, whether bits are drawn, and what the state comparison covers
  const cases = [
    ["ssql_simsiam", "SSQL_SimSiam", true, "every gradient and BN running statistic"],
    // The target encoder starts from its own weights in the fixture (loaded over the construction-time copy).
    ["ssql_byol", "SSQL_BYOL", true, "every gradient, BN running statistic and momentum-updated target weight"],
    ["simsiam", "SimSiam", false, "every gradient and BN running statistic"],
    // The original's shuffle-BN ran in a world of one rank; the queue is part of the state (init/ and after/).
    ["ssql_moco", "SSQL_MoCo", true, "every gradient, BN running statistic, momentum-updated key weight and the queue"],
  ] as const;
  for (const [fixture, type, quantized, what] of cases) {
    describe(type, () => {
      let g: Golden;
      let b: BuiltMethod;
      let r: StepResult;
      beforeAll(async () => {
        g = await loadGolden(fixture);
        b = buildSslMethod(configFor(type, g), new Generator(0));
        built.push(b);
        loadInit(g, b.method, rename);
        r = runStep(b, g);
      }, GENERATE_MS);

      it(quantized ? "draws the fixed bits and matches the loss" : "matches the loss", () => {
        expect(r.bits).toEqual(quantized ? { w: Number(g.meta.w_bit), a: Number(g.meta.a_bit) } : undefined);
        expectScalarClose("loss", r.loss, g.tensors.loss.data[0] as number, LOSS_TOL);
      });
      if (quantized) it("computes the same quantization scales", () => compareScales(b, g, type));
      if (fixture === "ssql_moco") it("advances the queue pointer as the original", () => expect((b.method as unknown as { queuePtr: number }).queuePtr).toBe(Number(g.meta.queue_ptr)));
      it(`matches ${what}`, () => compareAll(b, g, type));
    });
  }
});

describe.skipIf(skip !== null)("two SSQL_SimSiam steps with the optimizer update between them, against the original", () => {
  let g: Golden;
  let b: BuiltMethod;
  let r1: StepResult;
  let r2: StepResult;
  let updateErr: { key: string; err: number; count: number };
  beforeAll(async () => {
    g = await loadGolden("ssql_two_step");
    b = buildSslMethod(configFor("SSQL_SimSiam", g), new Generator(0));
    loadInit(g, b.method, rename);
    // The fixture's bit sequence ((w_bit, a_bit), then (w_bit2, a_bit2)), standing in for the sampler's draws as
    // FixedBits stands in for the original's random.choice.
    const seq = [
      { w: Number(g.meta.w_bit), a: Number(g.meta.a_bit) },
      { w: Number(g.meta.w_bit2), a: Number(g.meta.a_bit2) },
    ];
    b.sampler!.next = () => seq.shift()!;
    r1 = runStep(b, g);
  }, GENERATE_MS);
  afterAll(() => {
    b?.method.dispose();
    b?.quant?.dispose();
  });

  it("step 1: loss, scales, gradients and BN statistics", () => {
    expectScalarClose("loss", r1.loss, g.tensors.loss.data[0] as number, LOSS_TOL);
    compareScales(b, g, "step 1");
    compareAll(b, g, "step 1");
  });

  it("the optimizer update (SGD, BASE_LR, momentum, weight decay of the yaml) gives the original's parameters", () => {
    const params = new Map(b.method.namedParameters());
    // runners/ssl.py: torch.optim.SGD(model.parameters(), BASE_LR, momentum, weight_decay); no gradient, no update.
    const opt = new SGD([...params.values()], { lr: Number(g.meta.lr), momentum: Number(g.meta.sgd_momentum), weightDecay: Number(g.meta.weight_decay) });
    tidy(() => opt.step());
    opt.zeroGrad();
    // The update moves each parameter by lr x (momentum buffer); the gradients themselves agree within GRAD_TOL.
    const c = compareGroup(g, "update", (k) => params.get(rename(k)!), UPDATE_TOL);
    updateErr = { ...c.worst, count: c.count };
    report("update", c);
    // Step 2 starts from the original's updated parameters: ours agree to ~2e-6, but at 3-bit weights a weight within
    // that noise of a rounding boundary (or of the channel's max, which sets the scale) flips a whole step, and a few
    // flips move the step-2 loss by ~1e-3 relative. The update itself is what the comparison above checks.
    for (const [k, h] of Object.entries(g.tensors)) {
      if (!k.startsWith("update/")) continue;
      const p = params.get(rename(k.slice(7))!)!;
      const d = hostToTensor(h);
      p.ops.copy_(p.handle, d.handle);
      d.dispose();
    }
    // The fixture's margin shifts of step 2 (betas only), applied as the generator applied them after the update.
    for (const [k, h] of Object.entries(g.tensors)) {
      if (!k.startsWith("shift/")) continue;
      const p = params.get(rename(k.slice(6))!)!;
      const d = hostToTensor(h);
      tidy(() => p.ops.copy_(p.handle, add(p, d).handle));
      d.dispose();
    }
    r2 = runStep(b, g);
  });

  it("step 2 with the next bits: loss, scales, gradients and BN statistics", () => {
    expect(updateErr).toBeDefined();
    expect(r2.bits).toEqual({ w: Number(g.meta.w_bit2), a: Number(g.meta.a_bit2) });
    expectScalarClose("loss (step 2)", r2.loss, g.tensors.loss2.data[0] as number, LOSS_TOL);
    compareScales(b, g, "step 2", "scale2");
    compareAll(b, g, "step 2", "2");
  });
});
