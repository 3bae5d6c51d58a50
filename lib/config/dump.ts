import { Document, isPair, isScalar, isSeq, visit, type Scalar } from "yaml";
import { configFiles } from "./meta";
import { SCHEMA, schemaAt, type Config, Leaf } from "./schema";

export interface DumpOptions {
  /** Add each key's documentation as a comment above it. */
  readonly docs?: boolean;
}

/**
 * The effective config as YAML (written beside checkpoints): every key, in the schema's order, so that
 * loadConfig on the text gives the same config back. Lists of scalars are written inline (`[32, 32]`).
 */
export function dumpConfig(cfg: Config, options: DumpOptions = {}): string {
  const doc = new Document(ordered(cfg as unknown as Record<string, unknown>, SCHEMA), { version: "1.1" });
  visit(doc, {
    Seq(_, node) {
      if (node.items.every((i) => isScalar(i))) node.flow = true;
    },
    Map(_, node) {
      // BIT_CONFIG's per-layer {w, a} entries read best inline, as the original files write them.
      if (node.items.every((p) => isScalar(p.value)) && node.items.length <= 2 && isBitEntry(node)) node.flow = true;
    },
    Pair(_, pair, path) {
      if (!isScalar(pair.key)) return;
      const outer = path.filter(isPair).map((p) => String((p.key as Scalar).value));
      const leaf = schemaAt([...outer, String(pair.key.value)].join("."));
      if (!(leaf instanceof Leaf)) return;
      if (options.docs) pair.key.commentBefore = ` ${leaf.doc}`;
      // Floats keep a decimal point, so that yacs (which refuses an int for a float key) can read the file too.
      if (leaf.kind === "float" || leaf.kind === "floats") {
        const scalars = isSeq(pair.value) ? pair.value.items : [pair.value];
        for (const s of scalars) if (isScalar(s) && typeof s.value === "number") s.minFractionDigits = 1;
      }
    },
  });
  const files = configFiles(cfg);
  const header = files.length ? `# Effective config, merged from: ${files.join(" <- ")}\n` : "";
  return header + doc.toString({ lineWidth: 0, flowCollectionPadding: false });
}

function isBitEntry(node: { items: { key: unknown }[] }): boolean {
  return node.items.every((p) => isScalar(p.key) && (p.key.value === "w" || p.key.value === "a"));
}

/** The config as a plain object with keys in the schema's order (the frozen object keeps it too; be explicit). */
function ordered(values: Record<string, unknown>, section: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, node] of Object.entries(section)) {
    const v = values[k];
    out[k] = node instanceof Leaf ? structuredClone(v) : ordered(v as Record<string, unknown>, node as object);
  }
  return out;
}
