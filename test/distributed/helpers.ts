import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll } from "vitest";
import { spawnWorkers, type LaunchOptions, type LaunchResult } from "../../lib/distributed/launch";
import { cpuOps } from "../../lib/tensor/binding";

export const root = path.resolve(__dirname, "..", "..");
export const workers = path.join(__dirname, "workers");

function staleSources(dir: string): string[] {
  const stale: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) stale.push(...staleSources(p));
    else if (e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")) {
      const js = p.replace(/\.ts$/, ".js");
      if (!fs.existsSync(js) || fs.statSync(js).mtimeMs < fs.statSync(p).mtimeMs) stale.push(p);
    }
  }
  return stale;
}

const tsc = (project: string) => execFileSync(process.execPath, [path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", project], { stdio: "inherit" });

/** What needs compiling: lib/ (lib/main.js and what workers import) and the TypeScript worker scripts. */
const projects = [
  { dir: path.join(root, "lib"), project: path.join(root, "tsconfig.json") },
  { dir: workers, project: path.join(workers, "tsconfig.json") },
];

/**
 * The worker processes run compiled JavaScript with plain node (lib/**\/*.js and workers/*.js beside their
 * sources): recompile when a source is newer than its output, so a test never runs stale code. A lock keeps test
 * files running in parallel from compiling at once.
 */
export function ensureCompiled(): void {
  const lock = path.join(root, ".cache", "tsc.lock");
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  const deadline = Date.now() + 300_000;
  const stale = () => projects.filter((p) => staleSources(p.dir).length);
  for (;;) {
    if (!stale().length) return;
    try {
      fs.mkdirSync(lock);
    } catch {
      if (Date.now() > deadline) throw new Error(`ensureCompiled(): ${lock} is held too long; remove it if no tsc runs`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
      continue;
    }
    try {
      for (const p of stale()) tsc(p.project);
    } finally {
      fs.rmdirSync(lock);
    }
    return;
  }
}

export function tempDir(name: string): string {
  const base = path.join(root, ".cache", "test-dist");
  fs.mkdirSync(base, { recursive: true });
  return fs.mkdtempSync(path.join(base, `${name}-`));
}

export interface Run extends LaunchResult {
  stdout: string;
  stderr: string;
  seconds: number;
}

/**
 * Runs in separate processes compared with each other or with this process: every process runs the same
 * convolution algorithm, so that their arithmetic is the same (comparisons at 1e-5 of an ill-conditioned gradient,
 * or of a quantized model whose rounding flips with the last bits, need it).
 */
export const reproducible = { SSQL_CONV_ALGORITHM: "blocked" };

/** This process's convolutions on `reproducible`'s algorithm, for the tests of the calling file. */
export function reproducibleConvolutions(): void {
  beforeAll(() => cpuOps().pinConvAlgorithm(reproducible.SSQL_CONV_ALGORITHM as "blocked"));
  afterAll(() => cpuOps().pinConvAlgorithm(null));
}

/** Launches `nproc` copies of a worker script with the launcher, capturing everything they print. */
export async function launch(script: string, nproc: number, env: NodeJS.ProcessEnv = {}, opts: LaunchOptions = {}): Promise<Run> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = "";
  let stderr = "";
  out.on("data", (d: Buffer) => (stdout += d.toString()));
  err.on("data", (d: Buffer) => (stderr += d.toString()));
  const t0 = performance.now();
  const r = await spawnWorkers(nproc, [], { script: path.join(workers, script), env: { ...reproducible, ...env }, stdout: out, stderr: err, ...opts });
  return { ...r, stdout, stderr, seconds: (performance.now() - t0) / 1000 };
}

export function readRanks<T>(dir: string, n: number): T[] {
  return Array.from({ length: n }, (_, r) => JSON.parse(fs.readFileSync(path.join(dir, `rank${r}.json`), "utf8")) as T);
}

export const cpus = os.availableParallelism();
