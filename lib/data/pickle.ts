/**
 * A restricted Python unpickler for torchvision's CIFAR files: it builds plain data and executes nothing.
 * It reads protocols 2-4 (dicts, lists, tuples, ints, floats, str/bytes) and exactly one kind of object, a
 * numpy uint8 array pickled through numpy.core.multiarray._reconstruct, whose reduce/build sequence it
 * recognizes as data (the globals numpy.ndarray and numpy.dtype appear as its arguments; Python 3's
 * protocol-2 bytes come as _codecs.encode(str, "latin1")). Any other global, reduce or object opcode is refused.
 */

export class PickleError extends Error {
  override name = "PickleError";
}

/** A numpy array of uint8 in C order. */
export class NdArray {
  constructor(
    readonly shape: readonly number[],
    readonly data: Uint8Array,
  ) {}
}

export class Tuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export type PyValue = null | boolean | number | string | Uint8Array | PyValue[] | Tuple | Map<string | number, PyValue> | NdArray;

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}
class DtypeStub {
  constructor(readonly code: string) {}
}
class ArrayStub {}

const RECONSTRUCT = new Set(["numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct"]);
const ALLOWED_GLOBALS = new Set([...RECONSTRUCT, "numpy.ndarray", "numpy.dtype", "_codecs.encode"]);

type Item = PyValue | Global | DtypeStub | ArrayStub;
const MARK = Symbol("mark");

const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

/** Parses one pickle; `what` names the source in errors (e.g. the file path). */
export function unpickle(buf: Uint8Array, what = "pickle"): PyValue {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let pos = 0;
  const stack: (Item | typeof MARK)[] = [];
  const memo = new Map<number, Item>();

  const fail = (msg: string): never => {
    throw new PickleError(`${what}: ${msg} (at byte ${pos})`);
  };
  const need = (n: number) => {
    if (pos + n > buf.length) fail(`truncated: needs ${n} more bytes, ${buf.length - pos} left`);
  };
  const u8 = () => (need(1), buf[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const lo = view.getUint32(pos, true);
    const hi = view.getUint32(pos + 4, true);
    pos += 8;
    if (hi > 0x1fffff) fail("length too large");
    return hi * 4294967296 + lo;
  };
  const bytes = (n: number) => {
    need(n);
    pos += n;
    return buf.subarray(pos - n, pos);
  };
  const line = () => {
    const end = buf.indexOf(0x0a, pos);
    if (end < 0) fail("truncated: unterminated line");
    const s = latin1(buf.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): Item => {
    const v = stack.pop();
    if (v === undefined || v === MARK) fail("stack underflow");
    return v as Item;
  };
  const top = (): Item => {
    const v = stack[stack.length - 1];
    if (v === undefined || v === MARK) fail("stack underflow");
    return v as Item;
  };
  const popMark = (): Item[] => {
    const i = stack.lastIndexOf(MARK);
    if (i < 0) fail("MARK expected");
    const items = stack.splice(i) as Item[];
    items.shift();
    return items;
  };
  const key = (k: Item): string | number => {
    if (typeof k === "string" || typeof k === "number") return k;
    if (k instanceof Uint8Array) return latin1(k);
    return fail("unsupported dict key type");
  };
  const setItems = (d: Item, kv: Item[]) => {
    if (!(d instanceof Map)) fail("SETITEM on a non-dict");
    for (let i = 0; i + 1 < kv.length; i += 2) (d as Map<string | number, PyValue>).set(key(kv[i]), kv[i + 1] as PyValue);
  };
  const append = (l: Item, items: Item[]) => {
    if (!Array.isArray(l)) fail("APPEND on a non-list");
    for (const it of items) (l as PyValue[]).push(it as PyValue);
  };
  const pushGlobal = (module: string, name: string) => {
    const g = new Global(module, name);
    if (!ALLOWED_GLOBALS.has(g.qualified))
      fail(`refusing global '${g.qualified}': only numpy uint8 arrays (numpy.core.multiarray._reconstruct) are allowed`);
    stack.push(g);
  };
  const reduce = (fn: Item, args: Item): Item => {
    if (!(fn instanceof Global) || !(args instanceof Tuple)) return fail("REDUCE needs a global and a tuple");
    const a = args.items;
    if (RECONSTRUCT.has(fn.qualified)) {
      if (!(a[0] instanceof Global) || a[0].qualified !== "numpy.ndarray") fail("_reconstruct of something other than numpy.ndarray");
      return new ArrayStub();
    }
    if (fn.qualified === "numpy.dtype") {
      const code = typeof a[0] === "string" ? a[0] : a[0] instanceof Uint8Array ? latin1(a[0]) : "";
      if (code !== "u1" && code !== "|u1") fail(`only uint8 numpy arrays are supported, got dtype '${code}'`);
      return new DtypeStub(code);
    }
    if (fn.qualified === "_codecs.encode") {
      if (typeof a[0] !== "string" || (a[1] !== "latin1" && a[1] !== "latin-1")) fail("_codecs.encode is only accepted for latin1 text");
      return new Uint8Array(Buffer.from(a[0] as string, "latin1"));
    }
    return fail(`refusing to call '${fn.qualified}'`);
  };
  const build = (obj: Item, state: Item): Item => {
    if (obj instanceof DtypeStub) return obj;
    if (!(obj instanceof ArrayStub)) return fail("BUILD on an object other than a numpy array or dtype");
    if (!(state instanceof Tuple) || state.items.length !== 5) return fail("numpy array state must be a 5-tuple");
    const [, shapeT, dtype, fortran, raw] = state.items;
    if (!(shapeT instanceof Tuple) || shapeT.items.some((d) => typeof d !== "number")) return fail("numpy array shape must be a tuple of ints");
    if (!(dtype instanceof DtypeStub)) return fail("numpy array without a uint8 dtype");
    if (fortran === true || fortran === 1) fail("Fortran-ordered numpy arrays are not supported");
    const data = raw instanceof Uint8Array ? raw : typeof raw === "string" ? new Uint8Array(Buffer.from(raw, "latin1")) : fail("numpy array data must be bytes");
    const shape = shapeT.items as number[];
    const n = shape.reduce((x, y) => x * y, 1);
    if (data.length !== n) fail(`numpy array of shape [${shape.join(", ")}] holds ${data.length} bytes, expected ${n}`);
    return new NdArray(shape, data as Uint8Array);
  };

  for (;;) {
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("unsupported pickle protocol");
        break;
      case 0x95: // FRAME
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail("malformed pickle: stack does not hold one value at STOP");
        return pop() as PyValue;
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement
        const n = u8();
        if (n > 6) fail("integer too large");
        const b = bytes(n);
        let v = 0;
        for (let i = n - 1; i >= 0; i--) v = v * 256 + b[i];
        if (n > 0 && b[n - 1] & 0x80) v -= 2 ** (8 * n);
        stack.push(v);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str: bytes)
        stack.push(bytes(u8()));
        break;
      case 0x54: // BINSTRING
        stack.push(bytes(u32()));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(bytes(u8()));
        break;
      case 0x42: // BINBYTES
        stack.push(bytes(u32()));
        break;
      case 0x8e: // BINBYTES8
        stack.push(bytes(u64()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(Buffer.from(bytes(u8())).toString("utf8"));
        break;
      case 0x58: // BINUNICODE
        stack.push(Buffer.from(bytes(u32())).toString("utf8"));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(Buffer.from(bytes(u64())).toString("utf8"));
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(new Tuple([]));
        break;
      case 0x64: {
        // DICT
        const d = new Map<string | number, PyValue>();
        setItems(d, popMark());
        stack.push(d);
        break;
      }
      case 0x6c: // LIST
        stack.push(popMark() as PyValue[]);
        break;
      case 0x74: // TUPLE
        stack.push(new Tuple(popMark() as PyValue[]));
        break;
      case 0x85: // TUPLE1
        stack.push(new Tuple([pop() as PyValue]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop(), a = pop();
        stack.push(new Tuple([a, b] as PyValue[]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop(), b = pop(), a = pop();
        stack.push(new Tuple([a, b, c] as PyValue[]));
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop(), k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const kv = popMark();
        setItems(top(), kv);
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const i = op === 0x68 ? u8() : u32();
        if (!memo.has(i)) fail(`memo key ${i} is missing`);
        stack.push(memo.get(i)!);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        pushGlobal(module, line());
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop(), module = pop();
        if (typeof name !== "string" || typeof module !== "string") fail("STACK_GLOBAL needs two strings");
        pushGlobal(module as string, name as string);
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop(), fn = pop();
        stack.push(reduce(fn, args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop(), obj = pop();
        stack.push(build(obj, state));
        break;
      }
      default:
        fail(`unsupported or unsafe pickle opcode 0x${op.toString(16).padStart(2, "0")}`);
    }
  }
}

/** dict[key] for a key that Python 2 wrote as str and Python 3 as bytes or str alike. */
export function dictGet(d: PyValue, k: string): PyValue | undefined {
  return d instanceof Map ? d.get(k) : undefined;
}
