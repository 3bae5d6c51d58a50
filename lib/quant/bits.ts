/** Largest bit width a quantizer accepts (the integer grid must stay exact in fp32). */
export const MAX_BITS = 16;

/** Per-layer bit widths: w for the weight quantizer, a for the output (activation) quantizer; 0 = not quantized. */
export interface LayerBits {
  w?: number;
  a?: number;
}

/** QUANT.BIT_CONFIG: a list holding (at most) one mapping from layer name (`conv1`, `fc.3`) to its bits. */
export type BitConfig = readonly Readonly<Record<string, LayerBits>>[];

/** What a quantized layer carries, by its name relative to the wrapped model (`conv1`, `layer2.0.downsample`, `fc.3`). */
export interface QuantLayerInfo {
  readonly name: string;
  readonly hasWeight: boolean;
  readonly hasAct: boolean;
}

/** True for an integer bit width in 0..MAX_BITS (0 = not quantized). */
export function isBitWidth(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= MAX_BITS;
}

/** An integer bit width in 0..16, or an error naming `key`. */
export function validateBits(v: unknown, key: string): number {
  if (!isBitWidth(v))
    throw new RangeError(`${key}: bit width must be an integer in 0..${MAX_BITS} (0 = not quantized), got ${JSON.stringify(v)}`);
  return v;
}

/** One evaluation setting: weight and activation bits, 0 = not quantized. */
export interface BitSetting {
  readonly w: number;
  readonly a: number;
}

/** A text parseBitSetting cannot read; `reason` says why, for callers that word the error their own way. */
export class BitSettingError extends Error {
  constructor(
    readonly setting: string,
    readonly reason: string,
  ) {
    super(`invalid bit setting '${setting}': ${reason}`);
    this.name = "BitSettingError";
  }
}

/**
 * A bit setting as the paper and the original's run names write it: "fp" (no quantization), or "<W>w<A>f" such as
 * "8w8f", "4w4f", "2w4f" (weight bits, then activation "feature" bits).
 */
export function parseBitSetting(s: string): BitSetting {
  const t = s.trim().toLowerCase();
  if (t === "fp") return { w: 0, a: 0 };
  const m = /^(\d+)w(\d+)f$/.exec(t);
  if (!m) throw new BitSettingError(s, "expected 'fp' or '<W>w<A>f' such as '8w8f', '4w4f' or '2w4f'");
  const w = Number(m[1]);
  const a = Number(m[2]);
  if (!isBitWidth(w) || !isBitWidth(a)) throw new BitSettingError(s, `bit widths must be in 0..${MAX_BITS} (0 = not quantized)`);
  return { w, a };
}

/** The inverse of parseBitSetting. */
export function formatBitSetting(b: BitSetting): string {
  return b.w === 0 && b.a === 0 ? "fp" : `${b.w}w${b.a}f`;
}

/**
 * The original's allocate_bit (quant_model.py:147-189): every weight quantizer gets `w` and every output quantizer
 * `a`, then the entries of QUANT.BIT_CONFIG (a dict, or the original's one-element list of a dict) override single
 * layers. Unknown layer names, a "w"/"a" for a layer without that quantizer, other keys and bad widths are errors
 * that name the offending key.
 */
export function resolveBitConfig(
  layers: readonly QuantLayerInfo[], w: number, a: number, bitConfig: BitConfig | BitConfig[number] = [], key = "QUANT.BIT_CONFIG",
): Map<string, LayerBits> {
  validateBits(w, "QUANT.W.BIT");
  validateBits(a, "QUANT.A.BIT");
  const out = new Map<string, LayerBits>();
  for (const l of layers) {
    const b: LayerBits = {};
    if (l.hasWeight) b.w = w;
    if (l.hasAct) b.a = a;
    out.set(l.name, b);
  }
  let overrides: unknown = bitConfig;
  let where = key;
  if (Array.isArray(bitConfig)) {
    if (bitConfig.length > 1) throw new Error(`${key}: expected at most one mapping of layer names (the original reads only [0]), got ${bitConfig.length}`);
    overrides = bitConfig[0] ?? {};
    where = `${key}[0]`;
  }
  if (overrides === null || typeof overrides !== "object" || Array.isArray(overrides))
    throw new Error(`${where}: expected a mapping of layer names to {"w": bits, "a": bits}`);
  const byName = new Map(layers.map((l) => [l.name, l]));
  for (const [name, v] of Object.entries(overrides as Record<string, unknown>)) {
    const k = `${where}["${name}"]`;
    const layer = byName.get(name);
    if (!layer) throw new Error(`${k}: no quantized layer named '${name}'; valid names: ${layers.map((l) => l.name).join(", ")}`);
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error(`${k}: expected {"w": bits, "a": bits}, got ${JSON.stringify(v)}`);
    const entry = out.get(name)!;
    for (const [field, bits] of Object.entries(v as Record<string, unknown>)) {
      if (field !== "w" && field !== "a") throw new Error(`${k}: unknown key '${field}'; allowed: w, a`);
      if (bits === null || bits === undefined) continue; // the original skips None
      if (field === "w" && !layer.hasWeight) throw new Error(`${k}.w: layer '${name}' has no weight quantizer`);
      if (field === "a" && !layer.hasAct) throw new Error(`${k}.a: layer '${name}' has no output quantizer`);
      entry[field] = validateBits(bits, `${k}.${field}`);
    }
  }
  return out;
}
