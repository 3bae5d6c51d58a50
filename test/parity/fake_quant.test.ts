import { describe, expect, it } from "vitest";
import { fakeQuantizePerChannelAffine, fakeQuantizePerTensorAffine } from "../../lib/quant/fake_quant";
import { backward } from "../../lib/tensor/autograd";
import { cpuOps } from "../../lib/tensor/binding";
import { tidy } from "../../lib/tensor/scope";
import { tensor } from "../../lib/tensor/tensor";
import { bits, decode, firstDiff, fromFixture, readFixture, type Encoded } from "../helpers/fixtures";

interface Case {
  name: string;
  x: Encoded;
  scale: Encoded;
  zero_point: Encoded;
  enabled?: number;
  axis?: number;
  quant_min: number;
  quant_max: number;
  out: Encoded;
  mask: Encoded;
  grad: Encoded;
  grad_x: Encoded;
}

const perTensor = readFixture<{ cases: Case[] }>("quant/per_tensor.json").cases;
const perChannel = readFixture<{ cases: Case[] }>("quant/per_channel.json").cases;

function check(c: Case, perChannelOp: boolean): void {
  const ops = cpuOps();
  tidy(() => {
    const x = fromFixture(c.x, true);
    const s = fromFixture(c.scale);
    const z = fromFixture(c.zero_point);
    const en = tensor(new Int32Array([c.enabled ?? 1]), [1]);
    // Output and mask straight from the op: bit for bit.
    const [o, m] = perChannelOp
      ? ops.fakeQuantPerChannel(x.handle, s.handle, z.handle, c.axis!, c.quant_min, c.quant_max, en.handle, true, "reciprocal")
      : ops.fakeQuantPerTensor(x.handle, s.handle, z.handle, c.quant_min, c.quant_max, en.handle, true, "reciprocal");
    const out = ops.toArray(o) as Float32Array;
    const mask = ops.toArray(m!) as Uint8Array;
    expect(firstDiff(bits(out), bits(decode(c.out))), `${c.name}: output`).toBe(-1);
    expect(firstDiff(mask, decode(c.mask)), `${c.name}: mask`).toBe(-1);
    ops.dispose(o);
    ops.dispose(m!);
    // The differentiable op: same output, gradient grad * mask exactly.
    const y = perChannelOp
      ? fakeQuantizePerChannelAffine(x, s, z, c.axis!, c.quant_min, c.quant_max, en)
      : fakeQuantizePerTensorAffine(x, s, z, c.quant_min, c.quant_max, en);
    expect(firstDiff(bits(y.toArraySync()), bits(decode(c.out))), `${c.name}: autograd output`).toBe(-1);
    if (x.numel > 0) {
      backward(y, fromFixture(c.grad));
      expect(firstDiff(bits(x.grad!.toArraySync()), bits(decode(c.grad_x))), `${c.name}: grad`).toBe(-1);
    }
    x.grad?.dispose();
    x.dispose();
    s.dispose();
    z.dispose();
  });
}

describe("fake quantization against torch.fake_quantize_* (bit patterns)", () => {
  it(`per tensor: ${perTensor.length} cases (2..8 bits, int/uint, ties, clipping, non-finite, disabled)`, () => {
    for (const c of perTensor) check(c, false);
  });

  it(`per channel: ${perChannel.length} cases (axes 0, 1, 3, -1, odd shapes)`, () => {
    for (const c of perChannel) check(c, true);
  });

  it("writes the same output without the mask", () => {
    const ops = cpuOps();
    for (const c of perChannel.slice(0, 4)) {
      tidy(() => {
        const [x, s, z] = [fromFixture(c.x), fromFixture(c.scale), fromFixture(c.zero_point)];
        const [o, m] = ops.fakeQuantPerChannel(x.handle, s.handle, z.handle, c.axis!, c.quant_min, c.quant_max, null, false, "reciprocal");
        expect(m).toBeNull();
        expect(firstDiff(bits(ops.toArray(o) as Float32Array), bits(decode(c.out)))).toBe(-1);
        ops.dispose(o);
        for (const t of [x, s, z]) t.dispose();
      });
    }
  });

  it("a large per-tensor input (parallel chunks) matches the single-element definition", () => {
    // Rounding of x * (1/s) half to even, by an exact reference in doubles (x * inv is exact in double).
    const n = 300_001;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = ((i * 7919) % 2001) / 40 - 25 + (i % 3 === 0 ? 0.0125 : 0); // many .5 ties at s = 0.025
    const scale = Math.fround(0.025);
    const inv = Math.fround(1 / scale);
    const ref = new Float32Array(n);
    const refMask = new Uint8Array(n);
    const rne = (v: number) => {
      const f = Math.floor(v);
      const d = v - f;
      return d > 0.5 ? f + 1 : d < 0.5 ? f : f % 2 === 0 ? f : f + 1;
    };
    for (let i = 0; i < n; i++) {
      const v = rne(Math.fround(x[i] * inv)) + 3;
      refMask[i] = v >= 0 && v <= 255 ? 1 : 0;
      ref[i] = Math.fround((Math.min(Math.max(v, 0), 255) - 3) * scale);
    }
    const ops = cpuOps();
    tidy(() => {
      const xt = tensor(x, [n]);
      const [o, m] = ops.fakeQuantPerTensor(xt.handle, tensor([0.025], [1]).handle, tensor(new Int32Array([3]), [1]).handle, 0, 255, null, true, "reciprocal");
      expect(firstDiff(bits(ops.toArray(o) as Float32Array), bits(ref))).toBe(-1);
      expect(firstDiff(ops.toArray(m!) as Uint8Array, refMask)).toBe(-1);
      ops.dispose(o);
      ops.dispose(m!);
    });
  });

  it("rounding 'divide' rounds the correctly rounded x / scale (the original's quantizer), ties included", () => {
    // fp32 division correctly rounded: the double quotient of two floats rounded once to float (53 >= 2 * 24 + 2).
    const n = 200_003;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = ((i * 7919) % 2001) / 40 - 25 + (i % 3 === 0 ? 0.0125 : 0) + (i % 5 === 0 ? 1e-7 : 0);
    // scales of SSQL's symmetric rule max|w| / (2^(b-1) - 1/2), whose extremes are ties
    for (const [scale, qmin, qmax, zp] of [[Math.fround(0.025), 0, 255, 3], [Math.fround(25.0125 / 7.5), -8, 7, 0], [Math.fround(0.1 / 1.5), -2, 1, 0]]) {
      const ref = new Float32Array(n);
      const refMask = new Uint8Array(n);
      let apart = 0;
      for (let i = 0; i < n; i++) {
        const q = Math.fround(x[i] / scale);
        let v = Math.round(q);
        if (Math.abs(q - Math.trunc(q)) === 0.5) v = 2 * Math.round(q / 2); // half to even
        v += zp;
        refMask[i] = v >= qmin && v <= qmax ? 1 : 0;
        ref[i] = Math.fround((Math.min(Math.max(v, qmin), qmax) - zp) * scale);
        const r = Math.fround(x[i] * Math.fround(1 / scale));
        if (r !== q) apart++;
      }
      const ops = cpuOps();
      tidy(() => {
        const s1 = tensor([scale], [1]);
        const z1 = tensor(new Int32Array([zp]), [1]);
        const [o, m] = ops.fakeQuantPerTensor(tensor(x, [n]).handle, s1.handle, z1.handle, qmin, qmax, null, true, "divide");
        expect(firstDiff(bits(ops.toArray(o) as Float32Array), bits(ref)), `scale ${scale}`).toBe(-1);
        expect(firstDiff(ops.toArray(m!) as Uint8Array, refMask), `scale ${scale}`).toBe(-1);
        // the same values along a channel axis: the per-channel op, same rule
        const [oc] = ops.fakeQuantPerChannel(tensor(x, [1, n]).handle, s1.handle, z1.handle, 0, qmin, qmax, null, false, "divide");
        expect(firstDiff(bits(ops.toArray(oc) as Float32Array), bits(ref)), `per channel, scale ${scale}`).toBe(-1);
        for (const h of [o, m!, oc]) ops.dispose(h);
      });
      expect(apart, `scale ${scale}: the input must hold quotients where x / s and x * (1 / s) differ`).toBeGreaterThan(0);
    }
  });

  it("rejects bad arguments with errors naming the op and argument", () => {
    const ops = cpuOps();
    tidy(() => {
      const x = tensor(new Float32Array(12), [3, 4]);
      const s3 = tensor([1, 1, 1], [3]);
      const z3 = tensor(new Int32Array(3), [3]);
      const zf = tensor([0, 0, 0], [3]);
      expect(() => ops.fakeQuantPerChannel(x.handle, s3.handle, zf.handle, 0, -8, 7, null, true, "reciprocal")).toThrow(/zeroPoint.*int32/);
      expect(() => ops.fakeQuantPerChannel(x.handle, s3.handle, z3.handle, 1, -8, 7, null, true, "reciprocal")).toThrow(RangeError);
      expect(() => ops.fakeQuantPerChannel(x.handle, s3.handle, z3.handle, 2, -8, 7, null, true, "reciprocal")).toThrow(/axis 2 out of range/);
      expect(() => ops.fakeQuantPerChannel(x.handle, s3.handle, z3.handle, 0, 7, -8, null, true, "reciprocal")).toThrow(/quantMin 7 exceeds quantMax -8/);
      expect(() => ops.fakeQuantPerTensor(x.handle, s3.handle, z3.handle, -8, 7, null, true, "reciprocal")).toThrow(/'scale' must hold 1 value/);
      expect(() => ops.fakeQuantBackward(x.handle, x.handle)).toThrow(/'mask' must be uint8/);
      expect(() => ops.calcQParams(s3.handle, s3.handle, 17, true)).toThrow(/bits must lie in 1..16/);
      expect(() => ops.aminmax_(x.handle, s3.handle, s3.handle, null, null, 1, false)).toThrow(/'min' must hold 4 value/);
      // argmin / argmax of channel c must lie in channel c (row c of x here); index 4 is in row 1, not row 0.
      const range = (amin: number[]) =>
        ops.fakeQuantRangeBackward(x.handle, x.handle, s3.handle, z3.handle, s3.handle, s3.handle,
          tensor(Int32Array.from(amin), [3]).handle, tensor(Int32Array.of(0, 4, 8), [3]).handle, 0, -8, 7, true, null, "reciprocal");
      expect(() => range([4, 5, 9])).toThrow(/argmin\/argmax of channel 0 points outside that channel/);
      expect(() => range([0, 4, 12])).toThrow(/index out of range/);
      expect(() => ops.fakeQuantPerTensor(x.handle, tensor([1], [1]).handle, tensor(new Int32Array(1), [1]).handle, -8, 7, null, true, "nearest" as never))
        .toThrow(/'rounding' must be 'divide' or 'reciprocal', got 'nearest'/);
      expect(() => ops.fakeQuantPerTensor(x.handle, tensor([1], [1]).handle, tensor(new Int32Array(1), [1]).handle, -8, 7, null, true, undefined as never))
        .toThrow(/'rounding' is missing|'rounding' must be a string/);
      const dx = range([1, 5, 9]);
      expect(ops.toArray(dx).length).toBe(12);
      ops.dispose(dx);
    });
  });
});
