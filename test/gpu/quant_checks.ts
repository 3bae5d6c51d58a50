/**
 * The quantization ops on CUDA (native/cuda/quant_ops.cc over fake_quant.cu) against the CPU ops that define them:
 * forward outputs, masks, min/max, indices, EMA and qparams bit for bit; the backward ops within 1e-5 (normalized);
 * bad calls with the same error class and message. Used by check.ts (`quant` mode) and cuda-ops.test.ts.
 */
import type { DeviceOps, NativeTensor } from "../../lib/tensor/native";
import type { QuantRounding } from "../../lib/tensor/native/quant";
import { outputError, rand } from "../shared/op-cases";
import type { CudaCheck } from "./checks";

type HostArray = Float32Array | Int32Array | Uint8Array;
type Arrays = Record<string, HostArray>;

/** Uploads inputs and frees every handle it saw once the case has read its outputs back. */
class Arena {
  private readonly handles: NativeTensor[] = [];
  constructor(readonly ops: DeviceOps) {}
  up(data: HostArray, shape: readonly number[]): NativeTensor {
    return this.own(this.ops.fromArray(data, shape));
  }
  own<T extends NativeTensor | null>(h: T): T {
    if (h) this.handles.push(h);
    return h;
  }
  read(h: NativeTensor | null): HostArray {
    if (!h) throw new Error("expected a tensor, got null");
    return this.ops.toArray(h) as HostArray;
  }
  dispose(): void {
    for (const h of this.handles) if (!this.ops.isDisposed(h)) this.ops.dispose(h);
  }
}

function onBoth(cuda: DeviceOps, cpu: DeviceOps | null, f: (a: Arena) => Arrays): { gpu: Arrays; cpu: Arrays } {
  if (!cpu) throw new Error("the CPU addon is needed as the reference and did not load");
  const run = (ops: DeviceOps) => {
    const a = new Arena(ops);
    try {
      return f(a);
    } finally {
      a.dispose();
    }
  };
  return { gpu: run(cuda), cpu: run(cpu) };
}

/** Elements whose bits differ (any NaN equals any NaN), with the first one described. */
function bitDiff(got: HostArray, want: HostArray): { count: number; first?: string } {
  if (got.length !== want.length) return { count: Math.max(got.length, want.length), first: `length ${got.length} vs ${want.length}` };
  const gi = got instanceof Float32Array ? new Uint32Array(got.buffer, got.byteOffset, got.length) : got;
  const wi = want instanceof Float32Array ? new Uint32Array(want.buffer, want.byteOffset, want.length) : want;
  let count = 0;
  let first: string | undefined;
  for (let i = 0; i < got.length; i++) {
    if (gi[i] === wi[i] || (Number.isNaN(got[i]) && Number.isNaN(want[i]))) continue;
    if (count++ === 0) first = `[${i}] cuda ${got[i]} cpu ${want[i]}`;
  }
  return { count, first };
}

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

/** Every output bit-identical; returns a one-line summary. */
function exact(r: { gpu: Arrays; cpu: Arrays }, what: string): string {
  const parts: string[] = [];
  for (const k of Object.keys(r.cpu)) {
    const d = bitDiff(r.gpu[k], r.cpu[k]);
    assert(d.count === 0, `${what}: ${k} differs in ${d.count} of ${r.cpu[k].length} elements, first ${d.first}`);
    parts.push(`${k} ${r.cpu[k].length}`);
  }
  return `${what}: bit-exact (${parts.join(", ")})`;
}

function close(r: { gpu: Arrays; cpu: Arrays }, what: string, tol = 1e-5): string {
  const parts: string[] = [];
  for (const k of Object.keys(r.cpu)) {
    const err = outputError(r.gpu[k], r.cpu[k]);
    const d = bitDiff(r.gpu[k], r.cpu[k]);
    assert(err <= tol, `${what}: ${k} normalized error ${err} > ${tol} (${d.count} elements differ, first ${d.first})`);
    parts.push(`${k} err ${err.toExponential(1)}, ${d.count} of ${r.cpu[k].length} not bit-equal`);
  }
  return `${what}: ${parts.join("; ")}`;
}

/** Uniform values plus the awkward ones: ±0, ±inf, NaN, exact half steps of `scale`, huge magnitudes. */
function awkward(n: number, seed: number, spread: number, scale: number): Float32Array {
  const x = rand(n, seed, -spread, spread);
  const specials = [0, -0, Infinity, -Infinity, NaN, 1e30, -1e30, 0.5 * scale, 1.5 * scale, -2.5 * scale, 127.5 * scale];
  for (let i = 0; i < specials.length && i * 7 < n; i++) x[(i * 7919 + seed) % n] = specials[i];
  return x;
}

const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface FqCase {
  name: string;
  shape: number[];
  axis: number | null;
  qmin: number;
  qmax: number;
  enabled: number | null;
  /** Per-channel scales drawn in [lo, hi]; a 0 puts one zero scale in (per channel only). */
  scale: [number, number];
  zeroScale?: boolean;
  zp: (c: number) => number;
}

const fqCases: FqCase[] = [
  { name: "per tensor, uint8 grid, float4 path", shape: [128, 64, 8, 8], axis: null, qmin: 0, qmax: 255, enabled: null, scale: [0.01, 0.01], zp: () => 128 },
  { name: "per tensor, odd size (scalar tail)", shape: [3, 5, 7], axis: null, qmin: -8, qmax: 7, enabled: null, scale: [0.13, 0.13], zp: () => 3 },
  { name: "per tensor, enabled = 1", shape: [4, 33], axis: null, qmin: 0, qmax: 15, enabled: 1, scale: [0.07, 0.07], zp: () => 5 },
  { name: "per tensor, enabled = 0 (identity)", shape: [4, 33], axis: null, qmin: 0, qmax: 15, enabled: 0, scale: [0.07, 0.07], zp: () => 5 },
  { name: "per channel axis 0, 3x3 kernels (scalar path)", shape: [64, 32, 3, 3], axis: 0, qmin: -8, qmax: 7, enabled: null, scale: [0.01, 0.1], zp: () => 0 },
  { name: "per channel axis 1, inner 64 (float4 path)", shape: [4, 16, 8, 8], axis: 1, qmin: 0, qmax: 255, enabled: 1, scale: [0.005, 0.02], zp: (c) => (c * 37) % 256 },
  { name: "per channel last axis, a zero scale", shape: [10, 7], axis: -1, qmin: -128, qmax: 127, enabled: null, scale: [0.01, 0.05], zeroScale: true, zp: () => 0 },
];

function channelsOf(c: FqCase): number {
  if (c.axis === null) return 1;
  return c.shape[c.axis < 0 ? c.axis + c.shape.length : c.axis];
}

function fqInputs(c: FqCase, seed: number) {
  const C = channelsOf(c);
  const scale = rand(C, seed + 1, c.scale[0], c.scale[1]);
  if (c.zeroScale) scale[1] = 0;
  const zp = Int32Array.from({ length: C }, (_, i) => c.zp(i));
  const span = (c.qmax - c.qmin) * c.scale[1] * 0.6;
  return { x: awkward(numel(c.shape), seed, span, c.scale[0]), scale, zp, g: rand(numel(c.shape), seed + 2) };
}

function fakeQuantForward(
  a: Arena, c: FqCase, inp: ReturnType<typeof fqInputs>, withMask: boolean, rounding: QuantRounding = "divide",
): [NativeTensor, NativeTensor | null] {
  const C = channelsOf(c);
  const x = a.up(inp.x, c.shape), s = a.up(inp.scale, [C]), z = a.up(inp.zp, [C]);
  const en = c.enabled === null ? null : a.up(Int32Array.of(c.enabled), [1]);
  const [o, m] =
    c.axis === null
      ? a.ops.fakeQuantPerTensor(x, s, z, c.qmin, c.qmax, en, withMask, rounding)
      : a.ops.fakeQuantPerChannel(x, s, z, c.axis, c.qmin, c.qmax, en, withMask, rounding);
  return [a.own(o), a.own(m)];
}

/** The observer → qparams → fake quant → range backward chain of a weight or an activation quantizer. */
function rangeChain(
  a: Arena, x: Float32Array, g: Float32Array, shape: number[], axis: number | null, bits: number, symmetric: boolean, rounding: QuantRounding,
): Arrays {
  const C = axis === null ? 1 : shape[axis];
  const o = a.ops;
  const hx = a.up(x, shape), hg = a.up(g, shape);
  const mn = a.own(o.full([C], 0, "float32")), mx = a.own(o.full([C], 0, "float32"));
  const amin = a.own(o.full([C], 0, "int32")), amax = a.own(o.full([C], 0, "int32"));
  o.aminmax_(hx, mn, mx, amin, amax, axis, false);
  const [s, z, en] = o.calcQParams(mn, mx, bits, symmetric).map((h) => a.own(h));
  const qmin = symmetric ? -(2 ** (bits - 1)) : 0, qmax = symmetric ? 2 ** (bits - 1) - 1 : 2 ** bits - 1;
  const [out] =
    axis === null
      ? o.fakeQuantPerTensor(hx, s, z, qmin, qmax, en, false, rounding)
      : o.fakeQuantPerChannel(hx, s, z, axis, qmin, qmax, en, false, rounding);
  a.own(out);
  const dx = a.own(o.fakeQuantRangeBackward(hg, hx, s, z, mn, mx, amin, amax, axis, qmin, qmax, symmetric, en, rounding));
  return { min: a.read(mn), max: a.read(mx), argmin: a.read(amin), argmax: a.read(amax), scale: a.read(s), zeroPoint: a.read(z), enabled: a.read(en), out: a.read(out), dx: a.read(dx) };
}

/** Same op, same bad arguments: the same error class and message on both devices. */
function sameError(cuda: DeviceOps, cpu: DeviceOps, what: string, call: (o: DeviceOps, a: Arena) => unknown): string {
  const outcome = (ops: DeviceOps) => {
    const a = new Arena(ops);
    try {
      call(ops, a);
      return "no error";
    } catch (e) {
      return `${(e as Error).name}: ${(e as Error).message}`;
    } finally {
      a.dispose();
    }
  };
  const g = outcome(cuda), c = outcome(cpu);
  assert(c !== "no error", `${what}: the CPU op accepted the call`);
  assert(g === c, `${what}: CUDA says '${g}', the CPU '${c}'`);
  return c;
}

export const quantChecks: CudaCheck[] = [
  {
    name: "fakeQuantPerTensor / fakeQuantPerChannel: output and mask bit-exact vs the CPU, x / scale and x * (1 / scale)",
    async run(cuda, cpu) {
      const lines = (["divide", "reciprocal"] as const).flatMap((rounding) =>
        fqCases.map((c, k) => {
          const inp = fqInputs(c, 100 + k);
          const r = onBoth(cuda, cpu, (a) => {
            const [o, m] = fakeQuantForward(a, c, inp, true, rounding);
            const [o2] = fakeQuantForward(a, c, inp, false, rounding);
            return { out: a.read(o), mask: a.read(m), outNoMask: a.read(o2) };
          });
          return exact(r, `${c.name} (${rounding})`);
        }),
      );
      return lines.join(" | ");
    },
  },
  {
    name: "fakeQuantBackward: grad * mask within 1e-5 (and bit-exact)",
    async run(cuda, cpu) {
      return fqCases
        .slice(0, 5)
        .map((c, k) => {
          const inp = fqInputs(c, 200 + k);
          const r = onBoth(cuda, cpu, (a) => {
            const [, m] = fakeQuantForward(a, c, inp, true);
            const dx = a.own(a.ops.fakeQuantBackward(a.up(inp.g, c.shape), m!));
            return { dx: a.read(dx) };
          });
          exact(r, c.name);
          return close(r, c.name);
        })
        .join(" | ");
    },
  },
  {
    name: "aminmax_ / calcQParams / fakeQuantRangeBackward chain: statistics bit-exact, dx within 1e-5",
    async run(cuda, cpu) {
      const lines: string[] = [];
      const cases: { name: string; shape: number[]; axis: number | null; bits: number; symmetric: boolean; edit?: (x: Float32Array) => void }[] = [
        { name: "weight [64,32,3,3] per channel, symmetric 4 bit", shape: [64, 32, 3, 3], axis: 0, bits: 4, symmetric: true },
        {
          name: "weight [16,8,3,3], ties |min| = |max|, duplicate extremes",
          shape: [16, 8, 3, 3], axis: 0, bits: 2, symmetric: true,
          edit: (x) => {
            x[0] = -2; x[5] = 2; // channel 0: a tie between min and max
            x[150] = 3; x[160] = 3; // channel 2: the max twice, the first index wins
            x[220] = -3; x[221] = -3; // channel 3: the min twice
          },
        },
        {
          name: "weight [16,8,3,3] with an all-zero channel (scale 0: enabled 0, identity)",
          shape: [16, 8, 3, 3], axis: 0, bits: 4, symmetric: true,
          edit: (x) => x.fill(0, 72, 144),
        },
        { name: "activation [8,16,4,4] per tensor, asymmetric 8 bit", shape: [8, 16, 4, 4], axis: null, bits: 8, symmetric: false },
        { name: "activation [4,16,8,8] per channel axis 1, asymmetric 5 bit", shape: [4, 16, 8, 8], axis: 1, bits: 5, symmetric: false },
        { name: "weight [10,3,3,3] per channel, rows not a multiple of 4", shape: [10, 3, 3, 3], axis: 0, bits: 4, symmetric: true },
        { name: "weight [512,512,3,3] per channel (the benchmark's shape)", shape: [512, 512, 3, 3], axis: 0, bits: 4, symmetric: true },
        // Few channels with many elements each: several blocks share a channel (two-pass kernels).
        { name: "weight [4,64,16,16] per channel, several blocks per channel", shape: [4, 64, 16, 16], axis: 0, bits: 4, symmetric: true },
        { name: "activation [32,64,16,16] per tensor, several blocks", shape: [32, 64, 16, 16], axis: null, bits: 8, symmetric: false },
      ];
      // Both rounding rules: the weight cases put every channel's extreme on a .5 tie, where they differ.
      for (const rounding of ["divide", "reciprocal"] as const) {
        for (const [k, c] of cases.entries()) {
          const x = rand(numel(c.shape), 300 + k, -0.7, 0.9);
          c.edit?.(x);
          const g = rand(numel(c.shape), 400 + k);
          const r = onBoth(cuda, cpu, (a) => rangeChain(a, x, g, c.shape, c.axis, c.bits, c.symmetric, rounding));
          const { dx: gdx, ...gRest } = r.gpu;
          const { dx: cdx, ...cRest } = r.cpu;
          exact({ gpu: gRest, cpu: cRest }, `${c.name} (${rounding})`);
          lines.push(close({ gpu: { dx: gdx }, cpu: { dx: cdx } }, `${c.name} (${rounding}; statistics, qparams, out bit-exact)`));
        }
      }
      return lines.join(" | ");
    },
  },
  {
    name: "aminmax_: accumulate, NaN propagation, first indices; emaUpdate_; calcQParams edge values (bit-exact)",
    async run(cuda, cpu) {
      const lines: string[] = [];
      // The second shape has enough elements per channel for the two-pass kernels.
      for (const shape of [[6, 5, 4, 4], [3, 4, 64, 64]]) {
        const x1 = rand(numel(shape), 500, -1, 1), x2 = rand(numel(shape), 501, -1.2, 1.2);
        x1[17] = NaN; // channel 0 (axis 0) turns NaN and stays NaN
        x2[5 * 16 + 3] = -5; // channel 1's new min ([6,5,4,4], axis 0)
        for (const axis of [null, 0, 1] as const) {
          const C = axis === null ? 1 : shape[axis];
          const r = onBoth(cuda, cpu, (a) => {
            const o = a.ops;
            const mn = a.own(o.full([C], 0, "float32")), mx = a.own(o.full([C], 0, "float32"));
            const i0 = a.own(o.full([C], -1, "int32")), i1 = a.own(o.full([C], -1, "int32"));
            o.aminmax_(a.up(x1, shape), mn, mx, i0, i1, axis, false);
            o.aminmax_(a.up(x2, shape), mn, mx, i0, i1, axis, true);
            const mn2 = a.own(o.full([C], 0, "float32")), mx2 = a.own(o.full([C], 0, "float32"));
            o.aminmax_(a.up(x2, shape), mn2, mx2, null, null, axis, false);
            return { min: a.read(mn), max: a.read(mx), argmin: a.read(i0), argmax: a.read(i1), minNoIdx: a.read(mn2), maxNoIdx: a.read(mx2) };
          });
          lines.push(exact(r, `aminmax_ [${shape}] axis ${axis}`));
        }
      }
      const d = rand(1000, 600, -3, 3), s = rand(1000, 601, -3, 3);
      lines.push(exact(onBoth(cuda, cpu, (a) => {
        const hd = a.up(d, [1000]);
        a.ops.emaUpdate_(hd, a.up(s, [1000]), 0.9);
        a.ops.emaUpdate_(hd, a.up(s, [1000]), 0.99);
        return { ema: a.read(hd) };
      }), "emaUpdate_"));
      const mins = Float32Array.of(0, -1, -0.3, NaN, -1e-30, 0, -3.5, 2, -7e5);
      const maxs = Float32Array.of(0, 1, 0.7, 1, 1e-30, 2, -1.5, 2, 7e5);
      for (const bits of [2, 4, 8, 16])
        for (const symmetric of [true, false]) {
          lines.push(exact(onBoth(cuda, cpu, (a) => {
            const [sc, zp, en] = a.ops.calcQParams(a.up(mins, [mins.length]), a.up(maxs, [maxs.length]), bits, symmetric).map((h) => a.own(h));
            return { scale: a.read(sc), zeroPoint: a.read(zp), enabled: a.read(en) };
          }), `calcQParams ${bits} bit ${symmetric ? "symmetric" : "asymmetric"}`));
        }
      const zeroMin = Float32Array.of(0, 0), zeroMax = Float32Array.of(0, 1);
      const r = onBoth(cuda, cpu, (a) => {
        const [, , en] = a.ops.calcQParams(a.up(zeroMin, [2]), a.up(zeroMax, [2]), 4, true).map((h) => a.own(h));
        return { enabled: a.read(en) };
      });
      lines.push(exact(r, "calcQParams zero scale"));
      assert(r.gpu.enabled[0] === 0, `a zero scale must disable the quantizer, got enabled ${r.gpu.enabled[0]}`);
      return lines.join(" | ");
    },
  },
  {
    name: "range observers: mseRange, topkAbs_ / percentileRange, absHistogram_ / klRange (bit-exact), gaussianRange, MSE (1e-5)",
    async run(cuda, cpu) {
      const lines: string[] = [];
      const sorted = (h: HostArray) => Float32Array.from(h as Float32Array).sort();
      for (const [shape, axis] of [[[16, 8, 3, 3], 0], [[4, 8, 6, 6], 1], [[4, 8, 6, 6], null], [[2, 64, 32, 32], null]] as const) {
        const C = axis === null ? 1 : shape[axis];
        const x1 = rand(numel(shape), 700, -1, 1.5), x2 = rand(numel(shape), 701, -2, 1);
        const k = Math.max(1, Math.floor(numel(shape) / C / 50));
        lines.push(exact(onBoth(cuda, cpu, (a) => {
          const o = a.ops;
          const [h1, h2] = [a.up(x1, shape), a.up(x2, shape)];
          const buf = a.own(o.full([C, k], 0, "float32"));
          o.topkAbs_(h1, buf, axis, false);
          o.topkAbs_(h2, buf, axis, true);
          const mn = a.own(o.full([C], 0, "float32")), mx = a.own(o.full([C], 0, "float32"));
          o.aminmax_(h1, mn, mx, null, null, axis, false);
          o.aminmax_(h2, mn, mx, null, null, axis, true);
          const [pmn, pmx] = o.percentileRange(mn, mx, buf, true).map((h) => a.own(h));
          const hist = a.own(o.full([C, 255], 0, "int32"));
          o.absHistogram_(h1, hist, mn, mx, axis);
          o.absHistogram_(h2, hist, mn, mx, axis);
          const [kmn, kmx] = o.klRange(hist, mn, mx, 3).map((h) => a.own(h));
          return { topk: sorted(a.read(buf)), pmin: a.read(pmn), pmax: a.read(pmx), hist: a.read(hist), klmin: a.read(kmn), klmax: a.read(kmx) };
        }), `top-k, percentile, histogram, KL [${shape}] axis ${axis}`));
        lines.push(close(onBoth(cuda, cpu, (a) => {
          const h = a.up(x1, shape);
          const [gmn, gmx] = a.ops.gaussianRange(h, axis, 2).map((t) => a.own(t));
          const [mmn, mmx] = a.ops.mseRange(h, axis, 4).map((t) => a.own(t));
          return { gmin: a.read(gmn), gmax: a.read(gmx), mseMin: a.read(mmn), mseMax: a.read(mmx) };
        }), `gaussian, MSE [${shape}] axis ${axis}`));
      }
      return lines.join(" | ");
    },
  },
  {
    name: "quantization ops: bad calls give the CPU's error class and message",
    async run(cuda, cpu) {
      if (!cpu) throw new Error("the CPU addon is needed as the reference and did not load");
      const f = (a: Arena, n: number, shape = [n]) => a.up(new Float32Array(n), shape);
      const i = (a: Arena, n: number) => a.up(new Int32Array(n), [n]);
      const msgs = [
        sameError(cuda, cpu, "scale of the wrong size", (o, a) => o.fakeQuantPerTensor(f(a, 8), f(a, 2), i(a, 1), 0, 255, null, true, "divide")),
        sameError(cuda, cpu, "unknown rounding rule", (o, a) => o.fakeQuantPerTensor(f(a, 8), f(a, 1), i(a, 1), 0, 255, null, true, "nearest" as never)),
        sameError(cuda, cpu, "axis out of range", (o, a) => o.fakeQuantPerChannel(f(a, 8, [2, 4]), f(a, 2), i(a, 2), 5, -8, 7, null, true, "divide")),
        sameError(cuda, cpu, "quantMin above quantMax", (o, a) => o.fakeQuantPerTensor(f(a, 8), f(a, 1), i(a, 1), 9, 7, null, false, "divide")),
        sameError(cuda, cpu, "int8 zero point given as float", (o, a) => o.fakeQuantPerTensor(f(a, 8), f(a, 1), f(a, 1), 0, 7, null, false, "reciprocal")),
        sameError(cuda, cpu, "enabled of two values", (o, a) => o.fakeQuantPerTensor(f(a, 8), f(a, 1), i(a, 1), 0, 7, i(a, 2), false, "divide")),
        sameError(cuda, cpu, "float mask", (o, a) => o.fakeQuantBackward(f(a, 8), f(a, 8))),
        sameError(cuda, cpu, "calcQParams 17 bits", (o, a) => o.calcQParams(f(a, 2), f(a, 2), 17, true)),
        sameError(cuda, cpu, "momentum 1.5", (o, a) => o.emaUpdate_(f(a, 2), f(a, 2), 1.5)),
        sameError(cuda, cpu, "observing an empty tensor", (o, a) => o.aminmax_(f(a, 0), f(a, 1), f(a, 1), null, null, null, false)),
        sameError(cuda, cpu, "argmin without argmax", (o, a) => o.aminmax_(f(a, 4), f(a, 1), f(a, 1), i(a, 1), null, null, false)),
        sameError(cuda, cpu, "argmin of the wrong size", (o, a) =>
          o.fakeQuantRangeBackward(f(a, 8), f(a, 8), f(a, 1), i(a, 1), f(a, 1), f(a, 1), i(a, 2), i(a, 1), null, 0, 255, false, null, "divide")),
        sameError(cuda, cpu, "range backward of an empty tensor", (o, a) =>
          o.fakeQuantRangeBackward(f(a, 0), f(a, 0), f(a, 1), i(a, 1), f(a, 1), f(a, 1), i(a, 1), i(a, 1), null, 0, 255, false, null, "divide")),
      ];
      const h = cpu.full([4], 1);
      let crossed = "no error";
      try {
        cuda.fakeQuantBackward(h, h);
      } catch (e) {
        crossed = (e as Error).message;
      } finally {
        cpu.dispose(h);
      }
      assert(/lives on cpu/.test(crossed), `a CPU tensor given to a CUDA quant op: ${crossed}`);
      return `${msgs.length} bad calls, same errors: ${msgs.slice(0, 3).join(" | ")} ...`;
    },
  },
];
