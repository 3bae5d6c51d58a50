import { MAX_BITS } from "./schema";

/** One evaluation setting: weight and activation bits, 0 = not quantized. */
export interface BitSetting {
  readonly w: number;
  readonly a: number;
}

/**
 * Parses a bit setting as the original's run names write it: `4w4f` (4-bit weights, 4-bit features), `2w8f`,
 * or `fp` / `float` for full precision (0w0f).
 */
export function parseBitSetting(text: string): BitSetting {
  const t = text.trim().toLowerCase();
  if (t === "fp" || t === "float" || t === "fp32") return { w: 0, a: 0 };
  const m = /^(\d+)w(\d+)f$/.exec(t);
  if (!m) throw new Error(`bad bit setting '${text}': expected fp or <W>w<A>f such as 8w8f, 4w4f, 2w4f`);
  const w = Number(m[1]);
  const a = Number(m[2]);
  if (w > MAX_BITS || a > MAX_BITS) throw new Error(`bad bit setting '${text}': bits must be in 0..${MAX_BITS}`);
  return { w, a };
}

/** The inverse of parseBitSetting: `fp` for 0w0f, else `<W>w<A>f`. */
export function formatBitSetting(s: BitSetting): string {
  return s.w === 0 && s.a === 0 ? "fp" : `${s.w}w${s.a}f`;
}
