// The same xorshift stream as test/helpers/numeric.ts randomArray, for workers that run outside vitest.
"use strict";
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
