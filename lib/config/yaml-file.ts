import { CST, Document, LineCounter, Lexer, parseDocument } from "yaml";

export interface ParsedYaml {
  readonly doc: Document.Parsed;
  /** 1-based line of a source offset. */
  line(offset: number): number;
}

/**
 * Parses YAML as PyYAML (which yacs uses) reads it: YAML 1.1 scalars (`yes`/`on` are booleans, `1e-4` a number)
 * and its leniency about flow collections whose closing line is not indented past the parent key, as in the
 * original configs' `BIT_CONFIG: [{ ...\n    }]`. Errors name the file and line.
 */
export function parseYaml(text: string, file: string): ParsedYaml {
  const lineCounter = new LineCounter();
  const doc = parseDocument(indentFlowContinuations(text), { version: "1.1", lineCounter, prettyErrors: false });
  const line = (offset: number) => lineCounter.linePos(offset).line;
  const err = doc.errors[0];
  if (err) {
    const first = err.message.split("\n")[0];
    throw new Error(`${file}:${line(err.pos[0])}: invalid YAML: ${first}`);
  }
  return { doc, line };
}

/**
 * Indents the continuation lines of a flow collection that sit at or left of the line that opened it. In flow
 * context such indentation carries no meaning, so this only turns PyYAML-accepted input into valid YAML;
 * line numbers are unchanged.
 */
export function indentFlowContinuations(text: string): string {
  const pads: [offset: number, spaces: number][] = [];
  let depth = 0;
  let openerIndent = 0;
  let lineIndent = 0;
  let atLineStart = true;
  let offset = 0;
  for (const token of new Lexer().lex(text)) {
    // The lexer emits zero-width control markers (document start, scalar, flow error) that are not in the source.
    if (token === "\x02" || token === "\x18" || token === "\x1f") continue;
    const type = CST.tokenType(token);
    if (type === "newline") {
      atLineStart = true;
      offset += token.length;
      continue;
    }
    if (atLineStart) {
      atLineStart = false;
      lineIndent = type === "space" ? token.length : 0;
      if (depth > 0 && lineIndent <= openerIndent) pads.push([offset, openerIndent + 2 - lineIndent]);
    }
    if (type === "flow-map-start" || type === "flow-seq-start") {
      if (depth === 0) openerIndent = lineIndent;
      depth++;
    } else if (type === "flow-map-end" || type === "flow-seq-end") {
      depth = Math.max(0, depth - 1);
    }
    offset += token.length;
  }
  let out = text;
  for (const [at, n] of pads.reverse()) out = out.slice(0, at) + " ".repeat(n) + out.slice(at);
  return out;
}
