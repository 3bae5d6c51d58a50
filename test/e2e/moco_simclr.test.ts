import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config";
import { buildSslMethod } from "../../lib/ssl/build";
import { MoCo } from "../../lib/ssl/moco";
import { SimCLR } from "../../lib/ssl/simclr";
import { backward, noGrad } from "../../lib/tensor/autograd";
import { normalize } from "../../lib/tensor/ops/norm";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import { tensor } from "../../lib/tensor/tensor";
import { normErr } from "../helpers/numeric";

const configs = path.resolve(__dirname, "../../configs/cifar");
const B = 8;
const small = (extra: { key: string; value: unknown }[] = []) => [
  { key: "SSL.SETTING.DIM", value: 16 },
  { key: "SSL.SETTING.HIDDEN_DIM", value: 32 },
  ...extra,
];

function views(seed: number) {
  const g = new Generator(seed);
  return [g.normal([B, 3, 16, 16]).keep(), g.normal([B, 3, 16, 16]).keep()];
}

/** Rows of a [n, d] array. */
function rows(a: Float32Array, n: number, d: number): Float32Array[] {
  return Array.from({ length: n }, (_, i) => a.subarray(i * d, (i + 1) * d));
}

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);

describe("MoCo v2 and SSQL_MoCo", () => {
  it("SSQL_MoCo enqueues this step's keys and draws bits in range", () => {
    const cfg = loadConfig(path.join(configs, "resnet18_ssql_moco_cifar.yaml"), small([{ key: "SSL.SETTING.MOCO_K", value: 32 }]));
    const built = buildSslMethod(cfg, new Generator(3));
    const moco = built.method as MoCo;
    moco.train();
    const [xq, xk] = views(5);
    const queueBefore = Float32Array.from(moco.queue.toArraySync() as Float32Array);
    const out = tidy(() => {
      const o = moco.step(xq, xk);
      backward(o.loss);
      return o;
    });
    expect(out.bits!.w).toBeGreaterThanOrEqual(2);
    expect(out.bits!.w).toBeLessThan(9);
    expect(out.bits!.a).toBeGreaterThanOrEqual(4);
    expect(out.bits!.a).toBeLessThan(9);
    expect(moco.queuePtr).toBe(B);

    // The keys of this step: the momentum encoder (already updated by the step) on xk, normalised. BN runs on batch
    // statistics in train mode, so recomputing gives the same keys.
    const k = noGrad(() => normalize(moco.keyEncoder.forward(xk), 1));
    const K = 32;
    const D = 16;
    const keys = rows(k.toArraySync() as Float32Array, B, D);
    const queue = moco.queue.toArraySync() as Float32Array; // [D, K]
    for (let j = 0; j < K; j++) {
      const col = Float32Array.from({ length: D }, (_, d) => queue[d * K + j]);
      const expected = j < B ? keys[j] : Float32Array.from({ length: D }, (_, d) => queueBefore[d * K + j]);
      expect(normErr(col, expected)).toBeLessThan(1e-6);
    }
    expect(Number.isFinite(out.loss.itemSync())).toBe(true);
    for (const t of [xq, xk, k, out.loss]) t.dispose();
    moco.dispose();
    built.quant?.dispose();
  });

  it("MoCo's loss is cross-entropy over [q·k, q·queue] / T with the positive first", () => {
    const cfg = loadConfig(path.join(configs, "resnet18_moco_cifar.yaml"), small([{ key: "SSL.SETTING.MOCO_K", value: 32 }]));
    const moco = buildSslMethod(cfg, new Generator(8)).method as MoCo;
    moco.train();
    const [xq, xk] = views(9);
    const queue = Float32Array.from(moco.queue.toArraySync() as Float32Array);
    const loss = tidy(() => moco.step(xq, xk).loss);
    const q = noGrad(() => normalize(moco.encoder.forward(xq), 1));
    const k = noGrad(() => normalize(moco.keyEncoder.forward(xk), 1));
    const D = 16;
    const K = 32;
    const T = cfg.SSL.SETTING.T;
    const qs = rows(q.toArraySync() as Float32Array, B, D);
    const ks = rows(k.toArraySync() as Float32Array, B, D);
    let total = 0;
    for (let i = 0; i < B; i++) {
      const logits = [dot(qs[i], ks[i]) / T];
      for (let j = 0; j < K; j++) logits.push(qs[i].reduce((s, v, d) => s + v * queue[d * K + j], 0) / T);
      const m = Math.max(...logits);
      const lse = m + Math.log(logits.reduce((s, v) => s + Math.exp(v - m), 0));
      total += lse - logits[0];
    }
    expect(loss.itemSync()).toBeCloseTo(total / B, 4);
    for (const t of [xq, xk, q, k, loss]) t.dispose();
    moco.dispose();
  });

  it("MoCo's gradient is that of its loss against the queue as it was before the step's enqueue", () => {
    const cfg = loadConfig(path.join(configs, "resnet18_moco_cifar.yaml"), small([{ key: "SSL.SETTING.MOCO_K", value: 32 }]));
    const moco = buildSslMethod(cfg, new Generator(8)).method as MoCo;
    moco.train();
    const [xq, xk] = views(9);
    const queue = Float32Array.from(moco.queue.toArraySync() as Float32Array);
    const params = moco.parameters().filter((p) => p.requiresGrad);
    tidy(() => backward(moco.step(xq, xk).loss));
    const fromStep = params.map((p) => Float32Array.from(p.grad!.toArraySync() as Float32Array));
    for (const p of params) p.grad = null;

    // dL/dq_i = (sum_j p_ij c_j - k_i) / (B T) with c_0 = k_i, c_j = queue column j, p = softmax of the logits;
    // then back through q = normalize(E_q(xq)).
    const k = noGrad(() => normalize(moco.keyEncoder.forward(xk), 1));
    const ks = rows(k.toArraySync() as Float32Array, B, 16);
    const D = 16;
    const K = 32;
    const T = cfg.SSL.SETTING.T;
    tidy(() => {
      const q = normalize(moco.encoder.forward(xq), 1);
      const qs = rows(q.toArraySync() as Float32Array, B, D);
      const dq = new Float32Array(B * D);
      for (let i = 0; i < B; i++) {
        const cols = [ks[i], ...Array.from({ length: K }, (_, j) => Float32Array.from({ length: D }, (_, d) => queue[d * K + j]))];
        const logits = cols.map((c) => dot(qs[i], c) / T);
        const m = Math.max(...logits);
        const e = logits.map((v) => Math.exp(v - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < D; d++) dq[i * D + d] = (cols.reduce((s, c, j) => s + (e[j] / z) * c[d], 0) - ks[i][d]) / (B * T);
      }
      backward(q, tensor(dq, [B, D]));
    });
    params.forEach((p, i) => expect(normErr(fromStep[i], p.grad!.toArraySync() as Float32Array), `parameter ${i}`).toBeLessThan(1e-4));
    for (const t of [xq, xk, k]) t.dispose();
    moco.dispose();
  });
});

describe("SimCLR (InfoNCEv2)", () => {
  it("matches NT-Xent computed by hand from the normalised features", () => {
    const cfg = loadConfig(path.join(configs, "resnet18_simclr_cifar.yaml"), small());
    const simclr = buildSslMethod(cfg, new Generator(4)).method as SimCLR;
    simclr.train();
    const [x1, x2] = views(6);
    const loss = tidy(() => simclr.step(x1, x2).loss);
    const f1 = noGrad(() => normalize(simclr.encoder.forward(x1), 1));
    const f2 = noGrad(() => normalize(simclr.encoder.forward(x2), 1));
    const D = 16;
    const f = [...rows(f1.toArraySync() as Float32Array, B, D), ...rows(f2.toArraySync() as Float32Array, B, D)];
    const T = cfg.SSL.SETTING.T;
    let total = 0;
    for (let i = 0; i < 2 * B; i++) {
      const pos = (i + B) % (2 * B);
      let denom = 0;
      for (let j = 0; j < 2 * B; j++) if (j !== i) denom += Math.exp(dot(f[i], f[j]) / T);
      total += -Math.log(Math.exp(dot(f[i], f[pos]) / T) / denom);
    }
    expect(loss.itemSync()).toBeCloseTo(total / (2 * B), 4);
    for (const t of [x1, x2, f1, f2, loss]) t.dispose();
    simclr.dispose();
  });
});
