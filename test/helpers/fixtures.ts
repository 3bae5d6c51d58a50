import { execFileSync } from "node:child_process";
import { expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { env } from "../../lib/env";
import type { AnyTypedArray } from "../../lib/tensor/native";
import { Tensor, tensor } from "../../lib/tensor/tensor";
import { normErr } from "./numeric";

/** Little-endian bytes in base64 as a typed array (copied, hence aligned). */
function fromBase64(b64: string, dtype: "float32" | "int32" | "uint8"): AnyTypedArray {
  const buf = Buffer.from(b64, "base64");
  const bytes = new Uint8Array(buf.length);
  bytes.set(buf);
  if (dtype === "float32") return new Float32Array(bytes.buffer);
  if (dtype === "int32") return new Int32Array(bytes.buffer);
  return bytes;
}

/** A kept (scope-free) tensor, a leaf that requires grad when asked. */
function keptTensor(data: AnyTypedArray, shape: number[], requiresGrad: boolean): Tensor {
  const t = tensor(data, shape).keep();
  t.requiresGrad = requiresGrad;
  return t;
}

// ---- test/fixtures/generate_quant.py and friends: JSON files of {dtype, shape, b64} arrays ----

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
  return fromBase64(e.b64, e.dtype);
}

/** A kept (scope-free) tensor holding the fixture array. */
export function fromFixture(e: Encoded, requiresGrad = false): Tensor {
  return keptTensor(decode(e), e.shape, requiresGrad);
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

// ---- test/fixtures/generate.py: op families of cases with named tensors ----

/** PyTorch fixtures written by test/fixtures/generate.py. */
export interface FixtureTensor {
  shape: number[];
  dtype: "float32" | "int32";
  data: string;
}

export interface FixtureCase {
  name: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  params: Record<string, any>;
  tensors: Record<string, FixtureTensor>;
}

const root = path.resolve(__dirname, "..", "..");
const largeDir = path.join(root, ".cache", "fixtures", "ops-large");

function read(file: string): FixtureCase[] {
  return (JSON.parse(fs.readFileSync(file, "utf8")) as { cases: FixtureCase[] }).cases;
}

/** The committed small fixtures of one op family. */
export function loadFixture(family: string): FixtureCase[] {
  return read(path.join(root, "test", "fixtures", "ops", `${family}.json`));
}

/** Python with PyTorch ($SSQL_PYTHON or .venv/bin/python), or null when there is none. */
export function pythonPath(): string | null {
  const candidate = env.python ?? path.join(root, ".venv", "bin", "python");
  try {
    execFileSync(candidate, ["-c", "import torch"], { stdio: "ignore" });
    return candidate;
  } catch {
    return null;
  }
}

/** Large fixtures, generated into .cache/ on first use; null when no Python with PyTorch is available. */
export function loadLargeFixture(family: string): FixtureCase[] | null {
  const file = path.join(largeDir, `${family}.json`);
  if (!fs.existsSync(file)) {
    const py = pythonPath();
    if (!py) return null;
    execFileSync(py, [path.join(root, "test", "fixtures", "generate.py"), "--large", "--only", family], { stdio: "ignore" });
  }
  return read(file);
}

/**
 * Registers one test per committed case of `family`, and one test over its large cases (skipped when they cannot
 * be generated); call it inside a describe().
 */
export function fixtureTests(family: string, check: (c: FixtureCase) => void, largeTitle = "large shapes"): void {
  for (const c of loadFixture(family)) it(c.name, () => check(c));
  const large = loadLargeFixture(family);
  it.skipIf(!large)(largeTitle, () => {
    for (const c of large ?? []) check(c);
  });
}

export function has(c: FixtureCase, name: string): boolean {
  return name in c.tensors;
}

export function arrayOf(c: FixtureCase, name: string): Float32Array | Int32Array {
  const t = c.tensors[name];
  if (!t) throw new Error(`fixture ${c.name} has no tensor '${name}'`);
  return fromBase64(t.data, t.dtype) as Float32Array | Int32Array;
}

export function shapeOf(c: FixtureCase, name: string): number[] {
  return c.tensors[name].shape;
}

/** A kept tensor holding the fixture's values (a leaf that requires grad when asked). */
export function tensorOf(c: FixtureCase, name: string, requiresGrad = false): Tensor {
  return keptTensor(arrayOf(c, name), shapeOf(c, name), requiresGrad);
}

export function optTensorOf(c: FixtureCase, name: string, requiresGrad = false): Tensor | null {
  return has(c, name) ? tensorOf(c, name, requiresGrad) : null;
}

export function values(t: Tensor | null | undefined): Float32Array | Int32Array {
  if (!t) throw new Error("expected a tensor, got none");
  return t.toArraySync() as Float32Array | Int32Array;
}

/** The parity criterion: ||actual - expected|| / ||expected|| <= tol (float32: 1e-5). */
export function expectClose(what: string, actual: Tensor | null | undefined, expected: ArrayLike<number>, tol = 1e-5): void {
  expect(actual, `${what}: missing`).toBeTruthy();
  const a = values(actual);
  expect(a.length, `${what}: length`).toBe(expected.length);
  expect(normErr(a, expected), what).toBeLessThanOrEqual(tol);
}
