/**
 * Plain-node GPU runner (no vitest; compiled by tsconfig.gpu.json into .device/js/ for scripts/gpu-check.sh).
 *   node check.js ops   --out ops.json                     shared op cases on CUDA vs CPU and references, CUDA checks
 *   node check.js bench --shapes convs.json --out ours.json  conv2d fwd/bwd timings on ResNet-18 layer shapes
 *   node check.js quant --out quant.json                   quantization ops on CUDA vs the CPU ops (quant_checks.ts)
 *   node check.js fqbench --out fq.json                    fake-quant fwd/bwd timings and bandwidth (fq_bench.ts)
 *   node check.js step --configs a.yaml,b.yaml --batch 256 --steps 10 --warmup 3 --out step.json
 *                                                          whole SSL training steps (step_bench.ts)
 *   node check.js nccl --out nccl.json                     the NCCL process group through lib/dist (nccl_check.ts)
 *   node check.js augment --out augment.json               augmentBatch on CUDA vs the CPU op, GPU loader (augment_checks.ts)
 *   node check.js augbench --out augbench.json             GPU augmentation throughput, 32 and 224 px (aug_bench.ts)
 * Addons come from SSQL_CPU_ADDON / SSQL_CUDA_ADDON (lib/env.ts). Exit status 0 when everything passed, 1 otherwise.
 */
import * as fs from "node:fs";
import { cpuOps, cudaOps, type CudaNativeOps, type Device } from "../../lib/tensor/binding";
import type { NativeOps, NativeTensor } from "../../lib/tensor/native";
import { compareOutputs, missingOps, opCases } from "../shared/op-cases";
import { augBench } from "./aug_bench";
import { augmentChecks } from "./augment_checks";
import { cudaChecks, cudaTolerance, runCaseOnCuda, type CaseResult, type CudaCheck } from "./checks";
import { fqBench } from "./fq_bench";
import { ncclCheck } from "./nccl_check";
import { quantChecks } from "./quant_checks";
import { stepBench } from "./step_bench";

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && process.argv[i + 1]) return process.argv[i + 1];
  if (fallback !== undefined) return fallback;
  throw new Error(`missing --${name}`);
}

function tryLoad<T>(f: () => T): { ops: T | null; error?: string } {
  try {
    return { ops: f() };
  } catch (e) {
    return { ops: null, error: (e as Error).message };
  }
}

const fmt = (e: number | undefined) => (e === undefined ? "-" : Number.isFinite(e) ? e.toExponential(1) : "inf");
const worst = (errs?: Record<string, number>) => (errs ? Math.max(0, ...Object.values(errs)) : undefined);

async function opsMode(): Promise<number> {
  const out = arg("out", "gpu-ops.json");
  const cuda = tryLoad(cudaOps);
  const cpu = tryLoad(cpuOps);
  const report: Record<string, unknown> = {
    tolerance: cudaTolerance,
    cuda: cuda.ops ? { loaded: true, info: cuda.ops.cudaInfo() } : { loaded: false, error: cuda.error },
    cpu: cpu.ops ? { loaded: true, info: safe(() => cpu.ops!.backendInfo()) } : { loaded: false, error: cpu.error },
  };
  console.log(`CUDA addon: ${cuda.ops ? "loaded" : `NOT loaded: ${cuda.error}`}`);
  console.log(`CPU addon:  ${cpu.ops ? "loaded" : `NOT loaded: ${cpu.error}`}`);
  if (!cuda.ops) {
    if (cpu.ops) report.cpuCases = await cpuAgainstReferences(cpu.ops);
    fs.writeFileSync(out, JSON.stringify(report, null, 2));
    return 1;
  }
  console.log(JSON.stringify(cuda.ops.cudaInfo()));

  const cases: CaseResult[] = [];
  console.log(`\nop cases (normalized error, CUDA vs CPU | CUDA vs JS reference; tolerance ${cudaTolerance}):`);
  for (const c of opCases) {
    const r = await runCaseOnCuda(c, cuda.ops, cpu.ops);
    cases.push(r);
    const status = r.error ? "ERROR" : r.ok ? "pass " : "FAIL ";
    console.log(`  ${status} ${c.name.padEnd(58)} cpu ${fmt(worst(r.vsCpu)).padStart(8)} | ref ${fmt(worst(r.vsReference)).padStart(8)}  ${r.ms} ms${r.cpuSkipped ? `  [${r.cpuSkipped}]` : ""}`);
    if (r.error) console.log(`        ${r.error}`);
    else if (!r.ok)
      for (const [k, e] of Object.entries(r.vsReference ?? {}))
        console.log(`        ${k}: cpu ${fmt(r.vsCpu?.[k])} ref ${fmt(e)}`);
  }
  const perOp: Record<string, { ok: boolean; vsCpu?: number; vsReference?: number; cases: number }> = {};
  for (const r of cases)
    for (const op of r.ops) {
      const p = (perOp[op] ??= { ok: true, cases: 0 });
      p.cases++;
      p.ok &&= r.ok;
      const wc = worst(r.vsCpu), wr = worst(r.vsReference);
      if (wc !== undefined) p.vsCpu = Math.max(p.vsCpu ?? 0, wc);
      if (wr !== undefined) p.vsReference = Math.max(p.vsReference ?? 0, wr);
    }
  const failedOps = Object.entries(perOp).filter(([, p]) => !p.ok).map(([k]) => k);
  console.log(`\nper op: ${Object.keys(perOp).length - failedOps.length}/${Object.keys(perOp).length} ops pass` +
    (failedOps.length ? `; failing: ${failedOps.join(", ")}` : ""));

  const checks: { name: string; ok: boolean; detail: string; ms: number }[] = [];
  const save = () =>
    fs.writeFileSync(out, JSON.stringify(report, (_, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v), 2));
  // Written after the cases and after every check, so a hang later still leaves the results so far.
  Object.assign(report, { cases, perOp, checks, summary: { cases: cases.length, casesPassed: cases.filter((r) => r.ok).length, opsFailing: failedOps } });
  save();
  console.log("\nCUDA checks:");
  for (const check of cudaChecks) {
    const t0 = performance.now();
    let ok = false, detail: string;
    try {
      detail = await check.run(cuda.ops, cpu.ops);
      ok = true;
    } catch (e) {
      detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    checks.push({ name: check.name, ok, detail, ms: Math.round(performance.now() - t0) });
    console.log(`  ${ok ? "pass " : "FAIL "} ${check.name}\n        ${detail}`);
    save();
  }
  Object.assign(report, {
    cases, perOp, checks,
    summary: {
      cases: cases.length, casesPassed: cases.filter((r) => r.ok).length,
      ops: Object.keys(perOp).length, opsFailing: failedOps,
      checks: checks.length, checksPassed: checks.filter((c) => c.ok).length,
    },
  });
  save();
  return cases.every((r) => r.ok) && checks.every((c) => c.ok) ? 0 : 1;
}

/** Without CUDA, at least the CPU addon against the references (tells a packaging problem from an op bug). */
async function cpuAgainstReferences(cpu: NativeOps): Promise<Record<string, number | string>> {
  const res: Record<string, number | string> = {};
  console.log("CPU addon against the JS references:");
  for (const c of opCases) {
    const missing = missingOps(c, cpu);
    try {
      const errs = missing.length ? null : compareOutputs(await c.run(cpu), c.reference());
      res[c.name] = errs ? Math.max(0, ...Object.values(errs)) : `lacks ${missing.join(", ")}`;
    } catch (e) {
      res[c.name] = `error: ${(e as Error).message}`;
    }
    console.log(`  ${c.name.padEnd(58)} ${typeof res[c.name] === "number" ? fmt(res[c.name] as number) : res[c.name]}`);
  }
  return res;
}

function safe<T>(f: () => T): T | string {
  try {
    return f();
  } catch (e) {
    return (e as Error).message;
  }
}

interface ConvLayer {
  name: string;
  cin: number;
  cout: number;
  hw: number;
  k: number;
  stride: number;
  count: number;
}

/** Milliseconds per call of f, timed over `iters` calls after the device drained (outputs freed as they come). */
function timeIt(cuda: CudaNativeOps, iters: number, f: () => NativeTensor): number {
  cuda.synchronize();
  const t0 = performance.now();
  for (let i = 0; i < iters; i++) cuda.dispose(f());
  cuda.synchronize();
  return (performance.now() - t0) / iters;
}

async function benchMode(): Promise<number> {
  const { batch, iters, layers } = JSON.parse(fs.readFileSync(arg("shapes"), "utf8")) as { batch: number; iters: number; layers: ConvLayer[] };
  const out = arg("out", "gpu-bench-ours.json");
  const cuda = cudaOps();
  const rows: Record<string, unknown>[] = [];
  console.log(`conv2d on ResNet-18 (CIFAR) layer shapes, batch ${batch}, ${iters} timed calls per pass (ms per call):`);
  for (const L of layers) {
    const pad = (L.k - 1) / 2;
    const oh = Math.floor((L.hw + 2 * pad - L.k) / L.stride) + 1;
    const xs = [batch, L.cin, L.hw, L.hw], ws = [L.cout, L.cin, L.k, L.k], ys = [batch, L.cout, oh, oh];
    const s: [number, number] = [L.stride, L.stride], p: [number, number] = [pad, pad], d: [number, number] = [1, 1];
    const x = cuda.uniform(xs, -1, 1, 1, 0), w = cuda.uniform(ws, -0.1, 0.1, 2, 0), gy = cuda.uniform(ys, -1, 1, 3, 0);
    const fwd = () => cuda.conv2d(x, w, null, s, p, d, 1);
    const bwdData = () => cuda.conv2dBackwardData(gy, w, xs, s, p, d, 1);
    const bwdWeight = () => cuda.conv2dBackwardWeight(gy, x, ws, s, p, d, 1, false)[0] as NativeTensor;
    const row: Record<string, unknown> = { name: L.name, count: L.count, x: xs, w: ws };
    try {
      const t0 = performance.now();
      for (const f of [fwd, bwdData, bwdWeight]) for (let i = 0; i < 2; i++) cuda.dispose(f());  // first call picks the algorithm
      cuda.synchronize();
      row.setup_ms = Math.round(performance.now() - t0);
      cuda.resetPeakMemoryStats();
      row.fwd_ms = timeIt(cuda, iters, fwd);
      row.bwd_data_ms = timeIt(cuda, iters, bwdData);
      row.bwd_weight_ms = timeIt(cuda, iters, bwdWeight);
      row.peak_bytes = cuda.memoryStats().peakBytes;
      const flop = 2 * batch * L.cout * oh * oh * L.cin * L.k * L.k;
      row.tflops = [row.fwd_ms, row.bwd_data_ms, row.bwd_weight_ms].map((ms) => +(flop / (ms as number) / 1e9).toFixed(2));
      console.log(`  ${L.name.padEnd(22)} fwd ${(row.fwd_ms as number).toFixed(3)}  bwd-data ${(row.bwd_data_ms as number).toFixed(3)}  ` +
        `bwd-weight ${(row.bwd_weight_ms as number).toFixed(3)}  TFLOP/s ${(row.tflops as number[]).join("/")}  peak ${((row.peak_bytes as number) / 2 ** 20).toFixed(0)} MiB`);
    } catch (e) {
      row.error = (e as Error).message;
      console.log(`  ${L.name}: ERROR ${row.error}`);
    }
    for (const h of [x, w, gy]) cuda.dispose(h);
    rows.push(row);
  }
  const plans = safe(() => cuda.convPlanReport());
  console.log("\nconvolution plans (legacy cudnnFind algorithm vs graph-API engines, best of 3 when chosen, ms):");
  if (typeof plans === "string") console.log(`  convPlanReport failed: ${plans}`);
  else
    for (const p of plans)
      console.log(`  ${p.pass.padEnd(14)} ${p.shape}: ${p.path}  legacy ${p.legacyMs.toFixed(3)} chosen ${p.chosenMs.toFixed(3)}` +
        (p.bestEngine ? `  best engine ${p.bestEngine} ${p.bestEngineMs!.toFixed(3)}` : "") +
        (p.difference !== undefined ? ` diff ${fmt(p.difference)}` : "") + (p.note ? `  [${p.note}]` : ""));
  const stats = cuda.memoryStats();
  const report = { device: cuda.cudaInfo(), batch, iters, layers: rows, plans, peak_reserved_bytes: stats.peakReservedBytes };
  fs.writeFileSync(out, JSON.stringify(report, null, 2));
  return rows.some((r) => r.error) ? 1 : 0;
}

/** A list of CUDA checks, each isolated, the report rewritten after each (a hang still leaves the results so far). */
async function checksMode(list: readonly CudaCheck[], out: string): Promise<number> {
  const cuda = cudaOps();
  const cpu = tryLoad(cpuOps);
  const checks: { name: string; ok: boolean; detail: string; ms: number }[] = [];
  const save = () => fs.writeFileSync(out, JSON.stringify({ cpu: cpu.ops ? "loaded" : cpu.error, checks }, null, 2));
  for (const check of list) {
    const t0 = performance.now();
    let ok = false, detail: string;
    try {
      detail = await check.run(cuda, cpu.ops);
      ok = true;
    } catch (e) {
      detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    }
    checks.push({ name: check.name, ok, detail, ms: Math.round(performance.now() - t0) });
    console.log(`  ${ok ? "pass " : "FAIL "} ${check.name} (${checks[checks.length - 1].ms} ms)\n        ${detail}`);
    save();
  }
  return checks.every((c) => c.ok) ? 0 : 1;
}

const modes: Record<string, () => Promise<number>> = {
  ops: opsMode,
  bench: benchMode,
  quant: () => checksMode(quantChecks, arg("out", "gpu-quant.json")),
  fqbench: () => fqBench(arg("out", "gpu-fq-ours.json")),
  step: () =>
    stepBench(arg("configs").split(","), Number(arg("batch", "256")), Number(arg("steps", "10")), Number(arg("warmup", "3")), arg("out", "gpu-step-ours.json"),
      arg("device", "cuda") as Device),
  nccl: () => ncclCheck(arg("out", "gpu-nccl.json")),
  augment: () => checksMode(augmentChecks, arg("out", "gpu-augment.json")),
  augbench: () => augBench(arg("out", "gpu-augbench.json")),
};
const mode = process.argv[2];
const run = modes[mode];
if (!run) {
  console.error(`usage: node check.js ${Object.keys(modes).join("|")} [--out FILE] (see the header of test/gpu/check.ts)`);
  process.exit(2);
}
run().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  },
);
