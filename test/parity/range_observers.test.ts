import { describe, expect, it } from "vitest";
import { createObserver } from "../../lib/quant/observers";
import { cpuOps } from "../../lib/tensor/binding";
import { tidy } from "../../lib/tensor/scope";
import { decode, fromFixture, readFixture, type Encoded } from "../helpers/fixtures";

// test/fixtures/original/generate_observers.py: the original's MSE, HISTOGRAM, PERCENTILE, KL_HISTOGRAM and GAUSSIAN
// observers (quant_tools/observers) run with the local torch and scipy over fixed weights and activation batches.
interface Case {
  observer: string;
  kind: "weight" | "act" | "relu";
  axis: number;
  granularity: "layerwise" | "channelwise";
  bits: number;
  alpha: number;
  bins: number;
  min: Encoded;
  max: Encoded;
  qparams: Record<"sym" | "asym", { scale: Encoded; zero_point: Encoded }>;
}

const fx = readFixture<{ inputs: Record<string, Encoded[]>; cases: Case[] }>("quant/range_observers.json");

const REL = 1e-6;

/** Index of the first element further than REL (relative) from the expected value, or -1; NaN matches NaN. */
function relDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  if (got.length !== want.length) return 0;
  for (let i = 0; i < got.length; i++) {
    const [a, b] = [got[i], want[i]];
    if (Number.isNaN(a) && Number.isNaN(b)) continue;
    if (!(Math.abs(a - b) <= REL * Math.max(Math.abs(a), Math.abs(b)))) return i;
  }
  return -1;
}

const roundHalfEven = (v: number) => {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
};

/** The original uniform quantizer's integers round(x / scale) + zero_point, clamped, of every value in xs (fp32 division). */
function grid(xs: Float32Array[], shape: number[], axis: number | null, scale: ArrayLike<number>, zp: ArrayLike<number>, bits: number, sym: boolean): Int32Array {
  const [lo, hi] = sym ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1];
  const inner = axis === null ? 1 : shape.slice(axis + 1).reduce((p, d) => p * d, 1);
  const C = axis === null ? 1 : shape[axis];
  const out = new Int32Array(xs.length * xs[0].length);
  let k = 0;
  for (const x of xs)
    for (let i = 0; i < x.length; i++) {
      const c = axis === null ? 0 : Math.floor(i / inner) % C;
      const v = roundHalfEven(Math.fround(x[i] / scale[c])) + zp[c];
      out[k++] = Math.min(hi, Math.max(lo, v));
    }
  return out;
}

describe("range observers against the original's MSE / HISTOGRAM / PERCENTILE / KL_HISTOGRAM / GAUSSIAN (PyTorch 2.13, scipy)", () => {
  const ops = cpuOps();
  for (const name of ["MSE", "HISTOGRAM", "PERCENTILE", "KL_HISTOGRAM", "GAUSSIAN"]) {
    it(`${name}: ranges, scales (1e-6 relative) and zero points, identical integer grids; weights and activations, per tensor and per channel, 2..8 bits`, () => {
      const cases = fx.cases.filter((c) => c.observer === name);
      expect(cases.length).toBeGreaterThanOrEqual(18);
      for (const c of cases) {
        const axis = c.granularity === "channelwise" ? c.axis : null;
        const tag = `${name} ${c.kind} ${c.granularity} ${c.bits} bits (alpha ${c.alpha}, bins ${c.bins})`;
        tidy(() => {
          const xs = fx.inputs[c.kind].map((e) => fromFixture(e));
          const obs = createObserver(name, { axis, bits: c.bits, alpha: c.alpha, bins: c.bins });
          if (c.kind === "weight") obs.observe(xs[0]);
          else {
            // The original's calibration: a calc_init_params pass over the batches, then an update pass.
            if (obs.needsRangePass) for (const x of xs) obs.observeRange!(x);
            for (const x of xs) obs.observe(x);
          }
          const r = obs.range()!;
          expect(relDiff(r.min.toArraySync(), decode(c.min)), `${tag}: min ${r.min.toArraySync()} vs ${decode(c.min)}`).toBe(-1);
          expect(relDiff(r.max.toArraySync(), decode(c.max)), `${tag}: max ${r.max.toArraySync()} vs ${decode(c.max)}`).toBe(-1);
          const data = xs.map((x) => x.toArraySync() as Float32Array);
          for (const [kind, want] of Object.entries(c.qparams)) {
            const sym = kind === "sym";
            const [s, z, en] = ops.calcQParams(r.min.handle, r.max.handle, c.bits, sym);
            const scale = ops.toArray(s) as Float32Array;
            const zp = Array.from(ops.toArray(z));
            const wantScale = decode(want.scale) as Float32Array;
            const wantZp = Array.from(decode(want.zero_point)).map((v) => v + 0);
            expect(relDiff(scale, wantScale), `${tag} ${kind}: scale ${scale} vs ${wantScale}`).toBe(-1);
            expect(zp, `${tag} ${kind}: zero point`).toEqual(wantZp);
            const shape = [...xs[0].shape];
            const ours = grid(data, shape, axis, scale, zp, c.bits, sym);
            const theirs = grid(data, shape, axis, wantScale, wantZp, c.bits, sym);
            const first = ours.findIndex((v, i) => v !== theirs[i]);
            expect(first, `${tag} ${kind}: integer grid differs at ${first}`).toBe(-1);
            for (const h of [s, z, en]) ops.dispose(h);
          }
          obs.dispose();
          for (const x of xs) x.dispose();
        });
      }
    });
  }
});
