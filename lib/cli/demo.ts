import * as fs from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { loadConfig, validateFor, type ConfigOverride } from "../config";
import { runLinear } from "../train/linear";
import { writeMergedReport } from "../train/results";
import { runSsl } from "../train/ssl";
import { resolveDevice } from "./resolve_device";

const CONFIGS = path.resolve(__dirname, "..", "..", "configs", "fmnist");

const usage = `usage: node lib/main.js demo [--output DIR] [--device cpu|cuda] [-j N] [--resume] [--opts KEY VALUE ...]

The built-in demo, on Fashion-MNIST (/usr/share/datasets/fashion-mnist, nothing is downloaded):
  1. SSQL_SimSiam and SimSiam pretraining (configs/fmnist/resnet18_{ssql_simsiam,simsiam}_fmnist.yaml),
  2. a linear evaluation of each backbone at fp, 8w8f, 4w4f and 2w4f (configs/fmnist/resnet18_linear_eval_fmnist.yaml),
  3. one table and one chart comparing them (results.md, results.svg), and the pretraining curves of both
     (results_loss.svg, results_lr.svg, results_knn.svg: the kNN monitor's top-1 at fp and 4w4f, side by side).
It shows the pipeline working end to end, not SSQL's effect: a few steps on a few hundred images leave both
backbones nearly untrained, so their accuracies differ by noise. For SSQL against SimSiam at a real scale see
docs/results.md and 'npm run reproduce'.
Everything goes under --output (default runs/demo). --opts applies to all three configs (e.g. DATA.TRAIN_SUBSET 2048
TRAIN.EPOCHS 10 for a longer run); --resume continues an interrupted demo.`;

/** Printed after the demo's table, so nobody takes it for a result. */
export const DEMO_CAVEAT =
  "This demo shows the pipeline working (pretraining, calibration, quantized linear evaluation, report), not SSQL's " +
  "effect: both backbones saw a few steps on a few hundred images, so the gap between them is noise. SSQL against " +
  "SimSiam at a real scale, with its spread across seeds: docs/results.md; to regenerate it on this machine: " +
  "npm run reproduce -- --budget-minutes 150.";

/** `demo [--output DIR] [--device D] [-j N] [--resume] [--opts K V ...]` */
export async function demo(argv: string[]): Promise<number> {
  const optsAt = argv.indexOf("--opts");
  const head = optsAt < 0 ? argv : argv.slice(0, optsAt);
  const tail = optsAt < 0 ? [] : argv.slice(optsAt + 1);
  let values: { output?: string; device?: string; workers?: string; resume?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: head,
      options: { output: { type: "string" }, device: { type: "string" }, workers: { type: "string", short: "j" }, resume: { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
    }));
  } catch (e) {
    throw new Error(`demo: ${(e as Error).message.split("\n")[0]}\n\n${usage}`);
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (tail.length % 2 === 1 || (optsAt >= 0 && tail.length === 0)) throw new Error("demo: --opts expects KEY VALUE pairs");
  const extra: ConfigOverride[] = [];
  for (let i = 0; i < tail.length; i += 2) extra.push({ key: tail[i], value: tail[i + 1], source: "--opts" });
  const workers = values.workers === undefined ? 4 : Number(values.workers);
  if (!Number.isInteger(workers) || workers < 1) throw new Error(`demo: -j expects a positive integer, got '${values.workers}'`);
  const out = path.resolve(values.output ?? path.join("runs", "demo"));
  const t0 = Date.now();
  const resume = values.resume ?? false;

  const pretrainings = [
    { name: "ssql_simsiam", config: "resnet18_ssql_simsiam_fmnist.yaml" },
    { name: "simsiam", config: "resnet18_simsiam_fmnist.yaml" },
  ];
  const runs = [];
  for (const p of pretrainings) {
    const cfg = loadConfig(path.join(CONFIGS, p.config), [...extra, ...(values.device ? [{ key: "DEVICE", value: values.device }] : [])]);
    validateFor("ssl", cfg);
    const device = resolveDevice(cfg.DEVICE);
    const sslDir = path.join(out, p.name);
    const ts = Date.now();
    console.log(`\n== demo: ${cfg.SSL.TYPE} pretraining -> ${sslDir}`);
    const done = resume && fs.existsSync(path.join(sslDir, "checkpoint.json"));
    await runSsl({ cfg, output: sslDir, device, workers, printFreq: cfg.TRAIN.PRINT_FREQ, resume: done ? true : false });
    console.log(`== ${cfg.SSL.TYPE} pretraining: ${((Date.now() - ts) / 1000).toFixed(1)} s`);

    const lin = loadConfig(path.join(CONFIGS, "resnet18_linear_eval_fmnist.yaml"), [
      ...extra,
      { key: "MODEL.PRETRAINED", value: sslDir, source: "demo" },
      ...(values.device ? [{ key: "DEVICE", value: values.device }] : []),
    ]);
    validateFor("linear", lin);
    const linDir = path.join(out, `linear_${p.name}`);
    const tl = Date.now();
    console.log(`\n== demo: linear evaluation of ${cfg.SSL.TYPE} at ${lin.LINEAR.BITS.join(", ")} -> ${linDir}`);
    const r = await runLinear({ cfg: lin, output: linDir, device, workers, printFreq: lin.TRAIN.PRINT_FREQ, resume });
    console.log(`== ${cfg.SSL.TYPE} linear evaluation: ${((Date.now() - tl) / 1000).toFixed(1)} s`);
    runs.push(r.results);
  }
  const { markdown, files } = await writeMergedReport(path.join(out, "results.svg"), runs, "SSQL vs SimSiam: linear evaluation on Fashion-MNIST by bit setting");
  console.log(`\n== demo results (${((Date.now() - t0) / 1000).toFixed(1)} s in total)\n\n${markdown}\nwritten: ${files.join(", ")}`);
  console.log(`\n${DEMO_CAVEAT}`);
  return 0;
}
