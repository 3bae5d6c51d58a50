/** Mean and sample standard deviation (n - 1; 0 for a single value) of a non-empty list. */
export function meanSd(xs: readonly number[]): { mean: number; sd: number; n: number } {
  if (xs.length === 0) throw new Error("meanSd: no values");
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd, n: xs.length };
}
