import type { Tensor } from "../tensor";

/**
 * Releases the tensors an op made for its own backward only (batch statistics, masks, indices): freed at once when
 * no backward was recorded (no input needs a gradient, or noGrad), else right after that backward has run.
 */
export function releaseInternal(out: Tensor, ...internal: Tensor[]): Tensor {
  for (const t of internal) t.release();
  return out;
}
