import { FileFormatError } from "./errors";
import { isHostTensor, setOwn } from "./host_tensor";

/**
 * The one restricted unpickler (torch checkpoints, CIFAR's numpy batches): it builds plain JavaScript
 * values and executes nothing. A GLOBAL that is not in the caller's allow-list, a call of anything but
 * an allowed function, and a BUILD the caller does not accept all stop the load with an error naming
 * the Python object that was asked for.
 *
 * Python values become: None → null, bool → boolean, int → number (bigint beyond ±2^53),
 * float → number, str (and Python 2 str) → string, bytes → Uint8Array, list → array,
 * set/frozenset → array, and by default tuple → array, dict → plain object (int keys as their
 * decimal strings, bytes keys as latin1 text); `containers` changes the last two.
 */
export interface PickleGlobal {
  readonly module: string;
  readonly name: string;
  /** Present for functions the pickle may call (REDUCE); absent for inert type markers. */
  readonly call?: (args: unknown[]) => unknown;
}

export interface UnpickleOptions {
  /** Names the data in errors. */
  file: string;
  /** Allowed globals, keyed "module.name". */
  globals: ReadonlyMap<string, PickleGlobal>;
  persistentLoad?: (pid: unknown) => unknown;
  /** Applies BUILD state to obj in place; returns false to refuse. */
  build?: (obj: unknown, state: unknown) => boolean;
  /** How tuples and dicts are represented; default PLAIN_CONTAINERS. */
  containers?: PickleContainers;
  /** Words a refusal; default checkpointRefusal. */
  refusal?: (r: Refusal) => string;
}

export const latin1 = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");

/** Representation of Python tuples and dicts. */
export interface PickleContainers {
  tuple(items: unknown[]): unknown;
  /** The items of a value tuple() made (REDUCE takes its arguments from them), else undefined. */
  tupleItems(t: unknown): unknown[] | undefined;
  dict(): unknown;
  /** True for a value dict() made. */
  isDict(x: unknown): boolean;
  /** dict[key] = value; `fail` reports a key the representation cannot hold. */
  setItem(dict: unknown, key: unknown, value: unknown, fail: (msg: string) => never): void;
}

/** What a refused pickle asked for. */
export interface Refusal {
  readonly action: "load" | "call" | "build" | "instantiate";
  /** The Python object asked for, when the pickle names one. */
  readonly module?: string;
  readonly name?: string;
  /** The refused opcode (GLOBAL, REDUCE, BUILD, NEWOBJ, ...) and the kind of value it applied to, when not a global. */
  readonly opcode: number;
  readonly target: string;
}

export const PLAIN_CONTAINERS: PickleContainers = Object.freeze({
  tuple: (items: unknown[]) => items,
  tupleItems: (t: unknown) => (Array.isArray(t) ? t : undefined),
  dict: () => ({}),
  isDict: (x: unknown) => typeof x === "object" && x !== null && Object.getPrototypeOf(x) === Object.prototype && !isHostTensor(x),
  setItem: (dict: unknown, key: unknown, value: unknown, fail: (msg: string) => never) =>
    setOwn(dict as Record<string, unknown>, dictKey(key, fail), value),
});

/** A dict key as text: str as is, int in decimal, bytes (Python 3's pickles of Python 2 str keys) as latin1. */
export function dictKey(k: unknown, fail: (msg: string) => never): string {
  if (typeof k === "string") return k;
  if (typeof k === "number" || typeof k === "bigint") return String(k);
  if (k instanceof Uint8Array) return latin1(k);
  return fail(`unsupported dict key of type ${k === null ? "None" : Array.isArray(k) ? "tuple" : typeof k}`);
}

/**
 * Pure-data constructors that protocol-2 pickles use for values protocol 2 has no opcode for
 * (bytes via _codecs.encode, sets); allowing them runs no user code.
 */
export function pythonDataGlobals(): PickleGlobal[] {
  const bytes = (args: unknown[]) => {
    if (args.length === 0) return new Uint8Array(0);
    const [text, encoding] = args;
    if (typeof text !== "string" || (encoding !== "latin1" && encoding !== "latin-1")) {
      throw new TypeError("_codecs.encode is allowed only as protocol 2's encoding of bytes (a str and 'latin1')");
    }
    return new Uint8Array(Buffer.from(text, "latin1"));
  };
  const set = (args: unknown[]) => (args.length === 0 ? [] : [...(args[0] as unknown[])]);
  return [
    { module: "_codecs", name: "encode", call: bytes },
    { module: "__builtin__", name: "bytes", call: bytes },
    { module: "builtins", name: "bytes", call: bytes },
    { module: "__builtin__", name: "set", call: set },
    { module: "builtins", name: "set", call: set },
    { module: "__builtin__", name: "frozenset", call: set },
    { module: "builtins", name: "frozenset", call: set },
  ].map((g) => Object.freeze(g));
}

export function refusal(module: string, name: string, what = "load"): string {
  return `refusing to ${what} ${module}.${name}: the checkpoint asks to run code`;
}

const UNNAMED_REFUSALS: Record<number, string> = {
  0x81: "NEWOBJ",
  0x92: "NEWOBJ",
  0x6f: "OBJ",
  0x82: "a pickle extension-registry reference",
  0x83: "a pickle extension-registry reference",
  0x84: "a pickle extension-registry reference",
};

/** The checkpoint loader's wording of a refusal. */
export function checkpointRefusal(r: Refusal): string {
  if (r.module !== undefined && r.name !== undefined) return refusal(r.module, r.name, r.action);
  if (r.action === "build") return `refusing to BUILD a ${r.target}: the checkpoint asks to run code`;
  return `refusing ${UNNAMED_REFUSALS[r.opcode] ?? r.target}: the checkpoint asks to run code`;
}

export function unpickle(bytes: Uint8Array, options: UnpickleOptions): unknown {
  const { file, globals } = options;
  const containers = options.containers ?? PLAIN_CONTAINERS;
  const refuse = options.refusal ?? checkpointRefusal;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const memo = new Map<number, unknown>();
  const allowed = new Set<unknown>(globals.values());
  let stack: unknown[] = [];
  const metastack: unknown[][] = [];
  let pos = 0;

  const fail = (msg: string): never => {
    throw new FileFormatError(file, msg);
  };
  const need = (n: number) => {
    if (pos + n > bytes.length) fail(`pickle data ends early at byte ${bytes.length} (truncated?)`);
  };
  const u8 = () => (need(1), bytes[pos++]);
  const u16 = () => (need(2), (pos += 2), view.getUint16(pos - 2, true));
  const u32 = () => (need(4), (pos += 4), view.getUint32(pos - 4, true));
  const i32 = () => (need(4), (pos += 4), view.getInt32(pos - 4, true));
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) fail(`pickle length ${v} at byte ${pos - 8} exceeds the data`);
    return Number(v);
  };
  const take = (n: number) => {
    need(n);
    pos += n;
    return bytes.subarray(pos - n, pos);
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) fail("pickle data ends inside a text line");
    const s = latin1(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const utf8 = (b: Uint8Array) => {
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(b);
    } catch {
      return fail("pickle string is not valid UTF-8");
    }
  };
  const pop = () => {
    if (stack.length === 0) fail(`pickle stack underflow at byte ${pos}`);
    return stack.pop();
  };
  const top = () => {
    if (stack.length === 0) fail(`pickle stack underflow at byte ${pos}`);
    return stack[stack.length - 1];
  };
  // Callers must not write stack.push(popMark()): `stack` would be read before popMark reassigns it.
  const pushMarked = () => {
    const items = popMark();
    stack.push(items);
  };
  const popMark = () => {
    const items = stack;
    const prev = metastack.pop();
    if (!prev) fail(`pickle MARK missing at byte ${pos}`);
    stack = prev!;
    return items;
  };
  const intValue = (v: bigint): number | bigint =>
    v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  const longLE = (b: Uint8Array): number | bigint => {
    if (b.length === 0) return 0;
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
    if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
    return intValue(v);
  };
  const setItems = (dict: unknown, items: unknown[]) => {
    if (allowed.has(dict) || !containers.isDict(dict)) fail(`pickle SETITEM on a non-dict at byte ${pos}`);
    if (items.length % 2) fail("pickle SETITEMS with an odd number of items");
    for (let i = 0; i < items.length; i += 2) containers.setItem(dict, items[i], items[i + 1], fail);
  };
  const appendItems = (list: unknown, items: unknown[]) => {
    if (!Array.isArray(list)) fail(`pickle APPEND on a non-list at byte ${pos}`);
    (list as unknown[]).push(...items);
  };
  const refused = (action: Refusal["action"], opcode: number, obj?: unknown, names?: { module: string; name: string }): never => {
    const g = names ?? (isGlobal(obj) ? obj : undefined);
    return fail(refuse({ action, opcode, module: g?.module, name: g?.name, target: describe(obj) }));
  };
  const global = (module: string, name: string, opcode: number): PickleGlobal => {
    const g = globals.get(`${module}.${name}`);
    if (!g) refused("load", opcode, undefined, { module, name });
    return g!;
  };
  const isGlobal = (x: unknown): x is PickleGlobal => allowed.has(x);
  const call = (fn: unknown, args: unknown) => {
    if (!isGlobal(fn)) fail(`pickle REDUCE on something that is not a callable global at byte ${pos}`);
    const g = fn as PickleGlobal;
    if (!g.call) refused("call", 0x52, g);
    const items = containers.tupleItems(args);
    if (!items) fail(`arguments to ${g.module}.${g.name} are not a tuple`);
    return g.call!(items!);
  };
  const tuple = (items: unknown[]) => containers.tuple(items);
  const memoGet = (i: number) => {
    if (!memo.has(i)) fail(`pickle memo ${i} is read before it is written`);
    return memo.get(i);
  };

  for (;;) {
    const at = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) fail("pickle protocol newer than 5");
        break;
      case 0x95: // FRAME
        take(8);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) fail(`pickle ends with ${stack.length} values on the stack`);
        return stack[0];
      case 0x28: // MARK
        metastack.push(stack);
        stack = [];
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(containers.dict());
        break;
      case 0x8f: // EMPTY_SET
        stack.push([]);
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
      case 0x8a: // LONG1
        stack.push(longLE(take(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(longLE(take(u32())));
        break;
      case 0x49: {
        // INT (text); "I01"/"I00" are protocol 0's booleans
        const s = line();
        stack.push(s === "01" ? true : s === "00" ? false : intValue(parseBigInt(s, fail)));
        break;
      }
      case 0x4c: // LONG (text)
        stack.push(intValue(parseBigInt(line().replace(/L$/, ""), fail)));
        break;
      case 0x46: // FLOAT (text)
        stack.push(Number(line()));
        break;
      case 0x47: // BINFLOAT, big-endian
        need(8);
        stack.push(view.getFloat64(pos, false));
        pos += 8;
        break;
      case 0x58: // BINUNICODE
        stack.push(utf8(take(u32())));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(utf8(take(u8())));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(utf8(take(u64())));
        break;
      case 0x54: // BINSTRING (Python 2 str)
        stack.push(latin1(take(u32())));
        break;
      case 0x55: // SHORT_BINSTRING
        stack.push(latin1(take(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(new Uint8Array(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        stack.push(new Uint8Array(take(u8())));
        break;
      case 0x8e: // BINBYTES8
        stack.push(new Uint8Array(take(u64())));
        break;
      case 0x74: {
        // TUPLE
        const items = popMark();
        stack.push(tuple(items));
        break;
      }
      case 0x85: // TUPLE1
        stack.push(tuple([pop()]));
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push(tuple([pop(), b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push(tuple([pop(), b, c]));
        break;
      }
      case 0x6c: // LIST
        pushMarked();
        break;
      case 0x61: {
        // APPEND
        const v = pop();
        appendItems(top(), [v]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        appendItems(top(), items);
        break;
      }
      case 0x91: // FROZENSET
        pushMarked();
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = containers.dict();
        setItems(d, items);
        stack.push(d);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x63: {
        // GLOBAL
        const module = line();
        stack.push(global(module, line(), op));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") fail("STACK_GLOBAL needs two strings");
        stack.push(global(module as string, name as string, op));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        stack.push(call(fn, args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        if (!options.build?.(obj, state)) refused("build", op, obj);
        break;
      }
      case 0x81: // NEWOBJ
      case 0x92: {
        // NEWOBJ_EX
        if (op === 0x92) pop();
        pop();
        refused("instantiate", op, pop());
        break;
      }
      case 0x69: {
        // INST
        const module = line();
        const name = line();
        global(module, name, op);
        refused("instantiate", op, undefined, { module, name });
        break;
      }
      case 0x6f: // OBJ
      case 0x82: // EXT1
      case 0x83: // EXT2
      case 0x84: // EXT4
        refused("instantiate", op);
        break;
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!options.persistentLoad) fail("pickle has a persistent id but nothing to resolve it");
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x50: {
        // PERSID
        const pid = line();
        if (!options.persistentLoad) fail("pickle has a persistent id but nothing to resolve it");
        stack.push(options.persistentLoad!(pid));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x70: // PUT
        memo.set(Number(line()), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(memoGet(u32()));
        break;
      case 0x67: // GET
        stack.push(memoGet(Number(line())));
        break;
      case 0x30: // POP
        if (stack.length) stack.pop();
        else popMark();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        fail(`unsupported pickle opcode 0x${op.toString(16).padStart(2, "0")} at byte ${at}`);
    }
  }
}

function parseBigInt(s: string, fail: (m: string) => never): bigint {
  if (!/^[-+]?\d+$/.test(s)) fail(`bad integer '${s}' in pickle`);
  return BigInt(s);
}

function describe(x: unknown): string {
  if (x === undefined) return "object";
  if (x === null) return "None";
  if (Array.isArray(x)) return "list";
  if (typeof x === "object") return "dict";
  return typeof x;
}

