import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PassThrough } from "node:stream";
import { spawnWorkers, type LaunchOptions, type LaunchResult } from "../../lib/dist/launch";

export const root = path.resolve(__dirname, "..", "..");
export const workers = path.join(__dirname, "workers");

function newestMtime(dir: string, ext: string): number {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, ext));
    else if (e.name.endsWith(ext) && !e.name.endsWith(".d.ts")) newest = Math.max(newest, fs.statSync(p).mtimeMs);
  }
  return newest;
}

/**
 * The worker processes run the compiled lib/**\/*.js with plain node; recompile when a source is newer, so a
 * test never runs stale code.
 */
export function ensureCompiled(): void {
  const lib = path.join(root, "lib");
  if (newestMtime(lib, ".ts") > newestMtime(lib, ".js") || !fs.existsSync(path.join(lib, "dist", "launch.js")))
    execFileSync(process.execPath, [path.join(root, "node_modules", "typescript", "bin", "tsc"), "-p", path.join(root, "tsconfig.json")], { stdio: "inherit" });
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

/** Launches `nproc` copies of a worker script with the launcher, capturing everything they print. */
export async function launch(script: string, nproc: number, env: NodeJS.ProcessEnv = {}, opts: LaunchOptions = {}): Promise<Run> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = "";
  let stderr = "";
  out.on("data", (d: Buffer) => (stdout += d.toString()));
  err.on("data", (d: Buffer) => (stderr += d.toString()));
  const t0 = performance.now();
  const r = await spawnWorkers(nproc, [], { script: path.join(workers, script), env, stdout: out, stderr: err, ...opts });
  return { ...r, stdout, stderr, seconds: (performance.now() - t0) / 1000 };
}

export function readRanks<T>(dir: string, n: number): T[] {
  return Array.from({ length: n }, (_, r) => JSON.parse(fs.readFileSync(path.join(dir, `rank${r}.json`), "utf8")) as T);
}

export const cpus = os.availableParallelism();
