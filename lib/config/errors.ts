/** A bad config: the message names where (file:line, --opts, ...), the dotted key, and what was expected. */
export class ConfigError extends Error {
  constructor(
    message: string,
    /** Where the offending value came from: a file path (with :line), "--opts", a CLI flag, or "code". */
    readonly source?: string,
    /** The full dotted key, e.g. TRAIN.BATCH_SIZE. */
    readonly key?: string,
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

export function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/**
 * The candidate nearest to `word`, if near enough to be a typo: case-insensitive edit distance within about a
 * third of the length, or the same last component in another section (`TRAIN.ARCH` -> `MODEL.ARCH`).
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toUpperCase();
  let best: string | undefined;
  let bestD = Infinity;
  for (const c of candidates) {
    const d = levenshtein(w, c.toUpperCase());
    if (d < bestD) [best, bestD] = [c, d];
  }
  if (best !== undefined && bestD <= Math.max(2, Math.floor(w.length / 3))) return best;
  const last = w.split(".").pop()!;
  const sameLeaf = candidates.filter((c) => c.toUpperCase().split(".").pop() === last);
  return sameLeaf.length === 1 ? sameLeaf[0] : undefined;
}

export function didYouMean(word: string, candidates: readonly string[]): string {
  const s = nearest(word, candidates);
  return s === undefined ? "" : ` (did you mean ${s}?)`;
}
