/** The quantization config's names, free of native imports so that lib/config can check them. */

/** QUANT.{W,A}.OBSERVER_METHOD.NAME values the original accepts (observers/__init__.py:11-21). */
export const ORIGINAL_OBSERVER_NAMES = ["BASIC", "MINMAX", "MSE", "HISTOGRAM", "PERCENTILE", "KL_HISTOGRAM", "MOMENTUM_MINMAX", "GAUSSIAN"] as const;
export type OriginalObserverName = (typeof ORIGINAL_OBSERVER_NAMES)[number];

/** The observers of ORIGINAL_OBSERVER_NAMES that this trainer implements (all but BASIC, whose range stays unset). */
export const OBSERVER_NAMES = ["MINMAX", "MOMENTUM_MINMAX", "MSE", "HISTOGRAM", "PERCENTILE", "KL_HISTOGRAM", "GAUSSIAN"] as const satisfies readonly OriginalObserverName[];
export type ObserverName = (typeof OBSERVER_NAMES)[number];

/** QUANT.{W,A}.GRANULARITY: per output channel or per tensor. */
export const GRANULARITIES = ["channelwise", "layerwise"] as const;
export type Granularity = (typeof GRANULARITIES)[number];

export const QUANTIZER_NAMES = ["uniform"] as const;

/** QUANT.W.QUANTIZER: adaRound makes ptq reconstruct the weight rounding (lib/quant/reconstruct). */
export const WEIGHT_QUANTIZER_NAMES = ["uniform", "adaRound"] as const;
