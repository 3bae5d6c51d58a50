import { readFile } from "node:fs/promises";
import { FileFormatError } from "./errors";
import { FILE_ELEMENTS, decodeElements, type FileElement } from "./elements";
import { type HostArrays, type HostDType, type HostTensor, numelOf } from "./host_tensor";
import { type PickleGlobal, pythonDataGlobals, refusal, unpickle } from "./pickle";
import { describeFormat, sniffFormat } from "./sniff";
import { ZipReader } from "./zip";

/** Element type of each storage class torch.save names. */
const STORAGE_TYPES: Record<string, FileElement> = {
  DoubleStorage: FILE_ELEMENTS.float64,
  FloatStorage: FILE_ELEMENTS.float32,
  HalfStorage: FILE_ELEMENTS.float16,
  BFloat16Storage: FILE_ELEMENTS.bfloat16,
  LongStorage: FILE_ELEMENTS.int64,
  IntStorage: FILE_ELEMENTS.int32,
  ShortStorage: FILE_ELEMENTS.int16,
  CharStorage: FILE_ELEMENTS.int8,
  ByteStorage: FILE_ELEMENTS.uint8,
  BoolStorage: FILE_ELEMENTS.bool,
};

/** One storage of the archive (archive/data/<key>), decoded once and shared by every tensor viewing it. */
class TorchStorage {
  private decoded: HostArrays[HostDType] | undefined;
  constructor(
    readonly typeName: string,
    readonly key: string,
    readonly bytes: Uint8Array,
    readonly numel: number,
    private readonly bigEndian: boolean,
  ) {}

  get dtype(): HostDType {
    return STORAGE_TYPES[this.typeName].dtype;
  }

  elements(): HostArrays[HostDType] {
    this.decoded ??= decodeElements(STORAGE_TYPES[this.typeName], this.bytes, this.numel, this.bigEndian);
    return this.decoded;
  }
}

function isIntList(x: unknown): x is number[] {
  return Array.isArray(x) && x.every((v) => Number.isSafeInteger(v) && v >= 0);
}

/** torch._utils._rebuild_tensor_v2: a view (offset, size, stride) of a storage, copied out contiguous. */
function rebuildTensor(file: string, args: unknown[]): HostTensor {
  const [storage, offset, size, stride] = args;
  const fail = (msg: string): never => {
    throw new FileFormatError(file, `tensor: ${msg}`);
  };
  if (!(storage instanceof TorchStorage)) return fail("its storage is not an archive storage");
  if (!Number.isSafeInteger(offset) || (offset as number) < 0) fail(`bad storage offset ${String(offset)}`);
  if (!isIntList(size) || !isIntList(stride) || size.length !== stride.length) {
    fail(`bad size ${JSON.stringify(size)} or stride ${JSON.stringify(stride)}`);
  }
  const shape = size as number[];
  const strides = stride as number[];
  const start = offset as number;
  const n = numelOf(shape);
  const src = storage.elements();
  const ctor = src.constructor as { new (n: number): HostArrays[HostDType] };
  const tensor = (data: HostArrays[HostDType]) => ({ dtype: storage.dtype, shape: [...shape], data }) as HostTensor;
  if (n === 0) return tensor(new ctor(0));
  let last = start;
  for (let d = 0; d < shape.length; d++) last += (shape[d] - 1) * strides[d];
  if (last >= storage.numel) {
    fail(`view (offset ${start}, size [${shape}], stride [${strides}]) reaches element ${last} of storage '${storage.key}' which has ${storage.numel}`);
  }
  let contiguous = true;
  for (let d = shape.length - 1, expect = 1; d >= 0; d--) {
    if (shape[d] !== 1 && strides[d] !== expect) contiguous = false;
    expect *= shape[d];
  }
  if (contiguous) return tensor(src.slice(start, start + n) as HostArrays[HostDType]);

  // Gather a strided view (e.g. a saved transpose) into row-major order with an odometer over the indices.
  const out = new ctor(n) as { [i: number]: number | bigint };
  const idx = new Array<number>(shape.length).fill(0);
  const s = src as unknown as { [i: number]: number | bigint };
  let at = start;
  for (let i = 0; i < n; i++) {
    out[i] = s[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++idx[d] < shape[d]) {
        at += strides[d];
        break;
      }
      at -= (shape[d] - 1) * strides[d];
      idx[d] = 0;
    }
  }
  return tensor(out as unknown as HostArrays[HostDType]);
}

function torchGlobals(file: string, orderedDicts: WeakSet<object>): Map<string, PickleGlobal> {
  const globals = new Map<string, PickleGlobal>();
  const add = (module: string, name: string, call?: (args: unknown[]) => unknown) =>
    globals.set(`${module}.${name}`, Object.freeze({ module, name, call }));

  add("collections", "OrderedDict", (args) => {
    const d: Record<string, unknown> = {};
    orderedDicts.add(d);
    if (args.length > 0 && !(Array.isArray(args[0]) && args[0].length === 0)) {
      throw new FileFormatError(file, "OrderedDict built from arguments is not supported");
    }
    return d;
  });
  add("torch._utils", "_rebuild_tensor_v2", (args) => rebuildTensor(file, args));
  // A Parameter is its data; requires_grad and hooks have no meaning in a loaded file.
  add("torch._utils", "_rebuild_parameter", (args) => args[0]);
  add("torch._utils", "_rebuild_parameter_with_state", (args) => args[0]);
  add("torch._tensor", "_rebuild_from_type_v2", (args) => {
    const [fn, type, fnArgs] = args;
    const g = fn as PickleGlobal;
    if (!g || !g.call || !["torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter"].includes(`${g.module}.${g.name}`)) {
      throw new FileFormatError(file, refusal(g?.module ?? "?", g?.name ?? "?", "call"));
    }
    const t = type as PickleGlobal;
    if (!t || !["torch.Tensor", "torch.nn.parameter.Parameter"].includes(`${t.module}.${t.name}`)) {
      throw new FileFormatError(file, refusal(t?.module ?? "?", t?.name ?? "?", "instantiate"));
    }
    return g.call(fnArgs as unknown[]);
  });
  add("torch", "device", (args) => (args.length > 1 && args[1] !== null ? `${args[0]}:${args[1]}` : String(args[0])));
  add("torch", "Size", (args) => [...((args[0] as unknown[]) ?? [])]);
  add("torch", "Tensor");
  add("torch.nn.parameter", "Parameter");
  for (const name of Object.keys(STORAGE_TYPES)) add("torch", name);
  for (const g of pythonDataGlobals()) globals.set(`${g.module}.${g.name}`, g);
  return globals;
}

/**
 * Reads a torch.save file (the zip format of PyTorch >= 1.6) into a plain JavaScript tree whose
 * tensors are HostTensors (float16/bfloat16 widened to float32, int64 as BigInt64Array), without
 * running any code the file asks for.
 */
export function parseTorchCheckpoint(bytes: Uint8Array, file = "<buffer>"): unknown {
  const kind = sniffFormat(bytes);
  if (kind === "pickle" || kind === "tar") {
    throw new FileFormatError(
      file,
      "this is PyTorch's legacy checkpoint format (written by torch < 1.6 or with _use_new_zipfile_serialization=False), " +
        "which is not supported; re-save it with torch >= 1.6: " +
        `python -c "import torch; torch.save(torch.load('in.pth', weights_only=False), 'out.pth')"`,
    );
  }
  if (kind !== "zip") throw new FileFormatError(file, `not a PyTorch checkpoint: the file is ${describeFormat(kind)}`);

  const zip = new ZipReader(bytes, file);
  const pkl = [...zip.entries.keys()].filter((n) => /^[^/]+\/data\.pkl$/.test(n));
  if (pkl.length !== 1) {
    throw new FileFormatError(file, `not a torch.save archive: expected one '<name>/data.pkl' entry, found ${pkl.length}`);
  }
  const prefix = pkl[0].slice(0, -"data.pkl".length);
  let bigEndian = false;
  if (zip.has(`${prefix}byteorder`)) {
    const order = Buffer.from(zip.read(`${prefix}byteorder`)).toString("latin1").trim();
    if (order !== "little" && order !== "big") throw new FileFormatError(file, `unknown byteorder '${order}'`);
    bigEndian = order === "big";
  }

  const storages = new Map<string, TorchStorage>();
  const persistentLoad = (pid: unknown): TorchStorage => {
    if (!Array.isArray(pid) || pid[0] !== "storage" || pid.length < 5) {
      throw new FileFormatError(file, `unsupported persistent id ${JSON.stringify(pid)?.slice(0, 80)}`);
    }
    const [, type, key, , numel] = pid as [string, PickleGlobal, unknown, unknown, unknown];
    const typeName = type && type.module === "torch" ? type.name : "";
    if (!Object.hasOwn(STORAGE_TYPES, typeName)) {
      throw new FileFormatError(file, `unsupported storage type ${type ? `${type.module}.${type.name}` : String(type)}`);
    }
    if (typeof key !== "string" || !Number.isSafeInteger(numel) || (numel as number) < 0) {
      throw new FileFormatError(file, `bad storage reference (key ${String(key)}, numel ${String(numel)})`);
    }
    const cached = storages.get(key);
    if (cached) return cached;
    const entry = `${prefix}data/${key}`;
    if (!zip.has(entry)) throw new FileFormatError(file, `storage '${key}' is missing from the archive (${entry})`);
    const data = zip.read(entry);
    const need = (numel as number) * STORAGE_TYPES[typeName].bytes;
    if (data.length < need) {
      throw new FileFormatError(file, `storage '${key}' has ${data.length} bytes but ${numel} ${typeName} elements need ${need}`);
    }
    const storage = new TorchStorage(typeName, key, data, numel as number, bigEndian);
    storages.set(key, storage);
    return storage;
  };

  const orderedDicts = new WeakSet<object>();
  return unpickle(zip.read(pkl[0]), {
    file,
    globals: torchGlobals(file, orderedDicts),
    persistentLoad,
    // OrderedDict's BUILD carries the state dict's _metadata (module versions), which a loader does not need.
    build: (obj, state) => typeof obj === "object" && obj !== null && orderedDicts.has(obj) && (state === null || typeof state === "object"),
  });
}

export async function loadTorchCheckpoint(path: string): Promise<unknown> {
  return parseTorchCheckpoint(await readFile(path), path);
}
