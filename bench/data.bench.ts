/**
 * Throughput of the SSL two-view pipeline (sslPipeline: RandomResizedCrop, color jitter, grayscale, blur at
 * 224 px, flip, normalize; two views per image) on 32x32 and 224x224 uint8 images held in memory, on 1 and 2
 * data-pool threads, against the per-image references with as many worker processes, in the same run: the original's
 * PIL pipeline (bench/data_reference_pil.py) and torchvision's tensor formulas (bench/data_reference.py). Decoding is not included (in-memory sources, as CIFAR).
 *   npx tsc -p bench && node bench/data.bench.js [step-results.json]
 * Then it compares with the training step's consumption rate (see consumption()).
 * The references need .venv/bin/python with torch and Pillow (sh scripts/setup.sh --python); without it only our numbers print.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { augment, setDataThreads } from "../lib/data/augment";
import { InMemoryDataset } from "../lib/data/dataset";
import { Rng } from "../lib/tensor/prng";
import { sslPipeline } from "../lib/data/transforms";

const ROUNDS = 5;
const SIZES = [
  { size: 32, images: 1024, batch: 256, dataset: "cifar10" },
  { size: 224, images: 64, batch: 32, dataset: "imagenet" },
];
const THREADS = [1, 2];

function synthetic(size: number, n: number): InMemoryDataset {
  const px = new Uint8Array(n * size * size * 3);
  let s = 12345;
  for (let i = 0; i < px.length; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    px[i] = s >>> 24;
  }
  return new InMemoryDataset("synthetic", "train", "memory", px, [n, size, size, 3], new Int32Array(n), ["0"]);
}

interface Result {
  imagesPerS: number;
  cpuUsPerImage: number;
}

async function ours(size: number, n: number, batch: number, dataset: string, threads: number): Promise<Result> {
  const ds = synthetic(size, n);
  const pipeline = sslPipeline({ MODEL: { INPUTSHAPE: [size, size] }, TRAIN: { DATASET: dataset }, AUG: { TRAIN: { NORMLIZATION: { MEAN: [0.485, 0.456, 0.406], STD: [0.229, 0.224, 0.225] } } } });
  setDataThreads(threads);
  const rng = Rng.fromSeed(0);
  const run = async () => {
    for (let start = 0; start < n; start += batch) {
      const idx = Int32Array.from({ length: Math.min(batch, n - start) }, (_, i) => start + i);
      const views = await augment(pipeline, rng, await ds.load(idx));
      views.forEach((v) => v.dispose());
    }
  };
  await run(); // warm-up
  let best = Infinity;
  const cpu0 = process.cpuUsage();
  for (let r = 0; r < ROUNDS; r++) {
    const t = process.hrtime.bigint();
    await run();
    best = Math.min(best, Number(process.hrtime.bigint() - t) / 1e9);
  }
  const cpu = process.cpuUsage(cpu0);
  ds.dispose();
  return { imagesPerS: n / best, cpuUsPerImage: (cpu.user + cpu.system) / (ROUNDS * n) };
}

const referencePython = () => path.join(__dirname, "..", ".venv", "bin", "python");

/** `mode`: "tensor" (torchvision's tensor formulas in torch ops) or "pil" (the original's PIL path, needs Pillow). */
function reference(mode: "tensor" | "pil"): Map<string, Result> {
  const python = referencePython();
  const out = new Map<string, Result>();
  if (!fs.existsSync(python)) {
    console.log(`(no PyTorch reference: ${python} is missing; run sh scripts/setup.sh --python)`);
    return out;
  }
  const r = spawnSync(python, [path.join(__dirname, "data_reference.py"), SIZES.map((s) => `${s.size}:${s.images}`).join(","), THREADS.join(","), String(ROUNDS), mode], { encoding: "utf8" });
  if (r.status !== 0) {
    console.log(`(${mode} reference failed: ${r.stderr.trim().split("\n").pop()})`);
    return out;
  }
  for (const line of r.stdout.trim().split("\n")) {
    const j = JSON.parse(line) as { size: number; workers: number; images_per_s: number; cpu_us_per_image: number };
    out.set(`${j.size}/${j.workers}`, { imagesPerS: j.images_per_s, cpuUsPerImage: j.cpu_us_per_image });
  }
  return out;
}

async function main(): Promise<void> {
  const rows: { size: number; threads: number; ours: Result }[] = [];
  for (const s of SIZES) for (const t of THREADS) rows.push({ size: s.size, threads: t, ours: await ours(s.size, s.images, s.batch, s.dataset, t) });
  const refs = { pil: reference("pil"), torch: reference("tensor") };
  // Wall-clock throughput depends on what else the machine runs; CPU time per image does much less.
  console.log(`SSL two-view pipeline (each image -> two augmented views), best of ${ROUNDS} rounds; load average ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores`);
  console.log("PIL: the original's pipeline (torchvision on PIL images); torch: torchvision's tensor formulas; ratios are ours over theirs (target: 2x PIL per core)");
  console.log("size     threads  ours img/s  PIL img/s  ratio   torch img/s  ratio   ours cpu us/img  PIL cpu us/img  ratio   torch cpu us/img  ratio");
  const cell = (v: number | undefined, w: number) => (v === undefined ? "-" : v.toFixed(0)).padEnd(w);
  const ratio = (a: number | undefined, b: number | undefined, w: number) => (a && b ? `${(a / b).toFixed(1)}x` : "-").padEnd(w);
  for (const r of rows) {
    const key = `${r.size}/${r.threads}`;
    const p = refs.pil.get(key);
    const t = refs.torch.get(key);
    console.log(
      `${`${r.size}x${r.size}`.padEnd(9)}${String(r.threads).padEnd(9)}${cell(r.ours.imagesPerS, 12)}` +
        `${cell(p?.imagesPerS, 11)}${ratio(r.ours.imagesPerS, p?.imagesPerS, 8)}${cell(t?.imagesPerS, 13)}${ratio(r.ours.imagesPerS, t?.imagesPerS, 8)}` +
        `${cell(r.ours.cpuUsPerImage, 17)}${cell(p?.cpuUsPerImage, 16)}${ratio(p?.cpuUsPerImage, r.ours.cpuUsPerImage, 8)}` +
        `${cell(t?.cpuUsPerImage, 18)}${ratio(t?.cpuUsPerImage, r.ours.cpuUsPerImage, 6)}`,
    );
  }
  consumption(rows, process.argv[2]);
  if (fs.existsSync(referencePython())) spawnSync(referencePython(), [path.join(__dirname, "pil_rounding.py")], { stdio: "inherit" });
}

/**
 * The training step's consumption rate, from a step benchmark's results (default: the newest
 * bench/results/ssl_step-*.json; a GPU check's step JSON with the same rows works too), against the pipeline's rate.
 */
function consumption(rows: { size: number; threads: number; ours: Result }[], file?: string): void {
  const dir = path.join(__dirname, "results");
  const newest = () => {
    const runs = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^ssl_step-.*\.json$/.test(f)).sort() : [];
    return runs.length ? path.join(dir, runs[runs.length - 1]) : undefined;
  };
  const src = file ?? newest();
  if (!src) return console.log("(no step benchmark results to compare with: run npm run bench -- ssl_step first)");
  const j = JSON.parse(fs.readFileSync(src, "utf8")) as { ours?: StepRow[]; rows?: StepRow[] };
  const steps = (j.ours ?? j.rows ?? []).filter((r) => r.images_per_s);
  const pipe = rows.find((r) => r.size === 32 && r.threads === 1)?.ours;
  if (!pipe || !steps.length) return;
  console.log(`against the training step's consumption (${path.relative(process.cwd(), src)}), 32 px pipeline on 1 thread:`);
  for (const st of steps) {
    const rate = st.images_per_s!;
    const share = (rate * pipe.cpuUsPerImage) / 1e6;
    console.log(`  ${st.method.padEnd(14)} batch ${st.batch}: consumes ${rate.toFixed(0)} img/s; the pipeline supplies ${(pipe.imagesPerS / rate).toFixed(0)}x that, using ${(100 * share).toFixed(2)}% of one core`);
  }
}

interface StepRow {
  method: string;
  batch: number;
  images_per_s?: number;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
