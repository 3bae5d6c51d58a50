import type { Config } from "../config/schema";
import { GRANULARITIES, OBSERVER_NAMES, QUANTIZER_NAMES, WEIGHT_QUANTIZER_NAMES, type ObserverName } from "./names";
import { validateAlpha, validateBins } from "./observers/params";
import type { BitRange } from "./sampling";

/** QUANT.W or QUANT.A as the config defines, defaults and validates it (lib/config/schema.ts, validate.ts). */
export type QuantSideConfig = Config["QUANT"]["W"];

/** What a quantizer is built from: one side of QUANT, in the quantizers' words. */
export interface QuantSideSpec {
  readonly bits: number;
  readonly bitRange: BitRange;
  readonly symmetric: boolean;
  readonly perChannel: boolean;
  readonly observer: ObserverName;
  /** OBSERVER_METHOD.ALPHA: the share of largest |x| the PERCENTILE observer cuts off ([0, 1]). */
  readonly alpha: number;
  /** OBSERVER_METHOD.BINS: the KL_HISTOGRAM observer's histogram bins (>= 1). */
  readonly bins: number;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], key: string): T {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v))
    throw new Error(`${key}: got ${JSON.stringify(v)}; allowed: ${allowed.join(", ")}`);
  return v as T;
}

/**
 * The quantizer spec of a loaded QUANT.W or QUANT.A (`key` names it in errors). The config already holds its
 * defaults and checked its bits, range, granularity and observer name; what is left is what the config accepts
 * from the original but this trainer does not implement (a QUANTIZER other than uniform, the BASIC observer), and
 * the observer parameters' ranges.
 */
export function quantSideSpec(side: QuantSideConfig, key: "QUANT.W" | "QUANT.A"): QuantSideSpec {
  oneOf(side.QUANTIZER ?? "uniform", key === "QUANT.W" ? WEIGHT_QUANTIZER_NAMES : QUANTIZER_NAMES, `${key}.QUANTIZER`);
  const observer = oneOf(side.OBSERVER_METHOD.NAME, OBSERVER_NAMES, `${key}.OBSERVER_METHOD.NAME`);
  const granularity = oneOf(side.GRANULARITY, GRANULARITIES, `${key}.GRANULARITY`);
  const [lo, hi] = side.BIT_RANGE;
  const key2 = `${key}.OBSERVER_METHOD`;
  const alpha = validateAlpha({ axis: null, alpha: side.OBSERVER_METHOD.ALPHA, key: key2 });
  const bins = validateBins({ axis: null, bins: side.OBSERVER_METHOD.BINS, key: key2 });
  return { bits: side.BIT, bitRange: [lo, hi], symmetric: side.SYMMETRY, perChannel: granularity === "channelwise", observer, alpha, bins };
}
