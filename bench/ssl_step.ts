/**
 * Whole SSL training steps on the CPU (issue target: batch 32 per view, 2 threads): SSQL_SimSiam and SimSiam on a
 * CIFAR ResNet-18 built from the shipped configs, against bench/torch_ssql_step.py (the same step in PyTorch) run in
 * the same process tree with the same thread count.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { cpuOps } from "../lib/tensor/binding";
import { stepBench, type StepRow } from "../test/gpu/step_bench";
import { python, root, sgemmGflops, table } from "./common";

const CONFIGS = ["configs/cifar/resnet18_ssql_simsiam_cifar.yaml", "configs/cifar/resnet18_simsiam_cifar.yaml"].map((c) => path.join(root, c));

/** Per method, the row with the shortest step of `runs` (rounds of the same benchmark). */
function fastest(runs: StepRow[][]): StepRow[] {
  return runs[0].map((r) => runs.map((rs) => rs.find((x) => x.method === r.method) ?? r).reduce((a, b) => ((b.step_ms ?? Infinity) < (a.step_ms ?? Infinity) ? b : a)));
}

/**
 * Ours and PyTorch alternate `rounds` times and each keeps its fastest round (each round's time is already the
 * median step), so that a burst of load from elsewhere on a shared machine does not decide the ratio.
 */
export async function benchSslStep(batch = 32, steps = 7, warmup = 3, rounds = 2): Promise<unknown> {
  const threads = cpuOps().getNumThreads();
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-step-"));
  const oursFile = path.join(tmp, "ours.json");
  const torchFile = path.join(tmp, "torch.json");
  const oursRuns: StepRow[][] = [];
  const torchRuns: StepRow[][] = [];
  for (let k = 0; k < rounds; k++) {
    console.log(`SSL training step on the CPU, batch ${batch} per view, ${threads} threads, round ${k + 1} of ${rounds}:`);
    await stepBench(CONFIGS, batch, steps, warmup, oursFile, "cpu");
    oursRuns.push((JSON.parse(fs.readFileSync(oursFile, "utf8")) as { rows: StepRow[] }).rows);
    execFileSync(python(), [path.join(root, "bench", "torch_ssql_step.py"), "--device", "cpu", "--batch", String(batch), "--steps", String(steps), "--warmup", String(warmup), "--out", torchFile], {
      stdio: "inherit",
      env: { ...process.env, OMP_NUM_THREADS: String(threads) },
    });
    torchRuns.push((JSON.parse(fs.readFileSync(torchFile, "utf8")) as { rows: StepRow[] }).rows);
  }
  const ours = fastest(oursRuns);
  const torch = fastest(torchRuns);
  const sgemm = sgemmGflops();
  const rows: (string | number)[][] = [["method", "ours ms", "PyTorch ms", "ours/PyTorch", "GFLOP/step", "ours GFLOP/s", "of sgemm"]];
  for (const o of ours) {
    const t = torch.find((r) => r.method === o.method);
    const gflop = o.profile?.gflop ?? 0;
    const rate = o.step_ms ? gflop / (o.step_ms / 1e3) : 0;
    if (o.step_ms && t?.step_ms) rows.push([o.method, o.step_ms, t.step_ms, o.step_ms / t.step_ms, gflop, rate, `${((100 * rate) / sgemm).toFixed(0)}%`]);
  }
  console.log(`fastest of ${rounds} rounds each; sgemm 2048^3: ${sgemm.toFixed(0)} GFLOP/s (the whole step's FLOPs: convolutions, matmuls, linear layers):`);
  console.log(table(rows));
  fs.rmSync(tmp, { recursive: true, force: true });
  return { batch, threads, rounds, sgemmGflops: sgemm, ours, torch, oursRuns, torchRuns };
}
