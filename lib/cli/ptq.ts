import { runPtq } from "../train/ptq";
import { bitsOption, methodsOption } from "./args";
import { runCommand } from "./run_command";

const summary =
  "Post-training quantization of a trained classifier (MODEL.PRETRAINED: a linear run's setting folder, or a PyTorch " +
  "state dict): calibrate, quantize at each bit setting, validate once; writes results.{json,md,csv,svg}.";

/** `ptq --config FILE [--bits fp,8w8f,4w4f] [--methods minmax,adaround,brecq] [--output DIR] [--device D] [--nproc-per-node N] [--opts K V ...]` */
export function ptq(argv: string[]): Promise<number> {
  return runCommand("ptq", argv, [bitsOption, methodsOption], summary, async (r) => {
    await runPtq(r);
    return 0;
  });
}
