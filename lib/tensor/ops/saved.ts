import type { Tensor } from "../tensor";

/** Frees the tensors a backward would have used when none was recorded (no input needs a gradient, or noGrad). */
export function releaseUnlessRecorded(out: Tensor, ...saved: Tensor[]): Tensor {
  if (!out.gradFn) for (const t of saved) t.dispose();
  return out;
}
