import { FileFormatError } from "../io/errors";
import { latin1, pythonDataGlobals, unpickle, type PickleContainers, type PickleGlobal, type Refusal } from "../io/pickle";

/**
 * torchvision's CIFAR pickles, read with the restricted unpickler of lib/io: plain data (protocols 2-4) and exactly
 * one kind of object, a numpy uint8 array pickled through numpy.core.multiarray._reconstruct (numpy.ndarray and
 * numpy.dtype appear as its arguments; Python 3's protocol-2 bytes come as _codecs.encode(str, "latin1")).
 * Every other global, call or object opcode is refused. Dicts become Maps, tuples Tuples.
 */

/** A numpy array of uint8 in C order; _reconstruct makes it empty and the pickle's BUILD fills it in. */
export class NdArray {
  constructor(
    public shape: readonly number[] = [],
    public data: Uint8Array = new Uint8Array(0),
  ) {}
}

export class Tuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export type PyValue = null | boolean | number | string | Uint8Array | PyValue[] | Tuple | Map<string | number, PyValue> | NdArray;

class Dtype {
  constructor(readonly code: string) {}
}

const CONTAINERS: PickleContainers = Object.freeze({
  tuple: (items: unknown[]) => new Tuple(items as PyValue[]),
  tupleItems: (t: unknown) => (t instanceof Tuple ? [...t.items] : undefined),
  dict: () => new Map(),
  isDict: (x: unknown) => x instanceof Map,
  setItem(dict: unknown, key: unknown, value: unknown, fail: (msg: string) => never) {
    const k = typeof key === "string" || typeof key === "number" ? key : key instanceof Uint8Array ? latin1(key) : fail("unsupported dict key type");
    (dict as Map<string | number, unknown>).set(k, value);
  },
});

const RECONSTRUCT = ["numpy.core.multiarray", "numpy._core.multiarray"];

function numpyGlobals(file: string): Map<string, PickleGlobal> {
  const fail = (msg: string): never => {
    throw new FileFormatError(file, msg);
  };
  const ndarray: PickleGlobal = Object.freeze({ module: "numpy", name: "ndarray" });
  const reconstruct = (args: unknown[]) => (args[0] === ndarray ? new NdArray() : fail("_reconstruct of something other than numpy.ndarray"));
  const dtype = (args: unknown[]) => {
    const code = typeof args[0] === "string" ? args[0] : args[0] instanceof Uint8Array ? latin1(args[0]) : "";
    return code === "u1" || code === "|u1" ? new Dtype(code) : fail(`only uint8 numpy arrays are supported, got dtype '${code}'`);
  };
  const globals: PickleGlobal[] = [
    ...RECONSTRUCT.map((module) => Object.freeze({ module, name: "_reconstruct", call: reconstruct })),
    ndarray,
    Object.freeze({ module: "numpy", name: "dtype", call: dtype }),
    ...pythonDataGlobals().filter((g) => g.module === "_codecs"),
  ];
  return new Map(globals.map((g) => [`${g.module}.${g.name}`, g]));
}

/** ndarray.__setstate__((version, shape, dtype, is_fortran, raw)) for uint8 C-order data; a dtype's state is ignored. */
function build(file: string, obj: unknown, state: unknown): boolean {
  const fail = (msg: string): never => {
    throw new FileFormatError(file, msg);
  };
  if (obj instanceof Dtype) return true;
  if (!(obj instanceof NdArray)) return false;
  if (!(state instanceof Tuple) || state.items.length !== 5) return fail("numpy array state must be a 5-tuple");
  const [, shapeT, dtype, fortran, raw] = state.items;
  if (!(shapeT instanceof Tuple) || shapeT.items.some((d) => typeof d !== "number")) return fail("numpy array shape must be a tuple of ints");
  if (!(dtype instanceof Dtype)) return fail("numpy array without a uint8 dtype");
  if (fortran === true || fortran === 1) fail("Fortran-ordered numpy arrays are not supported");
  const data = raw instanceof Uint8Array ? raw : typeof raw === "string" ? new Uint8Array(Buffer.from(raw, "latin1")) : fail("numpy array data must be bytes");
  const shape = shapeT.items as number[];
  const n = shape.reduce((x, y) => x * y, 1);
  if (data.length !== n) fail(`numpy array of shape [${shape.join(", ")}] holds ${data.length} bytes, expected ${n}`);
  obj.shape = shape;
  obj.data = data;
  return true;
}

function refusal(r: Refusal): string {
  const q = r.module === undefined ? undefined : `${r.module}.${r.name}`;
  switch (r.action) {
    case "load":
      return `refusing global '${q}': only numpy uint8 arrays (numpy.core.multiarray._reconstruct) are allowed`;
    case "call":
      return `refusing to call '${q}'`;
    case "build":
      return `refusing to BUILD ${q ? `'${q}'` : `a ${r.target}`}: only numpy arrays and dtypes are built`;
    case "instantiate":
      return `unsupported or unsafe pickle opcode 0x${r.opcode.toString(16).padStart(2, "0")}`;
  }
}

/** Parses one CIFAR-style pickle; `file` names the source in errors. */
export function unpickleNumpy(buf: Uint8Array, file = "pickle"): PyValue {
  return unpickle(buf, { file, globals: numpyGlobals(file), build: (obj, state) => build(file, obj, state), containers: CONTAINERS, refusal }) as PyValue;
}

/** dict[key] for a key that Python 2 wrote as str and Python 3 as bytes or str alike. */
export function dictGet(d: PyValue, k: string): PyValue | undefined {
  return d instanceof Map ? d.get(k) : undefined;
}
