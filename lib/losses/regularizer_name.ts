import { ConfigError } from "../config/errors";

/** TRAIN.LOSS.REGULARIZER.NAME's values (native-free; the regularizers themselves are in ./regularizers.ts). */
export const REGULARIZER_NAMES = ["Slimming"] as const;
export type RegularizerName = (typeof REGULARIZER_NAMES)[number];

export function regularizerName(name: string): RegularizerName | null {
  if (name === "") return null;
  if ((REGULARIZER_NAMES as readonly string[]).includes(name)) return name as RegularizerName;
  const why =
    name === "PACT"
      ? "PACT regularizes the clipping levels of PACT quantizers, and QUANT.*.QUANTIZER here is uniform, which has none (the original failed on this too)"
      : `unknown regularizer '${name}'`;
  throw new ConfigError(`TRAIN.LOSS.REGULARIZER.NAME: ${why}; supported: ${REGULARIZER_NAMES.join(", ")} (empty = none)`, undefined, "TRAIN.LOSS.REGULARIZER.NAME");
}

