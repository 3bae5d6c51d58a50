/**
 * yacs passes every string value through Python's `literal_eval`, so `SCALE: (0.08, 1.0)` (a YAML string) becomes a
 * tuple. This reads the same literals: numbers, True/False/None, quoted strings, and tuples/lists of those.
 * Anything else is not a literal (undefined), and the caller keeps the string.
 */
export type Literal = number | boolean | null | string | Literal[];

export function parsePythonLiteral(text: string): { value: Literal } | undefined {
  const p = new LiteralParser(text);
  try {
    const value = p.value();
    p.skipSpace();
    return p.done() ? { value } : undefined;
  } catch {
    return undefined;
  }
}

const NUMBER = /^[-+]?(?:\d[\d_]*\.?[\d_]*(?:[eE][-+]?\d+)?|\.\d[\d_]*(?:[eE][-+]?\d+)?)/;

class LiteralParser {
  private i = 0;
  constructor(private readonly s: string) {}

  done(): boolean {
    return this.i === this.s.length;
  }

  skipSpace(): void {
    while (this.i < this.s.length && /\s/.test(this.s[this.i]!)) this.i++;
  }

  value(): Literal {
    this.skipSpace();
    const c = this.s[this.i];
    if (c === "(") return this.sequence(")");
    if (c === "[") return this.sequence("]");
    if (c === "'" || c === '"') return this.quoted(c);
    const rest = this.s.slice(this.i);
    for (const [word, v] of [["True", true], ["False", false], ["None", null]] as const) {
      if (rest.startsWith(word) && !/\w/.test(rest[word.length] ?? "")) {
        this.i += word.length;
        return v;
      }
    }
    const m = NUMBER.exec(rest);
    if (!m || /\w|\./.test(rest[m[0].length] ?? "")) throw new Error("not a literal");
    this.i += m[0].length;
    return Number(m[0].replace(/_/g, ""));
  }

  private sequence(close: string): Literal[] {
    this.i++;
    const items: Literal[] = [];
    for (;;) {
      this.skipSpace();
      if (this.s[this.i] === close) {
        this.i++;
        return items;
      }
      items.push(this.value());
      this.skipSpace();
      if (this.s[this.i] === ",") this.i++;
      else if (this.s[this.i] !== close) throw new Error("expected , or close");
    }
  }

  private quoted(q: string): string {
    let out = "";
    for (this.i++; this.i < this.s.length; this.i++) {
      const c = this.s[this.i]!;
      if (c === q) {
        this.i++;
        return out;
      }
      if (c === "\\" && this.i + 1 < this.s.length) out += this.s[++this.i];
      else out += c;
    }
    throw new Error("unterminated string");
  }
}
