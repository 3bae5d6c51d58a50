import { describe, expect, it } from "vitest";
import { cpuOps, cudaOps, type CudaNativeOps } from "../../lib/tensor/binding";
import type { DeviceOps } from "../../lib/tensor/native";
import { opCases } from "../shared/op-cases";
import { augmentChecks } from "./augment_checks";
import { cudaChecks, cudaTolerance, runCaseOnCuda } from "./checks";
import { quantChecks } from "./quant_checks";

function load(): { cuda: CudaNativeOps | null; why: string } {
  try {
    return { cuda: cudaOps(), why: "" };
  } catch (e) {
    return { cuda: null, why: (e as Error).message };
  }
}

const { cuda, why } = load();
if (!cuda) console.log(`CUDA tests skipped: ${why}`);

function cpuOrNull(): DeviceOps | null {
  try {
    return cpuOps();
  } catch {
    return null;
  }
}

(cuda ? describe : describe.skip)(`CUDA backend against the CPU addon and the references${cuda ? "" : ` (skipped: ${why})`}`, () => {
  const cpu = cpuOrNull();
  for (const c of opCases)
    it(c.name, async () => {
      const r = await runCaseOnCuda(c, cuda!, cpu);
      expect(r.error).toBeUndefined();
      for (const [k, e] of Object.entries(r.vsReference ?? {})) expect(e, `vs reference: ${k}`).toBeLessThanOrEqual(c.tolerance ?? cudaTolerance);
      for (const [k, e] of Object.entries(r.vsCpu ?? {})) expect(e, `vs CPU: ${k}`).toBeLessThanOrEqual(cudaTolerance);
    });
  for (const check of [...cudaChecks, ...quantChecks, ...augmentChecks]) it(check.name, () => check.run(cuda!, cpu).then(() => undefined));
});
