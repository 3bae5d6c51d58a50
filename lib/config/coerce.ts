import { parsePythonLiteral } from "./literal";
import { Leaf } from "./schema";

/** Checks a raw YAML/CLI value against a leaf's type and returns it in the config's form; throws "expected ...". */
export function coerceValue(leaf: Leaf<unknown>, raw: unknown): unknown {
  const value = typeof raw === "string" ? decodeString(leaf, raw) : raw;
  if (value === null || value === undefined) {
    if (leaf.nullable) return null;
    return mismatch(leaf, raw);
  }
  switch (leaf.kind) {
    case "int":
      return typeof value === "number" && Number.isInteger(value) ? value : mismatch(leaf, raw);
    case "float":
      return typeof value === "number" && Number.isFinite(value) ? value : mismatch(leaf, raw);
    case "bool":
      return typeof value === "boolean" ? value : mismatch(leaf, raw);
    case "str":
      return typeof value === "string" ? value : mismatch(leaf, raw);
    case "choice":
      return typeof value === "string" && leaf.choices.includes(value) ? value : mismatch(leaf, raw);
    case "ints":
      return listOf(leaf, raw, value, (x) => typeof x === "number" && Number.isInteger(x));
    case "floats":
      return listOf(leaf, raw, value, (x) => typeof x === "number" && Number.isFinite(x));
    case "strs":
      return listOf(leaf, raw, value, (x) => typeof x === "string");
    case "bitConfig":
      return bitConfig(leaf, raw, value);
  }
}

/** yacs `literal_eval`s strings; do the same where the string form does not fit the expected type. */
function decodeString(leaf: Leaf<unknown>, s: string): unknown {
  const t = s.trim();
  if (leaf.nullable && t === "None") return null;
  if (leaf.kind === "str" || leaf.kind === "choice") return s;
  const lit = parsePythonLiteral(t);
  if (lit) return lit.value;
  const isList = leaf.kind === "ints" || leaf.kind === "floats" || leaf.kind === "strs";
  if (isList) {
    // Comma-separated lists, as written on a command line: `--opts LINEAR.BITS fp,4w4f`.
    const parts = t === "" ? [] : t.split(",").map((p) => p.trim());
    if (leaf.kind === "strs") return parts;
    return parts.map((p) => parsePythonLiteral(p)?.value ?? p);
  }
  return s;
}

function listOf(leaf: Leaf<unknown>, raw: unknown, value: unknown, ok: (x: unknown) => boolean): unknown {
  if (!Array.isArray(value) || !value.every(ok)) return mismatch(leaf, raw);
  return [...value];
}

function bitConfig(leaf: Leaf<unknown>, raw: unknown, value: unknown): unknown {
  const list = isMapping(value) ? [value] : value;
  if (!Array.isArray(list)) return mismatch(leaf, raw);
  return list.map((entry) => {
    if (!isMapping(entry)) return mismatch(leaf, raw);
    const out: Record<string, { w?: number; a?: number }> = {};
    for (const [layer, bits] of Object.entries(entry)) {
      if (!isMapping(bits)) throw new Error(`layer '${layer}': expected {"w": bits, "a": bits}, got ${describe(bits)}`);
      const b: { w?: number; a?: number } = {};
      for (const [k, v] of Object.entries(bits)) {
        if (k !== "w" && k !== "a") throw new Error(`layer '${layer}': unknown field '${k}' (expected "w" and/or "a")`);
        if (typeof v !== "number" || !Number.isInteger(v)) {
          throw new Error(`layer '${layer}': "${k}" expected int bits, got ${describe(v)}`);
        }
        b[k] = v;
      }
      out[layer] = b;
    }
    return out;
  });
}

function isMapping(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function mismatch(leaf: Leaf<unknown>, raw: unknown): never {
  throw new Error(`expected ${leaf.typeName}, got ${describe(raw)}`);
}

export function describe(v: unknown): string {
  if (v === null || v === undefined) return "null";
  const kind = Array.isArray(v) ? "list" : typeof v === "object" ? "mapping" : typeof v;
  let text = JSON.stringify(v) ?? String(v);
  if (text.length > 60) text = `${text.slice(0, 57)}...`;
  return `${text} (${kind})`;
}
