import { validateBits } from "../bits";
import type { ObserverOptions } from "./types";

/** The config key of an observer parameter in errors: "<prefix>.<NAME>" (prefix from ObserverOptions.key). */
export function paramKey(opts: ObserverOptions, name: string): string {
  return `${opts.key ?? "OBSERVER_METHOD"}.${name}`;
}

/** The search bit width of MSE / HISTOGRAM / KL_HISTOGRAM: 1..16 (0, the identity, has no range to search). */
export function searchBits(bits: number | undefined, who: string): number {
  const b = validateBits(bits ?? 8, `${who}.bits`);
  if (b < 1) throw new RangeError(`${who}: a range is searched for 1..16 bits, got ${b}`);
  return b;
}

/** PERCENTILE's ALPHA: the share of values cut off, a number in [0, 1] (0: no cut). */
export function validateAlpha(opts: ObserverOptions): number {
  const v = opts.alpha ?? 0.0001;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0 || v > 1)
    throw new RangeError(`${paramKey(opts, "ALPHA")}: the share of largest |x| the PERCENTILE observer cuts off must be a number in [0, 1] (0.0001: 0.01 %), got ${JSON.stringify(v)}`);
  return v;
}

/** KL_HISTOGRAM's BINS: an integer >= 1 (which bit widths it can calibrate is checked when the range is computed). */
export function validateBins(opts: ObserverOptions): number {
  const v = opts.bins ?? 2049;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > 1 << 20)
    throw new RangeError(`${paramKey(opts, "BINS")}: the KL_HISTOGRAM observer's histogram bins must be an integer in 1..${1 << 20}, got ${JSON.stringify(v)}`);
  return v;
}
