// The SyncBN test's global batch, shared by the worker and the test's reference.
import { randomArray } from "../../helpers/random";

function batch() {
  const shape = [6, 3, 2, 2];
  const n = shape.reduce((a, b) => a * b, 1);
  // A large common offset: statistics formed from sum and sum of squares would lose digits here.
  const x = randomArray(n, 11).map((v, i) => 100 + 3 * v + (i % 3));
  const g = randomArray(n, 12);
  return { shape, x, g, weight: Float32Array.from([1.5, -0.5, 2]), bias: Float32Array.from([0.1, 0.2, -0.3]) };
}

export { batch };
