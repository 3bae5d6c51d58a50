import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { formatBitSetting, parseBitSetting } from "../quant/bits";
import { readRunResults } from "../train/results";
import { childOutput, commandLine, runChild } from "../reproduce/child";
import { planFor, type Costs, type Plan } from "../reproduce/plan";
import { openJournal, recordJob, wallSeconds, type Journal } from "../reproduce/journal";
import { knnCost, metricsOf, secondsPerStep } from "../reproduce/probe";
import { DEFAULT_BITS, probeJobs, protocolJobs, type Job, type ProtocolOptions } from "../reproduce/protocol";
import { writePage } from "../reproduce/write_page";

const usage = `usage: node lib/main.js reproduce [--budget-minutes N] [--device cpu|cuda] [--output DIR] [--seed N] [--batch N]
                                 [--bits fp,8w8f,...] [--classifier-seeds N] [--resume] [--opts KEY VALUE ...]
       npm run reproduce -- [the same options]

SSQL_SimSiam against SimSiam on Fashion-MNIST, everything but the method alike, at the scale the budget pays for:
  1. a probe times a few steps of each method and one linear-eval setting on this machine;
  2. from it, the subset size and epochs of the pretraining and the linear-eval subset (the rule is on the page);
  3. both pretrainings (seed --seed), then linear evaluation of each at every --bits setting with --classifier-seeds
     classifier seeds; then both methods again with two pretraining seeds at a quarter of the subset, one classifier each;
  4. the page: results.md (tables, machine, budget, wall time, every command), results.svg, results_repeat.svg.
Every step is a 'node lib/main.js ssl|linear' child process logged beside its output folder.
Defaults: --budget-minutes 150 --output runs/reproduce --seed 100 --batch 64 --classifier-seeds 3
--bits ${DEFAULT_BITS.join(",")}. --opts goes to every command (e.g. MODEL.INPUTSHAPE "[16, 16]").
--resume skips the commands whose results are already in --output (the probe and plan are kept from plan.json).`;

interface Options {
  budgetMinutes: number;
  device?: string;
  out: string;
  seed: number;
  batch: number;
  bits: string[];
  classifierSeeds: number;
  resume: boolean;
  opts: string[];
}

function positiveInt(name: string, text: string | undefined, dflt: number): number {
  if (text === undefined) return dflt;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`reproduce: --${name} expects a positive integer, got '${text}'`);
  return n;
}

function parse(argv: string[]): Options | null {
  const optsAt = argv.indexOf("--opts");
  const head = optsAt < 0 ? argv : argv.slice(0, optsAt);
  const opts = optsAt < 0 ? [] : argv.slice(optsAt + 1);
  let v: Record<string, string | boolean | undefined>;
  try {
    v = parseArgs({
      args: head,
      strict: true,
      options: {
        "budget-minutes": { type: "string" }, device: { type: "string" }, output: { type: "string" }, seed: { type: "string" }, batch: { type: "string" },
        bits: { type: "string" }, "classifier-seeds": { type: "string" }, resume: { type: "boolean" }, help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (e) {
    throw new Error(`reproduce: ${(e as Error).message.split("\n")[0]}\n\n${usage}`);
  }
  if (v.help) return null;
  if (opts.length % 2 === 1 || (optsAt >= 0 && opts.length === 0)) throw new Error("reproduce: --opts expects KEY VALUE pairs");
  const budget = v["budget-minutes"] === undefined ? 150 : Number(v["budget-minutes"]);
  if (!(Number.isFinite(budget) && budget > 0)) throw new Error(`reproduce: --budget-minutes expects a positive number, got '${v["budget-minutes"]}'`);
  const device = v.device as string | undefined;
  if (device !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(device)) throw new Error(`reproduce: --device expects cpu, cuda or cuda:N, got '${device}'`);
  const bits = ((v.bits as string | undefined) ?? DEFAULT_BITS.join(",")).split(",").map((s) => s.trim());
  for (const b of bits) formatBitSetting(parseBitSetting(b));
  if (new Set(bits).size !== bits.length) throw new Error(`reproduce: --bits lists a setting twice: ${bits.join(",")}`);
  const seed = v.seed === undefined ? 100 : Number(v.seed);
  if (!Number.isInteger(seed) || seed < 0) throw new Error(`reproduce: --seed expects a non-negative integer, got '${v.seed}'`);
  return {
    budgetMinutes: budget,
    device,
    out: (v.output as string | undefined) ?? path.join("runs", "reproduce"),
    seed,
    batch: positiveInt("batch", v.batch as string | undefined, 64),
    bits,
    classifierSeeds: positiveInt("classifier-seeds", v["classifier-seeds"] as string | undefined, 3),
    resume: v.resume === true,
    opts,
  };
}

/** Whether a job's results are already in its folder (for --resume). */
function done(job: Job, plan: Plan, bits: readonly string[]): boolean {
  if (job.kind === "ssl") {
    const epochs = job.part === "main" ? plan.main.epochs : plan.repeat.epochs;
    return fs.existsSync(path.join(job.output, `checkpoint_${String(epochs - 1).padStart(4, "0")}.json`));
  }
  try {
    const r = readRunResults(job.output);
    return bits.every((b) => r.settings.some((s) => s.bits === b));
  } catch {
    return false;
  }
}

async function probe(po: ProtocolOptions, o: Options, journal: Journal, ran: { job: Job; seconds: number | null }[]): Promise<Costs> {
  const t0 = Date.now();
  const [ssqlJob, simsiamJob, linJob] = probeJobs(po, o.batch);
  const time = async (j: Job) => {
    console.log(`\n== reproduce (probe): ${commandLine(j.args)}`);
    const s = await runChild(j.args, `${j.output}.log`);
    recordJob(po.out, journal, j.output, s);
    ran.push({ job: j, seconds: s });
    return s;
  };
  await time(ssqlJob);
  await time(simsiamJob);
  const lin = await time(linJob);
  const n = 4 * o.batch;
  // The probe's one setting against its whole command: the rest is the process's own cost, paid once per command.
  const setting = readRunResults(linJob.output).settings.reduce((a, x) => a + x.seconds, 0);
  const knn = [ssqlJob, simsiamJob].map((j) => knnCost(metricsOf(j.output)));
  return {
    ssqlPerImage: secondsPerStep(metricsOf(ssqlJob.output)) / o.batch,
    simsiamPerImage: secondsPerStep(metricsOf(simsiamJob.output)) / o.batch,
    linearPerImage: setting / (2 * n),
    linearProcessSeconds: Math.max(0, lin - setting),
    probeSeconds: (Date.now() - t0) / 1000,
    ...(knn[0] && knn[1] ? { knnPerImage: (knn[0].perImage + knn[1].perImage) / 2, knnSettings: knn[0].settings, knnQueries: knn[0].queries } : {}),
  };
}

/** `reproduce [--budget-minutes N] [--device D] [--output DIR] ...`: see usage. */
export async function reproduce(argv: string[]): Promise<number> {
  const o = parse(argv);
  if (!o) {
    console.log(usage);
    return 0;
  }
  const cwd = process.cwd();
  const out = path.relative(cwd, path.resolve(o.out)) || ".";
  fs.mkdirSync(out, { recursive: true });
  if (!o.resume) fs.rmSync(path.join(out, "journal.jsonl"), { force: true });
  const journal = openJournal(out, new Date(), os.loadavg());
  const po: ProtocolOptions = {
    out,
    configs: path.relative(cwd, path.resolve(__dirname, "..", "..", "configs", "fmnist")),
    seed: o.seed,
    bits: o.bits,
    classifierSeeds: o.classifierSeeds,
    device: o.device,
    opts: o.opts,
  };
  const info = await childOutput(["info"]);
  const ran: { job: Job; seconds: number | null }[] = [];
  const planFile = path.join(out, "plan.json");
  let costs: Costs;
  let plan: Plan;
  if (o.resume && fs.existsSync(planFile)) {
    ({ costs, plan } = JSON.parse(fs.readFileSync(planFile, "utf-8")) as { costs: Costs; plan: Plan });
    for (const j of probeJobs(po, plan.batch)) ran.push({ job: j, seconds: journal.seconds.get(j.output) ?? null });
    console.log(`== reproduce: plan kept from ${planFile}`);
  } else {
    costs = await probe(po, o, journal, ran);
    plan = planFor(costs, {
      budgetSeconds: o.budgetMinutes * 60, batch: o.batch, settings: o.bits.length, classifierSeeds: o.classifierSeeds,
    });
    fs.writeFileSync(planFile, JSON.stringify({ budgetMinutes: o.budgetMinutes, costs, plan }, null, 2) + "\n");
  }
  console.log(`\n== reproduce: plan ${JSON.stringify(plan)}`);
  for (const job of protocolJobs(po, plan)) {
    if (o.resume && done(job, plan, o.bits)) {
      console.log(`== reproduce: already done, kept: ${job.output}`);
      ran.push({ job, seconds: journal.seconds.get(job.output) ?? null });
      continue;
    }
    console.log(`\n== reproduce (${job.part}): ${commandLine(job.args)}`);
    const s = await runChild(job.args, `${job.output}.log`);
    recordJob(out, journal, job.output, s);
    console.log(`== ${job.kind} ${job.method} seed ${job.seed}: ${s.toFixed(0)} s`);
    ran.push({ job, seconds: s });
  }
  const command = `node lib/main.js reproduce ${argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a}'`)).join(" ")}`.trimEnd();
  const page = await writePage({
    out,
    budgetMinutes: o.budgetMinutes,
    command,
    info,
    loadStart: journal.loadStart,
    loadEnd: os.loadavg(),
    started: journal.started,
    calls: journal.calls,
    wallSeconds: wallSeconds(journal),
    costs,
    plan,
    bits: o.bits,
    seed: o.seed,
    jobs: ran,
  });
  console.log(`\n${page}\nwritten: ${["results.md", "results.svg", "results_repeat.svg", "curves_*.svg"].map((f) => path.join(out, f)).join(", ")}`);
  return 0;
}
