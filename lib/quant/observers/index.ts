/**
 * The original's range observers (quant_tools/observers), selected by QUANT.{W,A}.OBSERVER_METHOD.NAME. Each gives
 * [min, max] (per tensor or per channel); scale and zero point then come from calcQParams as for MINMAX.
 */
import { OBSERVER_NAMES } from "../names";
import { GaussianObserver } from "./gaussian";
import { KlHistogramObserver } from "./kl_histogram";
import { MinMaxObserver, MomentumMinMaxObserver } from "./minmax";
import { MseObserver } from "./mse";
import { PercentileObserver } from "./percentile";
import type { Observer, ObserverOptions } from "./types";

export { GAUSSIAN_ALPHA, GaussianObserver } from "./gaussian";
export { KlHistogramObserver, klBinsFit } from "./kl_histogram";
export { MinMaxObserver, MomentumMinMaxObserver } from "./minmax";
export { MseObserver } from "./mse";
export { validateAlpha, validateBins } from "./params";
export { PercentileObserver } from "./percentile";
export type { ObservedRange, Observer, ObserverOptions } from "./types";

/** Builds an observer by its config name; `key` names the config entry in the error for an unknown name. */
export function createObserver(name: string, opts: ObserverOptions, key = "OBSERVER_METHOD.NAME"): Observer {
  switch (name) {
    case "MINMAX":
      return new MinMaxObserver(opts);
    case "MOMENTUM_MINMAX":
      return new MomentumMinMaxObserver(opts);
    case "MSE":
    case "HISTOGRAM":
      return new MseObserver(name, opts);
    case "PERCENTILE":
      return new PercentileObserver(opts);
    case "KL_HISTOGRAM":
      return new KlHistogramObserver(opts);
    case "GAUSSIAN":
      return new GaussianObserver(opts);
    default:
      throw new Error(`${key}: unknown observer '${name}'; allowed: ${OBSERVER_NAMES.join(", ")}`);
  }
}
