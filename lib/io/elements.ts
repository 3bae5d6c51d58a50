import { bfloat16ToFloat32, halfToFloat32 } from "./half";
import { ARRAY_TYPE, type HostArrays, type HostDType } from "./host_tensor";

/** How a file stores one tensor element: the HostDType it loads as, its width, and the 16-bit float it widens from. */
export interface FileElement {
  readonly dtype: HostDType;
  readonly bytes: number;
  readonly widen?: "f16" | "bf16";
}

/** The element types checkpoint files hold, by PyTorch dtype name; half and bfloat16 load as float32. */
export const FILE_ELEMENTS = {
  float64: { dtype: "float64", bytes: 8 },
  float32: { dtype: "float32", bytes: 4 },
  float16: { dtype: "float32", bytes: 2, widen: "f16" },
  bfloat16: { dtype: "float32", bytes: 2, widen: "bf16" },
  int64: { dtype: "int64", bytes: 8 },
  int32: { dtype: "int32", bytes: 4 },
  int16: { dtype: "int16", bytes: 2 },
  int8: { dtype: "int8", bytes: 1 },
  uint8: { dtype: "uint8", bytes: 1 },
  bool: { dtype: "bool", bytes: 1 },
} as const satisfies Record<string, FileElement>;

/** The first `numel` elements of `bytes` (little-endian unless bigEndian) as an owned, aligned typed array. */
export function decodeElements(el: FileElement, bytes: Uint8Array, numel: number, bigEndian = false): HostArrays[HostDType] {
  const raw = new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + numel * el.bytes) as ArrayBuffer);
  if (bigEndian && el.bytes > 1) {
    for (let i = 0; i < raw.length; i += el.bytes) raw.subarray(i, i + el.bytes).reverse();
  }
  if (el.widen === "f16") return halfToFloat32(new Uint16Array(raw.buffer));
  if (el.widen === "bf16") return bfloat16ToFloat32(new Uint16Array(raw.buffer));
  return new ARRAY_TYPE[el.dtype](raw.buffer);
}
