import * as path from "node:path";
import type { Plan } from "./plan";

export const METHODS = [
  { method: "SSQL_SimSiam", name: "ssql_simsiam", config: "resnet18_ssql_simsiam_fmnist.yaml" },
  { method: "SimSiam", name: "simsiam", config: "resnet18_simsiam_fmnist.yaml" },
] as const;
export const LINEAR_CONFIG = "resnet18_linear_eval_fmnist.yaml";
export const DEFAULT_BITS = ["fp", "8w8f", "6w6f", "4w4f", "3w3f", "2w4f", "2w2f"];

/** Where the protocol's inputs live and what it passes to every command. */
export interface ProtocolOptions {
  /** The run folder and the configs folder, as written on the command lines (relative to the working directory). */
  out: string;
  configs: string;
  seed: number;
  bits: readonly string[];
  classifierSeeds: number;
  device?: string;
  /** --opts pairs the user gave, applied to every command after the plan's. */
  opts: readonly string[];
}

export interface Job {
  kind: "ssl" | "linear";
  part: "probe" | "main" | "repeat";
  method: string;
  /** Pretraining seed (ssl) or classifier seed (linear). */
  seed: number;
  /** The pretraining seed of the backbone a linear job evaluates. */
  pretrainSeed: number;
  output: string;
  args: string[];
}

const dev = (o: ProtocolOptions) => (o.device ? ["--device", o.device] : []);

/** An ssl job. The config's kNN monitor (TRAIN.KNN) runs in the probe and the main runs; the repeats only need their linear results. */
export function sslJob(o: ProtocolOptions, part: Job["part"], m: (typeof METHODS)[number], seed: number, output: string, scale: { images: number; epochs: number }, batch: number): Job {
  const args = [
    "ssl", "--config", path.join(o.configs, m.config), "--output", output, "--seed", String(seed), ...dev(o),
    "--opts", "DATA.TRAIN_SUBSET", String(scale.images), "TRAIN.EPOCHS", String(scale.epochs), "TRAIN.BATCH_SIZE", String(batch), "TRAIN.PRINT_FREQ", "10",
    ...(part === "repeat" ? ["TRAIN.KNN.EVERY", "0"] : []), ...o.opts,
  ];
  return { kind: "ssl", part, method: m.method, seed, pretrainSeed: seed, output, args };
}

export function linearJob(o: ProtocolOptions, part: Job["part"], method: string, pretrainSeed: number, backbone: string, seed: number, output: string, images: { trainImages: number; valImages: number }, bits: readonly string[]): Job {
  const args = [
    "linear", "--config", path.join(o.configs, LINEAR_CONFIG), "--output", output, "--seed", String(seed), "--bits", bits.join(","), ...dev(o),
    "--opts", "MODEL.PRETRAINED", backbone, "DATA.TRAIN_SUBSET", String(images.trainImages), "DATA.VAL_SUBSET", String(images.valImages), ...o.opts,
  ];
  return { kind: "linear", part, method, seed, pretrainSeed, output, args };
}

/** The probe: a few steps of each method at the planned batch, then one linear setting on the SSQL probe backbone. */
export function probeJobs(o: ProtocolOptions, batch: number): Job[] {
  const dir = path.join(o.out, "probe");
  const ssl = METHODS.map((m) => sslJob(o, "probe", m, o.seed, path.join(dir, m.name), { images: 3 * batch, epochs: 1 }, batch));
  const n = 4 * batch;
  return [...ssl, linearJob(o, "probe", METHODS[0].method, o.seed, ssl[0].output, o.seed, path.join(dir, "linear"), { trainImages: n, valImages: n }, ["4w4f"])];
}

/** Every pretraining and linear evaluation of the protocol, in the order they run (the main comparison first). */
export function protocolJobs(o: ProtocolOptions, plan: Plan): Job[] {
  const jobs: Job[] = [];
  const cseeds = Array.from({ length: o.classifierSeeds }, (_, i) => o.seed + i);
  for (const m of METHODS) jobs.push(sslJob(o, "main", m, o.seed, path.join(o.out, "main", m.name), plan.main, plan.batch));
  for (const m of METHODS)
    for (const c of cseeds) jobs.push(linearJob(o, "main", m.method, o.seed, path.join(o.out, "main", m.name), c, path.join(o.out, "main", `linear_${m.name}_seed${c}`), plan.linear, o.bits));
  const seeds = [o.seed, o.seed + 1];
  for (const s of seeds) for (const m of METHODS) jobs.push(sslJob(o, "repeat", m, s, path.join(o.out, "repeat", `${m.name}_seed${s}`), plan.repeat, plan.batch));
  for (const s of seeds)
    for (const m of METHODS)
      jobs.push(linearJob(o, "repeat", m.method, s, path.join(o.out, "repeat", `${m.name}_seed${s}`), o.seed, path.join(o.out, "repeat", `linear_${m.name}_seed${s}`), plan.linear, o.bits));
  return jobs;
}
