import { resumeAfterRestart } from "../distributed/restart";
import { runLinear } from "../train/linear";
import { bitsOption } from "./args";
import { runCommand } from "./run_command";

const summary =
  "Linear evaluation (TRAIN.LINEAR_EVAL) or fine-tuning of a pretrained backbone, one classifier per bit setting; " +
  "writes results.{json,md,csv,svg} to --output.";

/** `linear --config FILE [--bits fp,8w8f,4w4f,2w4f] [--output DIR] [--device D] [--resume [PATH]] [--nproc-per-node N] [--opts K V ...]` */
export function linear(argv: string[]): Promise<number> {
  return runCommand("linear", argv, [bitsOption], summary, async (r) => {
    const { complete } = await runLinear({ ...r, resume: resumeAfterRestart(r.resume, r.output) });
    return complete ? 0 : 1;
  });
}
