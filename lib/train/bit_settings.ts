import * as path from "node:path";
import type { Config } from "../config";
import { formatBitSetting, parseBitSetting } from "../quant/bits";
import type { LoadedStateDict } from "./pretrained";

/** The settings a linear or ptq run evaluates: LINEAR.BITS, else the config's single QUANT.W.BIT / QUANT.A.BIT. */
export function bitSettings(cfg: Config, given?: readonly string[]): string[] {
  const list = given && given.length ? given : cfg.LINEAR.BITS.length ? cfg.LINEAR.BITS : [formatBitSetting({ w: cfg.QUANT.W.BIT, a: cfg.QUANT.A.BIT })];
  const out = list.map((s) => formatBitSetting(parseBitSetting(s)));
  const dup = out.find((s, i) => out.indexOf(s) !== i);
  if (dup) throw new Error(`bit setting '${dup}' is listed twice`);
  return out;
}

/** A run's label: the SSL method recorded in our checkpoint, else the checkpoint's file or folder name. */
export function runLabel(state: LoadedStateDict): { label: string; method: string | null } {
  const cfg = state.manifest?.config as { ssl?: unknown; method?: unknown } | null | undefined;
  const method = typeof cfg?.ssl === "string" ? cfg.ssl : typeof cfg?.method === "string" ? cfg.method : null;
  if (method) return { label: method, method };
  const p = state.file.replace(/[/\\]checkpoint\.json$/, "");
  return { label: path.basename(p).replace(/\.(pth\.tar|pth|pt|tar|json|safetensors)$/, ""), method: null };
}
