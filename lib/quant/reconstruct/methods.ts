import type { Config, ConfigOverride } from "../../config";
import { withOverrides } from "../../config";
import { ORIGINAL_OBSERVER_NAMES } from "../names";
import { ADAROUND } from "./options";

/**
 * The PTQ methods `ptq --methods` (QUANT.METHODS) compares, each a set of config overrides: an observer name sets
 * both sides' QUANT.{W,A}.OBSERVER_METHOD.NAME with the uniform quantizer (whether the observer is implemented is
 * checked where quantizers are built, so a new observer needs no change here); adaround and brecq switch the weight
 * quantizer to adaRound with layer- or block-wise reconstruction, keeping the observers the config names.
 */
const RECONSTRUCTION: Record<string, ConfigOverride[]> = {
  adaround: [
    { key: "QUANT.W.QUANTIZER", value: ADAROUND },
    { key: "QUANT.FINETUNE.GRANULARITY", value: "layer" },
  ],
  brecq: [
    { key: "QUANT.W.QUANTIZER", value: ADAROUND },
    { key: "QUANT.FINETUNE.GRANULARITY", value: "block" },
  ],
};

const OBSERVERS = ORIGINAL_OBSERVER_NAMES.filter((n) => n !== "BASIC").map((n) => n.toLowerCase());

export const METHOD_NAMES: readonly string[] = [...OBSERVERS, ...Object.keys(RECONSTRUCTION)];

export function methodOverrides(method: string): ConfigOverride[] {
  const m = method.trim().toLowerCase();
  const source = "QUANT.METHODS";
  if (RECONSTRUCTION[m]) return RECONSTRUCTION[m].map((o) => ({ ...o, source }));
  if (OBSERVERS.includes(m)) {
    const name = m.toUpperCase();
    return [
      { key: "QUANT.W.OBSERVER_METHOD.NAME", value: name, source },
      { key: "QUANT.A.OBSERVER_METHOD.NAME", value: name, source },
      { key: "QUANT.W.QUANTIZER", value: "uniform", source },
    ];
  }
  throw new Error(`QUANT.METHODS: unknown PTQ method '${method}'; known: ${METHOD_NAMES.join(", ")}`);
}

/** One config per method of QUANT.METHODS (name null: the config as it stands, when the list is empty). */
export function methodConfigs(cfg: Config): { method: string | null; cfg: Config }[] {
  const list = cfg.QUANT.METHODS;
  if (list.length === 0) return [{ method: null, cfg }];
  const seen = new Set<string>();
  return list.map((m) => {
    const name = m.trim().toLowerCase();
    if (seen.has(name)) throw new Error(`QUANT.METHODS: '${m}' is listed twice`);
    seen.add(name);
    return { method: name, cfg: withOverrides(cfg, methodOverrides(name)) };
  });
}
