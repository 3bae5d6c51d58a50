import { loadConfig, validateFor } from "../config";
import { spawnWorkers } from "../distributed/launch";
import { runPtq } from "../train/ptq";
import { bitsOption, nprocOption, parseCommandArgs } from "./args";
import { resolveDevice } from "./resolve_device";
import { stripOption } from "./ssl";

const summary =
  "Post-training quantization of a trained classifier (MODEL.PRETRAINED: a linear run's setting folder, or a PyTorch " +
  "state dict): calibrate, quantize at each bit setting, validate once; writes results.{json,md,csv,svg}.";

/** `ptq --config FILE [--bits fp,8w8f,4w4f] [--output DIR] [--device D] [--nproc-per-node N] [--opts K V ...]` */
export async function ptq(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs("ptq", argv, [bitsOption, nprocOption], summary);
  if ("help" in parsed) {
    console.log(parsed.help);
    return 0;
  }
  const nproc = Number(parsed.options.extra["nproc-per-node"] ?? 1);
  if (nproc > 1 && !process.env.WORLD_SIZE) return (await spawnWorkers(nproc, ["ptq", ...stripOption(argv, "--nproc-per-node")])).exitCode;
  const cfg = loadConfig(parsed.options.config, parsed.configOverrides, { defaults: parsed.configDefaults });
  validateFor("ptq", cfg);
  await runPtq({
    cfg,
    output: cfg.OUTPUT || parsed.options.output,
    device: resolveDevice(parsed.options.device ?? cfg.DEVICE),
    workers: parsed.options.workers,
  });
  return 0;
}
