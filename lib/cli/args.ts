import { parseArgs } from "node:util";
import { bitSettingProblem } from "../config/bit_setting_check";
import { didYouMean } from "../config/errors";
import type { ConfigOverride } from "../config/load";

/** A command-specific option, e.g. linear's `--bits fp,8w8f,4w4f`. */
export interface ExtraOption {
  /** Long name without dashes: "bits", "nproc-per-node". */
  readonly name: string;
  readonly short?: string;
  readonly type: "string" | "boolean";
  /** Shown in --help: `--bits LIST`. */
  readonly valueName?: string;
  readonly description: string;
  readonly default?: string | boolean;
  /** Converts and checks the text; throw an Error to reject it (the message is prefixed with the option). */
  readonly parse?: (text: string) => unknown;
  /** When given on the command line, also set this config key (an override that beats the yaml). */
  readonly configKey?: string;
}

export interface CommonOptions {
  readonly config: string;
  readonly output: string;
  readonly workers: number;
  readonly printFreq: number;
  /** cpu | cuda | cuda:N, or undefined = the config's DEVICE (null there: cuda when available, else cpu). */
  readonly device: string | undefined;
  readonly seed: number | undefined;
  /** false: start fresh; true: resume from the latest checkpoint in the output folder; a string: that checkpoint. */
  readonly resume: string | boolean;
  /** Values of the command's extra options by long name (parsed; defaults filled in). */
  readonly extra: Readonly<Record<string, unknown>>;
}

export interface CommandArgs {
  readonly help?: undefined;
  readonly options: CommonOptions;
  /** Explicit flags and `--opts` pairs, in that order: pass to loadConfig; they win over the yaml. */
  readonly configOverrides: readonly ConfigOverride[];
  /** Flags left at their defaults (-j, -p, --output): pass as loadConfig's `defaults`; the yaml wins over them. */
  readonly configDefaults: readonly ConfigOverride[];
}

export interface HelpRequest {
  readonly help: string;
}

/** A --bits option for linear: a comma-separated list of settings (fp, 8w8f, 4w4f, 2w4f), sets LINEAR.BITS. */
export const bitsOption: ExtraOption = {
  name: "bits",
  type: "string",
  valueName: "LIST",
  description: "bit settings to evaluate, comma-separated: fp,8w8f,4w4f,2w4f (sets LINEAR.BITS)",
  parse: (text) => {
    const list = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
    if (list.length === 0) throw new Error("expects at least one setting, e.g. fp,4w4f");
    for (const s of list) {
      const problem = bitSettingProblem(s);
      if (problem) throw new Error(problem);
    }
    return list;
  },
  configKey: "LINEAR.BITS",
};

/** --methods minmax,mse,adaround,brecq: PTQ methods to compare (ptq). */
export const methodsOption: ExtraOption = {
  name: "methods",
  type: "string",
  valueName: "LIST",
  description: "PTQ methods to compare at every bit setting, comma-separated: minmax, mse, percentile, histogram, kl_histogram, gaussian, adaround, brecq (sets QUANT.METHODS)",
  parse: (text) => {
    const list = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
    if (list.length === 0) throw new Error("expects at least one method, e.g. minmax,adaround");
    return list;
  },
  configKey: "QUANT.METHODS",
};

/** --nproc-per-node N: spawn N worker processes on this machine (the launcher reads it). */
export const nprocOption: ExtraOption = {
  name: "nproc-per-node",
  type: "string",
  valueName: "N",
  description: "worker processes to start on this machine (one per GPU); default 1",
  default: "1",
  parse: (text) => nonNegativeInt(text, 1),
};

interface CommonSpec {
  readonly name: string;
  readonly short?: string;
  readonly valueName: string;
  readonly description: string;
}

const COMMON: readonly CommonSpec[] = [
  { name: "config", valueName: "PATH", description: "yaml config file (required)" },
  { name: "output", valueName: "DIR", description: "output folder for logs and checkpoints (default ./train_log)" },
  { name: "workers", short: "j", valueName: "N", description: "data-loading workers (default 4)" },
  { name: "print-freq", short: "p", valueName: "N", description: "refresh the terminal's progress line every N steps (default 50; a yaml PRINT_FREQ wins); redirected output gets one line per epoch" },
  { name: "device", valueName: "DEV", description: "cpu | cuda | cuda:N (default: cuda when available, else cpu)" },
  { name: "seed", valueName: "N", description: "random seed (overrides SEED)" },
  { name: "resume", valueName: "[PATH]", description: "resume from PATH, or without PATH from the latest checkpoint in --output" },
];

const DEFAULTS = { output: "./train_log", workers: 4, printFreq: 50 };

/**
 * Parses a sub-command's arguments: `--config PATH [--output DIR] [-j N] [-p N] [--device D] [--seed N]
 * [--resume [PATH]] [extras...] [--opts KEY VALUE ...]`. Everything after `--opts` is KEY VALUE pairs.
 * Returns { help } for -h/--help. Errors name the offending option.
 */
export function parseCommandArgs(
  command: string,
  argv: readonly string[],
  extras: readonly ExtraOption[] = [],
  summary = "",
): CommandArgs | HelpRequest {
  const optsAt = argv.indexOf("--opts");
  const head = optsAt < 0 ? [...argv] : argv.slice(0, optsAt);
  const tail = optsAt < 0 ? [] : argv.slice(optsAt + 1);
  const fail = (msg: string): never => {
    throw new Error(`${command}: ${msg}\nRun 'node lib/main.js ${command} --help' for the options.`);
  };

  // parseArgs has no optional values: a bare --resume (last, or before another option) means "latest".
  for (let i = 0; i < head.length; i++) {
    if (head[i] === "--resume" && (i + 1 === head.length || head[i + 1]!.startsWith("-"))) head[i] = "--resume=";
  }

  const spec: Record<string, { type: "string" | "boolean"; short?: string }> = { help: { type: "boolean", short: "h" } };
  for (const o of COMMON) spec[o.name] = { type: "string", ...(o.short ? { short: o.short } : {}) };
  for (const o of extras) spec[o.name] = { type: o.type, ...(o.short ? { short: o.short } : {}) };

  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args: head, options: spec, strict: true, allowPositionals: false }).values as typeof values;
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0]!;
    const unknown = /^Unknown option '--?([^'=]+)'/.exec(msg);
    const known = [...COMMON.map((o) => o.name), ...extras.map((o) => o.name), "help", "opts"];
    return fail(unknown ? `${msg}${didYouMean(unknown[1]!, known).replace(/\(did you mean (.*)\?\)/, "(did you mean --$1?)")}` : msg);
  }
  if (values.help) return { help: usage(command, extras, summary) };

  const str = (name: string) => values[name] as string | undefined;
  const num = (name: string, short: string | undefined, min: number) => {
    const v = str(name);
    if (v === undefined) return undefined;
    try {
      return nonNegativeInt(v, min);
    } catch (e) {
      return fail(`option ${short ? `-${short}/` : ""}--${name}: ${(e as Error).message}`);
    }
  };

  const config = str("config");
  if (config === undefined || config === "") fail("option --config PATH is required");
  const device = str("device");
  if (device !== undefined && !/^(cpu|cuda(:\d+)?)$/.test(device)) {
    fail(`option --device: expected cpu, cuda or cuda:N, got '${device}'`);
  }
  const workers = num("workers", "j", 0);
  const printFreq = num("print-freq", "p", 1);
  const seed = num("seed", undefined, 0);
  const output = str("output");
  if (output === "") fail("option --output: expected a folder");
  const resumeText = str("resume");
  const resume = resumeText === undefined ? false : resumeText === "" ? true : resumeText;

  const configOverrides: ConfigOverride[] = [];
  const configDefaults: ConfigOverride[] = [];
  const flag = (given: boolean, source: string, key: string, value: unknown) =>
    (given ? configOverrides : configDefaults).push({ key, value, source: given ? source : "default" });
  flag(output !== undefined, "--output", "OUTPUT", output ?? DEFAULTS.output);
  flag(workers !== undefined, "-j/--workers", "TRAIN.NUM_WORKERS", workers ?? DEFAULTS.workers);
  flag(workers !== undefined, "-j/--workers", "QUANT.CALIBRATION.NUM_WORKERS", workers ?? DEFAULTS.workers);
  flag(printFreq !== undefined, "-p/--print-freq", "TRAIN.PRINT_FREQ", printFreq ?? DEFAULTS.printFreq);
  if (device !== undefined) flag(true, "--device", "DEVICE", device);
  if (seed !== undefined) flag(true, "--seed", "SEED", seed);

  const extra: Record<string, unknown> = {};
  for (const o of extras) {
    const v = values[o.name];
    if (v === undefined) {
      extra[o.name] = o.default !== undefined && o.parse && typeof o.default === "string" ? o.parse(o.default) : o.default;
      continue;
    }
    let parsed: unknown = v;
    if (o.parse && typeof v === "string") {
      try {
        parsed = o.parse(v);
      } catch (e) {
        fail(`option --${o.name}: ${(e as Error).message}`);
      }
    }
    extra[o.name] = parsed;
    if (o.configKey) configOverrides.push({ key: o.configKey, value: parsed, source: `--${o.name}` });
  }

  if (optsAt >= 0) {
    if (tail.length === 0) fail("--opts expects KEY VALUE pairs after it");
    if (tail.length % 2 === 1) fail(`--opts expects KEY VALUE pairs; '${tail[tail.length - 1]}' has no value`);
    for (let i = 0; i < tail.length; i += 2) {
      configOverrides.push({ key: tail[i]!, value: tail[i + 1]!, source: "--opts" });
    }
  }

  return {
    options: {
      config: config!,
      output: output ?? DEFAULTS.output,
      workers: workers ?? DEFAULTS.workers,
      printFreq: printFreq ?? DEFAULTS.printFreq,
      device,
      seed,
      resume,
      extra,
    },
    configOverrides,
    configDefaults,
  };
}

/** The --help text of a sub-command. */
export function usage(command: string, extras: readonly ExtraOption[] = [], summary = ""): string {
  const rows: [string, string][] = COMMON.map((o) => [
    `${o.short ? `-${o.short}, ` : "    "}--${o.name} ${o.valueName}`,
    o.description,
  ]);
  for (const o of extras) {
    const value = o.type === "string" ? ` ${o.valueName ?? "VALUE"}` : "";
    rows.push([`${o.short ? `-${o.short}, ` : "    "}--${o.name}${value}`, o.description]);
  }
  rows.push(["    --opts KEY VALUE ...", "set config keys, e.g. --opts TRAIN.EPOCHS 10 TRAIN.BATCH_SIZE 64 (last on the line)"]);
  rows.push(["-h, --help", "show this help"]);
  const w = Math.max(...rows.map(([l]) => l.length));
  const lines = [
    `usage: node lib/main.js ${command} --config PATH [options] [--opts KEY VALUE ...]`,
    ...(summary ? ["", summary] : []),
    "",
    "options:",
    ...rows.map(([l, r]) => `  ${l.padEnd(w)}  ${r}`),
    "",
    "Command-line values win over the yaml (in the original the yaml won); -j, -p and --output left at their",
    "defaults do not override a value the yaml sets.",
  ];
  return lines.join("\n");
}

function nonNegativeInt(text: string, min: number): number {
  const n = Number(text);
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(n) || n < min) {
    throw new Error(`expected an integer >= ${min}, got '${text}'`);
  }
  return n;
}
