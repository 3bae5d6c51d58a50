import { describe, expect, it } from "vitest";
import { MinMaxObserver, MomentumMinMaxObserver, createObserver } from "../../lib/quant/observers";
import { cpuOps } from "../../lib/tensor/binding";
import { tidy } from "../../lib/tensor/scope";
import { tensor } from "../../lib/tensor/tensor";
import { bits, decode, firstDiff, fromFixture, readFixture, type Encoded } from "../helpers/fixtures";

interface Case {
  shape: number[];
  axis: number | null;
  xs: Encoded[];
  min_first: Encoded;
  max_first: Encoded;
  argmin_first: Encoded;
  argmax_first: Encoded;
  min: Encoded;
  max: Encoded;
  qparams: Record<string, { scale: Encoded; zero_point: Encoded }>;
}

const fx = readFixture<{ cases: Case[]; momentum: { axis: number; momentum: number; steps: { xs: Encoded[]; min: Encoded; max: Encoded }[] } }>(
  "quant/observers.json",
);

const same = (a: ArrayLike<number>, e: Encoded) => firstDiff(bits(a), bits(decode(e)));

describe("observers against the original's MINMAX / MOMENTUM_MINMAX (PyTorch 2.13)", () => {
  it("per-tensor and per-channel min/max, first extreme positions, accumulation over two passes", () => {
    for (const c of fx.cases) {
      const tag = `[${c.shape}] axis ${c.axis}`;
      tidy(() => {
        const obs = new MinMaxObserver({ axis: c.axis, trackIndices: true });
        const xs = c.xs.map((e) => fromFixture(e, true));
        obs.observe(xs[0]);
        let r = obs.range()!;
        expect(same(r.min.toArraySync(), c.min_first), `${tag} min`).toBe(-1);
        expect(same(r.max.toArraySync(), c.max_first), `${tag} max`).toBe(-1);
        expect(Array.from(r.argmin!.toArraySync()), `${tag} argmin`).toEqual(Array.from(decode(c.argmin_first)));
        expect(Array.from(r.argmax!.toArraySync()), `${tag} argmax`).toEqual(Array.from(decode(c.argmax_first)));
        expect(r.source).toBe(xs[0]);
        expect(() => obs.observe(xs[1])).toThrow(/two different tensors/); // live range sources must not mix
        obs.reset();
        const plain = new MinMaxObserver({ axis: c.axis });
        for (const x of xs) plain.observe(x);
        r = plain.range()!;
        expect(same(r.min.toArraySync(), c.min), `${tag} accumulated min`).toBe(-1);
        expect(same(r.max.toArraySync(), c.max), `${tag} accumulated max`).toBe(-1);
        expect(r.source).toBeNull();
        const ops = cpuOps();
        for (const [key, want] of Object.entries(c.qparams)) {
          const [b, kind] = key.split("_");
          const [s, z, en] = ops.calcQParams(r.min.handle, r.max.handle, Number(b), kind === "sym");
          expect(same(ops.toArray(s) as Float32Array, want.scale), `${tag} scale ${key}`).toBe(-1);
          expect(Array.from(ops.toArray(z)), `${tag} zero point ${key}`).toEqual(Array.from(decode(want.zero_point)));
          expect(ops.item(en)).toBe(1);
          for (const h of [s, z, en]) ops.dispose(h);
        }
        for (const o of [obs, plain]) o.dispose();
        for (const x of xs) x.dispose();
      });
    }
  });

  it("momentum observer: EMA 0.99 after every observation, per-step reset of the step min/max only", () => {
    const m = fx.momentum;
    const obs = createObserver("MOMENTUM_MINMAX", { axis: m.axis, momentum: m.momentum });
    expect(obs).toBeInstanceOf(MomentumMinMaxObserver);
    for (const [i, step] of m.steps.entries()) {
      tidy(() => {
        obs.reset();
        for (const e of step.xs) obs.observe(fromFixture(e));
        const r = obs.range()!;
        expect(same(r.min.toArraySync(), step.min), `step ${i} min`).toBe(-1);
        expect(same(r.max.toArraySync(), step.max), `step ${i} max`).toBe(-1);
      });
    }
    obs.dispose();
  });

  it("a large tensor (parallel chunks): min/max and first positions as a plain scan", () => {
    const n = 1_000_003;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = Math.sin(i * 0.001) * 3 + (i % 7) * 0.01;
    x[777_777] = 9;
    x[900_001] = 9; // duplicated max: the first wins
    x[12] = -9;
    let mn = Infinity, mx = -Infinity, imn = -1, imx = -1;
    for (let i = 0; i < n; i++) {
      if (x[i] < mn) [mn, imn] = [x[i], i];
      if (x[i] > mx) [mx, imx] = [x[i], i];
    }
    tidy(() => {
      const t = tensor(x, [n]);
      t.requiresGrad = true;
      const obs = new MinMaxObserver({ axis: null, trackIndices: true });
      obs.observe(t);
      const r = obs.range()!;
      expect([r.min.itemSync(), r.max.itemSync(), r.argmin!.itemSync(), r.argmax!.itemSync()]).toEqual([mn, mx, imn, imx]);
      obs.dispose();
    });
  });

  it("NaN propagates as in torch.min / torch.max, and a zero scale switches the layer off", () => {
    const ops = cpuOps();
    tidy(() => {
      const obs = new MinMaxObserver({ axis: 0 });
      obs.observe(tensor([1, NaN, 3, 0, 0, 0], [2, 3]));
      const r = obs.range()!;
      expect(Array.from(r.min.toArraySync())).toEqual([NaN, 0]);
      const [s, , en] = ops.calcQParams(r.min.handle, r.max.handle, 8, true);
      expect(Array.from(ops.toArray(s))).toEqual([NaN, 0]);
      expect(ops.item(en)).toBe(1); // torch.min(scale) is NaN, not 0
      const [, , en2] = ops.calcQParams(tensor([0, -1], [2]).handle, tensor([0, 1], [2]).handle, 4, true);
      expect(ops.item(en2)).toBe(0);
      obs.dispose();
    });
  });

  it("unknown observer names are errors listing the allowed ones", () => {
    expect(() => createObserver("BASIC", { axis: null }, "QUANT.A.OBSERVER_METHOD.NAME")).toThrow(
      "QUANT.A.OBSERVER_METHOD.NAME: unknown observer 'BASIC'; allowed: MINMAX, MOMENTUM_MINMAX, MSE, HISTOGRAM, PERCENTILE, KL_HISTOGRAM, GAUSSIAN",
    );
  });
});
