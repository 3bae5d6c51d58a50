/**
 * Tensors held in JavaScript memory, as files deliver them: a dtype, a shape and a contiguous
 * row-major typed array. The io code uses these instead of native tensors so that reading and
 * writing checkpoints needs no addon.
 */
export type HostDType = "float32" | "float64" | "int64" | "int32" | "int16" | "int8" | "uint8" | "bool";

export interface HostArrays {
  float32: Float32Array;
  float64: Float64Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int16: Int16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

export interface HostTensor<D extends HostDType = HostDType> {
  dtype: D;
  shape: number[];
  data: HostArrays[D];
}

export type HostTensors = Record<string, HostTensor>;

export const ARRAY_TYPE: { [D in HostDType]: { new (buffer: ArrayBuffer): HostArrays[D]; BYTES_PER_ELEMENT: number } } = {
  float32: Float32Array,
  float64: Float64Array,
  int64: BigInt64Array,
  int32: Int32Array,
  int16: Int16Array,
  int8: Int8Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

export function bytesPerElement(dtype: HostDType): number {
  return ARRAY_TYPE[dtype].BYTES_PER_ELEMENT;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** True for a well-formed HostTensor: known dtype, its typed array, and as many elements as the shape says. */
export function isHostTensor(x: unknown): x is HostTensor {
  if (typeof x !== "object" || x === null) return false;
  const t = x as Partial<HostTensor>;
  if (typeof t.dtype !== "string" || !Object.hasOwn(ARRAY_TYPE, t.dtype)) return false;
  if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return false;
  return t.data instanceof ARRAY_TYPE[t.dtype] && t.data.length === numelOf(t.shape);
}

/** A tensor's values as numbers; int64 values outside ±2^53 throw rather than silently lose digits. */
export function toNumbers(t: HostTensor, what = "tensor"): Float64Array {
  if (t.dtype !== "int64") return Float64Array.from(t.data as ArrayLike<number>);
  const src = t.data as BigInt64Array;
  const out = new Float64Array(src.length);
  for (let i = 0; i < src.length; i++) {
    const v = src[i];
    if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new RangeError(`${what}: int64 value ${v} at index ${i} does not fit a JavaScript number exactly`);
    }
    out[i] = Number(v);
  }
  return out;
}

/** Plain objects built from untrusted names: a key such as "__proto__" becomes an own property, never the prototype. */
export function setOwn<T>(obj: Record<string, T>, key: string, value: T): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}
