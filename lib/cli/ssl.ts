import * as path from "node:path";
import { resumeAfterRestart } from "../distributed/restart";
import { sslResumeRequest } from "../train/resume_request";
import { runSsl } from "../train/ssl";
import { runCommand } from "./run_command";

const summary = "Self-supervised pretraining (SSQL_SimSiam, SimSiam, SSQL_BYOL, BYOL, SSQL_MoCo, MoCo, SimCLR) from a yaml config.";

/**
 * `ssl --config FILE --output DIR [-j N] [--device cpu|cuda[:N]] [--resume [PATH]] [--nproc-per-node N] [--opts K V ...]`
 * Resumes from --resume, else from the run's own checkpoint after a torchrun restart, else from MODEL.CHECKPOINT.
 */
export function ssl(argv: string[]): Promise<number> {
  return runCommand("ssl", argv, [], summary, async (r) => {
    const resume = resumeAfterRestart(r.resume, path.join(r.output, "checkpoint.json"));
    await runSsl({ ...r, resume: sslResumeRequest(resume, r.cfg) });
    return 0;
  });
}
