import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { env } from "../lib/env";
import { cpuOps } from "../lib/tensor/binding";

export const root = path.resolve(__dirname, "..");

export interface Timing {
  medianMs: number;
  minMs: number;
}

/** Runs fn `warmup` times, then `reps` times, and reports the median and the minimum wall time. */
export function time(fn: () => void, reps = 10, warmup = 2): Timing {
  for (let i = 0; i < warmup; i++) fn();
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  ms.sort((a, b) => a - b);
  return { medianMs: ms[Math.floor(ms.length / 2)], minMs: ms[0] };
}

export function python(): string {
  return env.python ?? path.join(root, ".venv", "bin", "python");
}

/** Runs a bench/*.py reference script with a JSON request on stdin and returns its JSON answer. */
export function runPython<T>(script: string, request: unknown): T {
  const out = execFileSync(python(), [path.join(root, "bench", script)], {
    input: JSON.stringify(request),
    encoding: "utf8",
    stdio: ["pipe", "pipe", "inherit"],
    maxBuffer: 1 << 26,
  });
  return JSON.parse(out) as T;
}

export function writeResult(name: string, result: unknown): string {
  const dir = path.join(root, "bench", "results");
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `${name}-${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
  fs.writeFileSync(file, JSON.stringify(result, null, 2));
  return file;
}

export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => (typeof c === "number" ? c.toFixed(2) : c)));
  const widths = cells[0].map((_, i) => Math.max(...cells.map((r) => r[i].length)));
  return cells.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  ")).join("\n");
}

/** The machine's GEMM rate in GFLOP/s, through dnnl_sgemm (our matmul op) on a 2048^3 problem, fastest of 5. */
export function sgemmGflops(): number {
  const o = cpuOps();
  const S = 2048;
  const a = o.normal([S, S], 0, 1, 1, 0);
  const b = o.normal([S, S], 0, 1, 2, 0);
  const gemm = time(() => o.dispose(o.matmul(a, b, false, false)), 5, 1);
  o.dispose(a);
  o.dispose(b);
  return (2 * S ** 3) / (gemm.minMs * 1e6);
}
