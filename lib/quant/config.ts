import { validateBits } from "./bits";
import { GRANULARITIES, OBSERVER_NAMES, QUANTIZER_NAMES, type ObserverName } from "./names";
import { validateBitRange, type BitRange } from "./sampling";

/** A checked QUANT.W or QUANT.A section (the original's keys, §2 of the reference). */
export interface QuantSideSpec {
  readonly bits: number;
  readonly bitRange: BitRange;
  readonly symmetric: boolean;
  readonly perChannel: boolean;
  readonly observer: ObserverName;
}

function oneOf<T extends string>(v: unknown, allowed: readonly T[], key: string): T {
  if (typeof v !== "string" || !(allowed as readonly string[]).includes(v))
    throw new Error(`${key}: got ${JSON.stringify(v)}; allowed: ${allowed.join(", ")}`);
  return v as T;
}

/**
 * Validates QUANT.W or QUANT.A (`key` is that prefix) with the original's defaults for missing entries:
 * BIT 8, BIT_RANGE [2, 9] (W) / [4, 9] (A), SYMMETRY true (W) / false (A), GRANULARITY channelwise (W) / layerwise (A),
 * QUANTIZER uniform, OBSERVER_METHOD.NAME MINMAX. Every bad value is an error naming its key and the allowed values.
 */
export function quantSideSpec(section: unknown, key: "QUANT.W" | "QUANT.A"): QuantSideSpec {
  const s = (section ?? {}) as Record<string, unknown>;
  if (typeof s !== "object" || Array.isArray(s)) throw new Error(`${key}: expected a mapping`);
  const isW = key === "QUANT.W";
  const bits = validateBits(s.BIT ?? 8, `${key}.BIT`);
  const bitRange = validateBitRange(s.BIT_RANGE ?? (isW ? [2, 9] : [4, 9]), `${key}.BIT_RANGE`);
  const sym = s.SYMMETRY ?? isW;
  if (typeof sym !== "boolean") throw new Error(`${key}.SYMMETRY: got ${JSON.stringify(sym)}; allowed: true, false`);
  const granularity = oneOf(s.GRANULARITY ?? (isW ? "channelwise" : "layerwise"), GRANULARITIES, `${key}.GRANULARITY`);
  oneOf(s.QUANTIZER ?? "uniform", QUANTIZER_NAMES, `${key}.QUANTIZER`);
  const om = (s.OBSERVER_METHOD ?? {}) as Record<string, unknown>;
  if (typeof om !== "object" || Array.isArray(om)) throw new Error(`${key}.OBSERVER_METHOD: expected a mapping with NAME`);
  const observer = oneOf(om.NAME ?? "MINMAX", OBSERVER_NAMES, `${key}.OBSERVER_METHOD.NAME`);
  return { bits, bitRange, symmetric: sym, perChannel: granularity === "channelwise", observer };
}
