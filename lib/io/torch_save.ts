import type { HostTensor, HostTensors } from "./host_tensor";
import { zipStored } from "./zip_writer";

/**
 * torch.save of a flat state dict (an OrderedDict of name → tensor), in the zip format PyTorch has written since
 * 1.6: `archive/data.pkl` (pickle protocol 2 that rebuilds each tensor with torch._utils._rebuild_tensor_v2 from a
 * persistent storage id), `archive/data/<i>` (each storage's little-endian bytes), `archive/byteorder` and
 * `archive/version`. It uses only what torch.load(weights_only=True) allows: OrderedDict, _rebuild_tensor_v2 and
 * the typed storages.
 */
const STORAGE: Partial<Record<HostTensor["dtype"], string>> = {
  float32: "FloatStorage",
  float64: "DoubleStorage",
  int64: "LongStorage",
  int32: "IntStorage",
  int16: "ShortStorage",
  int8: "CharStorage",
  uint8: "ByteStorage",
  bool: "BoolStorage",
};

class PickleWriter {
  private readonly parts: Buffer[] = [];
  op(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }
  global(module: string, name: string): this {
    this.parts.push(Buffer.from(`c${module}\n${name}\n`, "latin1"));
    return this;
  }
  str(s: string): this {
    const b = Buffer.from(s, "utf-8");
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    this.parts.push(Buffer.from([0x58]), len, b); // BINUNICODE
    return this;
  }
  int(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`pickle: ${n} is not a non-negative safe integer`);
    if (n < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a; // BININT
      b.writeInt32LE(n, 1);
      this.parts.push(b);
    } else {
      const b = Buffer.alloc(10);
      b[0] = 0x8a; // LONG1, 8 bytes little-endian two's complement
      b[1] = 8;
      b.writeBigInt64LE(BigInt(n), 2);
      this.parts.push(b);
    }
    return this;
  }
  tuple(items: number[]): this {
    this.op(0x28); // MARK
    for (const v of items) this.int(v);
    return this.op(0x74); // TUPLE
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function contiguousStrides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/** The .pth bytes (as chunks) of `tensors`, keys in the given order. */
export function torchSaveStateDict(tensors: HostTensors, archive = "archive"): Uint8Array[] {
  const p = new PickleWriter().op(0x80, 2); // PROTO 2
  p.global("collections", "OrderedDict").op(0x29, 0x52); // EMPTY_TUPLE, REDUCE
  p.op(0x28); // MARK
  const data: { name: string; data: Uint8Array }[] = [];
  Object.entries(tensors).forEach(([key, t], i) => {
    const storage = STORAGE[t.dtype];
    if (!storage) throw new TypeError(`torch save: tensor '${key}' has dtype ${t.dtype}, which has no torch storage here`);
    p.str(key).global("torch._utils", "_rebuild_tensor_v2");
    p.op(0x28); // MARK (args of _rebuild_tensor_v2)
    p.op(0x28).str("storage").global("torch", storage).str(String(i)).str("cpu").int(t.data.length).op(0x74, 0x51); // TUPLE, BINPERSID
    p.int(0).tuple([...t.shape]).tuple(contiguousStrides(t.shape)).op(0x89); // offset, size, stride, NEWFALSE
    p.global("collections", "OrderedDict").op(0x29, 0x52); // backward hooks
    p.op(0x74, 0x52); // TUPLE, REDUCE
    const a = t.data as unknown as ArrayBufferView;
    data.push({ name: `${archive}/data/${i}`, data: new Uint8Array(a.buffer, a.byteOffset, a.byteLength) });
  });
  p.op(0x75, 0x2e); // SETITEMS, STOP
  return zipStored([
    { name: `${archive}/data.pkl`, data: p.bytes() },
    { name: `${archive}/byteorder`, data: Buffer.from("little") },
    ...data,
    { name: `${archive}/version`, data: Buffer.from("3\n") },
  ]);
}
