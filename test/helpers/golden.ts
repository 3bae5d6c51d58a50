import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { expect } from "vitest";
import type { HostTensor } from "../../lib/io/host_tensor";
import { loadSafetensors } from "../../lib/io/safetensors";
import type { Module } from "../../lib/nn/module";
import { Tensor, tensor } from "../../lib/tensor/tensor";
import { pythonPath } from "./fixtures";
import { normErr } from "./numeric";

/** Golden training-step fixtures written by test/fixtures/generate_golden.py into .cache/ (see its docstring). */

const root = path.resolve(__dirname, "..", "..");
const script = path.join(root, "test", "fixtures", "generate_golden.py");
/** The generator imports the original's code through this module; its hash covers both files. */
const harness = path.join(root, "test", "fixtures", "original_code.py");
const dir = path.join(root, ".cache", "fixtures", "golden");

/**
 * Why the golden tests cannot run here (no Python with PyTorch), or null. On CI (CI set) a missing venv is an error,
 * not a skip: CI installs it, so a skip there would hide a broken setup.
 */
export function goldenSkipReason(): string | null {
  if (pythonPath()) return null;
  const reason = "no Python with PyTorch (.venv/bin/python or $SSQL_PYTHON; sh scripts/setup.sh --python installs it)";
  if (process.env.CI) throw new Error(`golden fixtures: ${reason}`);
  return reason;
}

/** Time allowed to a beforeAll that may have to run the generator (minutes of CPU on a slow machine). */
export const GENERATE_MS = 20 * 60_000;

export interface Golden {
  meta: Record<string, string>;
  tensors: Record<string, HostTensor>;
}

function scriptHash(): string {
  return createHash("sha256").update(fs.readFileSync(script)).update(fs.readFileSync(harness)).digest("hex");
}

/** One case's fixture, (re)generated when missing or written by another version of the script. */
export async function loadGolden(name: string): Promise<Golden> {
  const file = path.join(dir, `${name}.safetensors`);
  const want = scriptHash();
  if (fs.existsSync(file)) {
    const { tensors, metadata } = await loadSafetensors(file);
    if (metadata.script_sha256 === want) return { meta: metadata, tensors };
  }
  const py = pythonPath();
  if (!py) throw new Error(`golden fixture ${name}: no Python with PyTorch to generate it`);
  execFileSync(py, [script, "--only", name], { stdio: ["ignore", "ignore", "pipe"] });
  const { tensors, metadata } = await loadSafetensors(file);
  return { meta: metadata, tensors };
}

export function hostToTensor(h: HostTensor): Tensor {
  if (h.dtype !== "float32" && h.dtype !== "int32") throw new TypeError(`golden tensor of dtype ${h.dtype}`);
  return tensor(h.data as Float32Array | Int32Array, h.shape);
}

/** The fixture's tensors under `group/` (init, grad, after, ...), keyed by the rest of the name. */
export function group(g: Golden, prefix: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [k, v] of Object.entries(g.tensors)) if (k.startsWith(`${prefix}/`)) out.set(k.slice(prefix.length + 1), v);
  return out;
}

/**
 * Loads `init/*` into `model`, renaming the original's keys with `rename` (null drops a key). Strict: every one of
 * the model's parameters and buffers must be covered and every fixture key must land.
 */
export function loadInit(g: Golden, model: Module, rename: (key: string) => string | null): void {
  const state = new Map<string, Tensor>();
  for (const [k, h] of group(g, "init")) {
    const ours = rename(k);
    if (ours !== null) state.set(ours, hostToTensor(h));
  }
  try {
    model.loadStateDict(state, true);
  } finally {
    for (const t of state.values()) t.dispose();
  }
}

export interface Comparison {
  worst: { key: string; err: number };
  count: number;
}

/**
 * Compares every `prefix/*` fixture tensor with ours (found through `ours(key)`), asserting normErr <= tol for each,
 * and returns the worst. A fixture key without a counterpart fails.
 */
export function compareGroup(g: Golden, prefix: string, ours: (key: string) => Tensor | null | undefined, tol: number): Comparison {
  const errs: { key: string; err: number }[] = [];
  for (const [k, h] of group(g, prefix)) {
    const t = ours(k);
    expect(t, `${prefix}/${k}: no counterpart in our model`).toBeTruthy();
    const a = t!.toArraySync();
    expect(a.length, `${prefix}/${k}: size`).toBe(h.data.length);
    errs.push({ key: k, err: normErr(a, h.data as Float32Array) });
    if (process.env.GOLDEN_VERBOSE) console.log(`${prefix}/${k} ${errs[errs.length - 1].err.toExponential(2)}`);
  }
  errs.sort((a, b) => b.err - a.err);
  const bad = errs.filter((e) => !(e.err <= tol));
  const list = bad.slice(0, 12).map((e) => `${e.key} ${e.err.toExponential(2)}`).join(", ");
  expect(bad.length, `${prefix}: ${bad.length} of ${errs.length} tensors off by more than ${tol}: ${list}`).toBe(0);
  return { worst: errs[0] ?? { key: "", err: 0 }, count: errs.length };
}

/** |a - b| <= tol, or relatively when |b| > 1. */
export function expectScalarClose(what: string, actual: number, expected: number, tol: number): void {
  const err = Math.abs(actual - expected) / Math.max(1, Math.abs(expected));
  console.log(`${what}: ${actual} vs ${expected} (error ${err.toExponential(2)})`);
  expect(err, `${what}: ${actual} vs ${expected}`).toBeLessThanOrEqual(tol);
}
