import * as path from "node:path";
import { loadConfig, validateFor } from "../config";
import { spawnWorkers } from "../distributed/launch";
import { resumeAfterRestart } from "../distributed/restart";
import { runSsl } from "../train/ssl";
import { nprocOption, parseCommandArgs } from "./args";
import { resolveDevice } from "./resolve_device";

const summary = "Self-supervised pretraining (SSQL_SimSiam, SimSiam, SSQL_BYOL, BYOL, SSQL_MoCo, MoCo, SimCLR) from a yaml config.";

/** `ssl --config FILE --output DIR [-j N] [--device cpu|cuda[:N]] [--resume [PATH]] [--nproc-per-node N] [--opts K V ...]` */
export async function ssl(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs("ssl", argv, [nprocOption], summary);
  if ("help" in parsed) {
    console.log(parsed.help);
    return 0;
  }
  const nproc = Number(parsed.options.extra["nproc-per-node"] ?? 1);
  if (nproc > 1 && !process.env.WORLD_SIZE) {
    // Re-run this command on N workers, without the launcher flag.
    const rest = stripOption(argv, "--nproc-per-node");
    return (await spawnWorkers(nproc, ["ssl", ...rest])).exitCode;
  }
  const cfg = loadConfig(parsed.options.config, parsed.configOverrides, { defaults: parsed.configDefaults });
  validateFor("ssl", cfg);
  const device = resolveDevice(parsed.options.device ?? cfg.DEVICE);
  const output = cfg.OUTPUT || parsed.options.output;
  await runSsl({
    cfg,
    output,
    device,
    workers: parsed.options.workers,
    printFreq: cfg.TRAIN.PRINT_FREQ,
    resume: resumeAfterRestart(parsed.options.resume, path.join(output, "checkpoint.json")),
  });
  return 0;
}

export function stripOption(argv: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) {
      i++;
      continue;
    }
    if (argv[i].startsWith(`${name}=`)) continue;
    out.push(argv[i]);
  }
  return out;
}
