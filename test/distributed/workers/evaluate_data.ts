// The sharded-validation test's sets, shared by the worker and the test's one-process reference: precomputed
// logits (the model is the identity) and labels, in batches of BATCH.
import { randomArray } from "../../helpers/random";

const CLASSES = 10;
const BATCH = 32;
/** Set sizes: 4 batches (rank 0 gets 64 images, rank 1 36), one batch (rank 1 gets none), and an empty set. */
const SIZES = [100, 20, 0];

function evalSet(n: number) {
  const logits = randomArray(n * CLASSES, 7 + n).map((v) => 3 * v);
  const labels = Int32Array.from(randomArray(n, 8 + n), (v) => Math.min(CLASSES - 1, Math.floor(((v + 1) / 2) * CLASSES)));
  return { logits, labels };
}

export { CLASSES, BATCH, SIZES, evalSet };
