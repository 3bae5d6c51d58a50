import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config";
import { buildSslMethod, type BuiltMethod } from "../../lib/ssl/build";
import type { SSQLSimSiam } from "../../lib/ssl/simsiam";
import { backward } from "../../lib/tensor/autograd";
import { Generator } from "../../lib/tensor/ops/random";
import * as R from "../../lib/tensor/ops/reduce";
import * as E from "../../lib/tensor/ops/elementwise";
import { tidy } from "../../lib/tensor/scope";
import type { Tensor } from "../../lib/tensor/tensor";

/**
 * QuantizedEncoder.sharedWeightPasses: an SSQL step's quantized passes (one per view) fake-quantize each weight once
 * and share it, so the fake quant's backward runs once on the summed gradient; the result is the per-pass one's.
 */
const recipe = path.resolve(__dirname, "..", "..", "configs", "cifar", "resnet18_ssql_simsiam_cifar.yaml");

describe("fake-quantized weights shared by one step's quantized passes", () => {
  let built: BuiltMethod;
  beforeAll(() => {
    built = buildSslMethod(loadConfig(recipe, [{ key: "SSL.SETTING.DIM", value: 64 }, { key: "SSL.SETTING.HIDDEN_DIM", value: 16 }]), new Generator(0));
  });
  afterAll(() => {
    built.method.dispose();
    built.quant?.dispose();
  });

  function quantizedStep(shared: boolean) {
    const q = built.quant!;
    const enc = (built.method as SSQLSimSiam).encoder;
    const gen = new Generator(11);
    const params = enc.parameters();
    for (const p of params) p.grad = null;
    const weights: Record<string, Tensor[]> = {};
    const out = tidy(() => {
      const x1 = gen.normal([4, 3, 32, 32]), x2 = gen.normal([4, 3, 32, 32]);
      q.observe();
      enc.forward(x1);
      enc.forward(x2);
      q.quantize(4, 4);
      const inner = enc.slot.hooks;
      enc.slot.hooks = { ...inner, weight: (n, w) => { const wq = inner.weight(n, w); (weights[n] ??= []).push(wq); return wq; } };
      const passes = () => [enc.forward(x1), enc.forward(x2)];
      const [z1, z2] = shared ? q.sharedWeightPasses(passes) : passes();
      q.fullPrecision();
      const z = [...z1.toArraySync(), ...z2.toArraySync()];
      backward(R.sum(E.mul(E.add(z1, z2), E.add(z1, z2))));
      return z;
    });
    const sameTensor = Object.fromEntries(Object.entries(weights).map(([n, [a, b]]) => [n, a === b]));
    return { z: out, grads: params.filter((p) => p.grad).map((p) => Array.from(p.grad!.toArraySync())), sameTensor };
  }

  it("reuses each unit's fake-quantized weight within the window only, with the same outputs and gradients", () => {
    const shared = quantizedStep(true);
    const perPass = quantizedStep(false);
    // Every unit's, the stem's too (its input needs no gradient, so only the window keeps it for the second pass).
    expect(Object.keys(shared.sameTensor).length).toBe(23);
    expect(Object.values(shared.sameTensor).every((s) => s)).toBe(true);
    expect(Object.values(perPass.sameTensor).some((s) => s)).toBe(false);
    expect(shared.z).toEqual(perPass.z);
    expect(shared.grads.length).toBe(perPass.grads.length);
    expect(shared.grads.length).toBeGreaterThan(60);
    let worst = 0;
    shared.grads.forEach((g, i) => {
      const ref = perPass.grads[i];
      const scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 1e-30);
      for (let k = 0; k < g.length; k++) worst = Math.max(worst, Math.abs(g[k] - ref[k]) / scale);
    });
    // Summing the two passes' gradients before the fake quant's backward instead of after only reorders float sums.
    expect(worst).toBeLessThan(1e-5);
  });

  it("observes each weight once in one step's observing passes, with the statistics of observing it in each", () => {
    const q = built.quant!;
    const enc = (built.method as SSQLSimSiam).encoder;
    const x = new Generator(12).normal([2, 3, 32, 32]).keep();
    const observe = (shared: boolean) => {
      const calls: Record<string, number> = {};
      const restore = q.layers.filter((l) => l.weight).map((l) => {
        const obs = l.weight!.observer;
        const orig = obs.observe.bind(obs);
        obs.observe = (t, r) => {
          calls[l.name] = (calls[l.name] ?? 0) + 1;
          orig(t, r);
        };
        return () => { obs.observe = orig; };
      });
      const stats = tidy(() => {
        q.observe();
        const passes = () => [enc.forward(x), enc.forward(x)];
        if (shared) q.sharedWeightPasses(passes);
        else passes();
        q.fullPrecision();
        return q.layers.filter((l) => l.weight).map((l) => {
          const r = l.weight!.observer.range()!;
          return [r.min, r.max, r.argmin!, r.argmax!].map((t) => Array.from(t.toArraySync()));
        });
      });
      restore.forEach((f) => f());
      return { calls, stats };
    };
    const shared = observe(true), each = observe(false);
    expect(Object.values(shared.calls).every((n) => n === 1)).toBe(true);
    expect(Object.values(each.calls).every((n) => n === 2)).toBe(true);
    expect(Object.keys(shared.calls).length).toBe(23);
    expect(shared.stats).toEqual(each.stats);
    x.dispose();
  });
});
