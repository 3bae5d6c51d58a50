import * as fs from "node:fs";
import * as path from "node:path";
import type { AnyTypedArray } from "../../lib/tensor/native";
import { Tensor, tensor } from "../../lib/tensor/tensor";

/** An array written by a fixture script: little-endian bytes, so float32 bit patterns survive. */
export interface Encoded {
  dtype: "float32" | "uint8" | "int32";
  shape: number[];
  b64: string;
}

export function readFixture<T = any>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(__dirname, "..", "fixtures", name), "utf8")) as T;
}

export function decode(e: Encoded): AnyTypedArray {
  const buf = Buffer.from(e.b64, "base64");
  const bytes = new Uint8Array(buf.length);
  bytes.set(buf);
  if (e.dtype === "float32") return new Float32Array(bytes.buffer);
  if (e.dtype === "int32") return new Int32Array(bytes.buffer);
  return bytes;
}

/** A kept (scope-free) tensor holding the fixture array. */
export function fromFixture(e: Encoded, requiresGrad = false): Tensor {
  const t = tensor(decode(e), e.shape).keep();
  t.requiresGrad = requiresGrad;
  return t;
}

/** Bit patterns of float32 data, so that -0, NaN payloads and every last bit are compared. */
export function bits(a: ArrayLike<number> | AnyTypedArray): Int32Array {
  const f = a instanceof Float32Array ? a : Float32Array.from(a as ArrayLike<number>);
  return new Int32Array(f.buffer, f.byteOffset, f.length);
}

/** Index of the first differing element of two arrays, or -1. */
export function firstDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}
