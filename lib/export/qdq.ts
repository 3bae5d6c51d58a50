import type { QuantRounding } from "../quant/fake_quant";

/**
 * ONNX integer types for the quantizers of one model. Every quantizer is carried in one container width: 4 bits
 * (INT4/UINT4, opset 21) when no quantizer of the model is wider than 4 bits, else 8 (INT8/UINT8), else 16. A
 * container wider than a quantizer's grid is exact for constant weights (their integers already lie on the grid);
 * activations are clipped to the grid's float range before QuantizeLinear. One width per model because ONNX Runtime
 * 1.30/1.31's QDQ fusion (default optimization level) builds an invalid QLinearConv from an 8-bit or 2-bit weight
 * feeding on a 4-bit activation; INT2/UINT2 (opset 25) are not used for the same reason.
 */
export const TENSOR_TYPE = { FLOAT: 1, UINT8: 2, INT8: 3, UINT16: 4, INT16: 5, INT32: 6, UINT4: 21, INT4: 22 } as const;

export type ContainerWidth = 4 | 8 | 16;

export interface IntType {
  /** TensorProto.DataType. */
  type: number;
  width: ContainerWidth;
  signed: boolean;
  /** The container saturates exactly at the b-bit grid. */
  exact: boolean;
}

/** The container width of a model whose widest quantizer has `maxBits` bits. */
export function containerWidth(maxBits: number): ContainerWidth {
  if (maxBits < 1 || maxBits > 16) throw new RangeError(`ONNX export: ${maxBits}-bit quantizers cannot be exported (1..16 bits)`);
  return maxBits <= 4 ? 4 : maxBits <= 8 ? 8 : 16;
}

export function intTypeFor(bits: number, quantMin: number, width: ContainerWidth): IntType {
  if (bits < 1 || bits > width) throw new RangeError(`ONNX export: a ${bits}-bit quantizer does not fit a ${width}-bit container`);
  const signed = quantMin < 0;
  const T = TENSOR_TYPE;
  const type = { 4: signed ? T.INT4 : T.UINT4, 8: signed ? T.INT8 : T.UINT8, 16: signed ? T.INT16 : T.UINT16 }[width];
  return { type, width, signed, exact: bits === width };
}

/** Raw little-endian bytes of integers in a container (4-bit values packed two to a byte, the first in the low nibble). */
export function packIntegers(v: Int32Array, t: IntType): Uint8Array {
  if (t.width === 8) return new Uint8Array((t.signed ? Int8Array.from(v) : Uint8Array.from(v)).buffer);
  if (t.width === 16) return new Uint8Array((t.signed ? Int16Array.from(v) : Uint16Array.from(v)).buffer);
  const per = 8 / t.width;
  const mask = (1 << t.width) - 1;
  const out = new Uint8Array(Math.ceil(v.length / per));
  for (let i = 0; i < v.length; i++) out[Math.floor(i / per)]! |= (v[i]! & mask) << (t.width * (i % per));
  return out;
}

function roundHalfEven(y: number): number {
  const r = Math.round(y);
  return Math.abs(y % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * The integers of our fake quantization of a weight along output channels (axis 0): v = zp + round(x / s) (or
 * x * (1/s), QUANT.ROUNDING) in float32, half to even, clamped to the grid; (v - zp) * s is what the model computes.
 */
export function weightIntegers(
  w: Float32Array, scale: Float32Array, zeroPoint: Int32Array, quantMin: number, quantMax: number, rounding: QuantRounding,
): Int32Array {
  const C = scale.length;
  const per = w.length / C;
  if (!Number.isInteger(per)) throw new Error(`weight of ${w.length} values does not split into ${C} channels`);
  const out = new Int32Array(w.length);
  for (let c = 0; c < C; c++) {
    const s = scale[c]!;
    const inv = Math.fround(1 / s);
    const zp = zeroPoint[c]!;
    for (let i = c * per; i < (c + 1) * per; i++) {
      const y = rounding === "divide" ? Math.fround(w[i]! / s) : Math.fround(w[i]! * inv);
      const v = zp + roundHalfEven(y);
      out[i] = Number.isNaN(v) ? quantMin : Math.min(quantMax, Math.max(quantMin, v));
    }
  }
  return out;
}
