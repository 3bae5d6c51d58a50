/**
 * Whole SSL training steps on the CPU (issue target: batch 32 per view, 2 threads; and batch 128): SSQL_SimSiam and
 * SimSiam on a CIFAR ResNet-18 built from the shipped configs, against bench/torch_ssql_step.py (the same step in
 * PyTorch) with the same thread count. Each method runs in a process of its own on both sides, so that the peak
 * resident memory compared is the method's own.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cpuOps } from "../lib/tensor/binding";
import type { StepRow } from "../test/gpu/step_bench";
import { python, root, sgemmGflops, table } from "./common";

const METHODS = [
  { config: "configs/cifar/resnet18_ssql_simsiam_cifar.yaml", torch: "ssql_simsiam" },
  { config: "configs/cifar/resnet18_simsiam_cifar.yaml", torch: "simsiam" },
];

function readRow(file: string): StepRow {
  return (JSON.parse(fs.readFileSync(file, "utf8")) as { rows: StepRow[] }).rows[0];
}

/** The row with the shortest step of several rounds. */
function fastest(rows: StepRow[]): StepRow {
  return rows.reduce((a, b) => ((b.step_ms ?? Infinity) < (a.step_ms ?? Infinity) ? b : a));
}

const MiB = (b: number | undefined) => (b === undefined ? "?" : (b / 2 ** 20).toFixed(0));

/**
 * Ours and PyTorch alternate `rounds` times per method and each keeps its fastest round (each round's time is already
 * the median step), so that a burst of load from elsewhere on a shared machine does not decide the ratio.
 */
export async function benchSslStep(batch = 32, steps = 7, warmup = 3, rounds = 2): Promise<unknown> {
  const threads = cpuOps().getNumThreads();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-step-"));
  const out = path.join(tmp, "row.json");
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), SSQL_THREADS: String(threads) };
  const results = METHODS.map(() => ({ ours: [] as StepRow[], torch: [] as StepRow[] }));
  for (let k = 0; k < rounds; k++) {
    console.log(`SSL training step on the CPU, batch ${batch} per view, ${threads} threads, round ${k + 1} of ${rounds}:`);
    METHODS.forEach((m, i) => {
      execFileSync(process.execPath, [path.join(root, "bench", "ssl_step_one.js"), path.join(root, m.config), String(batch), String(steps), String(warmup), out], { stdio: "inherit", env });
      results[i].ours.push(readRow(out));
      execFileSync(python(), [path.join(root, "bench", "torch_ssql_step.py"), "--device", "cpu", "--methods", m.torch, "--batch", String(batch), "--steps", String(steps), "--warmup", String(warmup), "--out", out], { stdio: "inherit", env });
      results[i].torch.push(readRow(out));
    });
  }
  const sgemm = sgemmGflops();
  const rows: (string | number)[][] = [["method", "ours ms", "PyTorch ms", "ours/PyTorch", "GFLOP/step", "ours GFLOP/s", "of sgemm", "ours peak MiB", "PyTorch peak MiB"]];
  const best = results.map((r) => ({ ours: fastest(r.ours), torch: fastest(r.torch) }));
  for (const { ours: o, torch: t } of best) {
    const gflop = o.profile?.gflop ?? 0;
    const rate = o.step_ms ? gflop / (o.step_ms / 1e3) : 0;
    if (o.step_ms && t.step_ms)
      rows.push([o.method, o.step_ms, t.step_ms, o.step_ms / t.step_ms, gflop, rate, `${((100 * rate) / sgemm).toFixed(0)}%`, MiB(o.peak_rss_bytes), MiB(t.peak_rss_bytes)]);
  }
  console.log(`batch ${batch} per view, fastest of ${rounds} rounds each; sgemm 2048^3: ${sgemm.toFixed(0)} GFLOP/s (the step's FLOPs: convolutions, matmuls, linear layers); peak: resident memory of the method's process`);
  console.log(table(rows));
  fs.rmSync(tmp, { recursive: true, force: true });
  return { batch, threads, rounds, sgemmGflops: sgemm, best, results };
}
