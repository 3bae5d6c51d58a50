/** Deterministic pseudo-random values in [-1, 1) (xorshift32) for test inputs. */
export function randomArray(n: number, seed?: number): Float32Array;
