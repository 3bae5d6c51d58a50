// Deterministic pseudo-random test inputs (xorshift32), as plain CommonJS so that the distributed-test workers,
// which run outside vitest, draw the same stream as the tests (through numeric.ts).
"use strict";

/** n float32 values in [-1, 1). */
function randomArray(n, seed = 1) {
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

module.exports = { randomArray };
