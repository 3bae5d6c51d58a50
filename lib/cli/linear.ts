import { loadConfig, validateFor } from "../config";
import { spawnWorkers } from "../distributed/launch";
import { resumeAfterRestart } from "../distributed/restart";
import { runLinear } from "../train/linear";
import { bitsOption, nprocOption, parseCommandArgs } from "./args";
import { resolveDevice } from "./resolve_device";
import { stripOption } from "./ssl";

const summary =
  "Linear evaluation (TRAIN.LINEAR_EVAL) or fine-tuning of a pretrained backbone, one classifier per bit setting; " +
  "writes results.{json,md,csv,svg} to --output.";

/** `linear --config FILE [--bits fp,8w8f,4w4f,2w4f] [--output DIR] [--device D] [--resume [PATH]] [--nproc-per-node N] [--opts K V ...]` */
export async function linear(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs("linear", argv, [bitsOption, nprocOption], summary);
  if ("help" in parsed) {
    console.log(parsed.help);
    return 0;
  }
  const nproc = Number(parsed.options.extra["nproc-per-node"] ?? 1);
  if (nproc > 1 && !process.env.WORLD_SIZE) return (await spawnWorkers(nproc, ["linear", ...stripOption(argv, "--nproc-per-node")])).exitCode;
  const cfg = loadConfig(parsed.options.config, parsed.configOverrides, { defaults: parsed.configDefaults });
  validateFor("linear", cfg);
  const device = resolveDevice(parsed.options.device ?? cfg.DEVICE);
  const output = cfg.OUTPUT || parsed.options.output;
  const { complete } = await runLinear({
    cfg,
    output,
    device,
    workers: parsed.options.workers,
    printFreq: cfg.TRAIN.PRINT_FREQ,
    resume: resumeAfterRestart(parsed.options.resume, output),
  });
  return complete ? 0 : 1;
}
