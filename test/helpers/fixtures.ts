import { execFileSync } from "node:child_process";
import { expect } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { env } from "../../lib/env";
import { Tensor, tensor } from "../../lib/tensor/tensor";
import { normErr } from "./numeric";

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

export function has(c: FixtureCase, name: string): boolean {
  return name in c.tensors;
}

export function arrayOf(c: FixtureCase, name: string): Float32Array | Int32Array {
  const t = c.tensors[name];
  if (!t) throw new Error(`fixture ${c.name} has no tensor '${name}'`);
  const bytes = Buffer.from(t.data, "base64");
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return t.dtype === "int32" ? new Int32Array(copy.buffer) : new Float32Array(copy.buffer);
}

export function shapeOf(c: FixtureCase, name: string): number[] {
  return c.tensors[name].shape;
}

/** A kept tensor holding the fixture's values (a leaf that requires grad when asked). */
export function tensorOf(c: FixtureCase, name: string, requiresGrad = false): Tensor {
  const t = tensor(arrayOf(c, name), shapeOf(c, name)).keep();
  t.requiresGrad = requiresGrad;
  return t;
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
