import * as fs from "node:fs";
import * as path from "node:path";
import { isAlias, isMap, isScalar, parse as parseYamlValue, type Node, type YAMLMap } from "yaml";
import { coerceValue, describe } from "./coerce";
import { ConfigError, didYouMean } from "./errors";
import { getMeta, setMeta } from "./meta";
import { Leaf, SCHEMA, leafEntries, schemaAt, sectionKeys, defaultValues, type Config, type Section } from "./schema";
import { validateConfig } from "./validate";
import { parseYaml, type ParsedYaml } from "./yaml-file";

/** One `KEY VALUE` setting from outside the yaml. A string value is read as YAML (then as a Python literal). */
export interface ConfigOverride {
  readonly key: string;
  readonly value: unknown;
  /** Named in errors and by originOf: "--opts" unless given (e.g. "--output"). */
  readonly source?: string;
}

export interface LoadOptions {
  /**
   * Settings applied to the defaults BEFORE the yaml, so the yaml wins over them: the original's handling of
   * CLI flags left at their defaults (-j 4, -p 50, --output ./train_log).
   */
  readonly defaults?: readonly ConfigOverride[];
}

/** Deep partial of Config, for buildConfig. */
export type ConfigPatch<T = Config> = {
  readonly [K in keyof T]?: T[K] extends readonly unknown[] | null ? T[K] : T[K] extends object ? ConfigPatch<T[K]> : T[K];
};

type Values = Record<string, unknown>;

const ALL_KEYS = [...leafEntries().map(([k]) => k), ...sectionKeys()];

/**
 * Loads a yacs-style config: the defaults, then the BASE_CONFIG chain (each path relative to the file that names
 * it; deepest base merged first), then the file, then `overrides`, which WIN over the yaml. (In the original the
 * yaml beats the command line; here an explicit flag or `--opts KEY VALUE` is what the user asked for last.)
 * The result is deeply frozen and checked by validateConfig. Its BASE_CONFIG is "" because the chain is already
 * merged; configFiles(cfg) lists the files.
 */
export function loadConfig(file: string, overrides: readonly ConfigOverride[] = [], options: LoadOptions = {}): Config {
  const b = new ConfigBuilder();
  for (const o of options.defaults ?? []) b.override(o, "default");
  const chain = readChain(file, undefined, []);
  for (const f of chain) b.mergeFile(f);
  for (const o of overrides) b.override(o, "--opts");
  return b.finish(chain.map((f) => f.file));
}

/** A config from the defaults plus a nested patch, e.g. for tests: buildConfig({ TRAIN: { EPOCHS: 2 } }). */
export function buildConfig(patch: ConfigPatch = {}, source = "code"): Config {
  const b = new ConfigBuilder();
  b.mergeObject(patch as Values, SCHEMA, "", source);
  return b.finish([]);
}

/** A new frozen config: `cfg` with `overrides` applied (e.g. one bit setting of a sweep). */
export function withOverrides(cfg: Config, overrides: readonly ConfigOverride[]): Config {
  const meta = getMeta(cfg);
  const b = new ConfigBuilder(structuredClone(cfg) as Values, new Map(meta.origins));
  for (const o of overrides) b.override(o, "code");
  return b.finish(meta.files);
}

interface LoadedFile {
  readonly file: string;
  readonly yaml: ParsedYaml;
  readonly root: YAMLMap | undefined;
}

function displayPath(abs: string): string {
  const rel = path.relative(process.cwd(), abs);
  return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : abs;
}

function readChain(file: string, includedFrom: string | undefined, seen: readonly string[]): LoadedFile[] {
  const abs = path.resolve(file);
  const shown = displayPath(abs);
  if (seen.includes(abs)) {
    const cycle = [...seen, abs].map(displayPath).join(" -> ");
    throw new ConfigError(`${includedFrom}: BASE_CONFIG: cycle: ${cycle}`, includedFrom, "BASE_CONFIG");
  }
  let text: string;
  try {
    text = fs.readFileSync(abs, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "ENOENT" ? "file not found" : (e as Error).message;
    const msg = includedFrom
      ? `${includedFrom}: BASE_CONFIG: ${why}: ${shown} (expected a path to a yaml file, relative to the including file)`
      : `config file ${shown}: ${why}`;
    throw new ConfigError(msg, includedFrom ?? shown, includedFrom ? "BASE_CONFIG" : undefined);
  }
  let yaml: ParsedYaml;
  try {
    yaml = parseYaml(text, shown);
  } catch (e) {
    throw new ConfigError((e as Error).message, shown);
  }
  const contents = yaml.doc.contents;
  if (contents !== null && !isMap(contents) && !(isScalar(contents) && contents.value === null)) {
    throw new ConfigError(`${shown}: expected a mapping of config keys at the top level`, shown);
  }
  const root = isMap(contents) ? contents : undefined;
  const me: LoadedFile = { file: shown, yaml, root };
  const basePair = root?.items.find((p) => isScalar(p.key) && p.key.value === "BASE_CONFIG");
  if (!basePair) return [me];
  const where = `${shown}:${yaml.line((basePair.key as Node).range?.[0] ?? 0)}`;
  const raw = basePair.value === null ? null : (basePair.value as Node).toJS(yaml.doc);
  const base = coerceAt(SCHEMA.BASE_CONFIG, raw, where, "BASE_CONFIG") as string;
  if (base === "") return [me];
  return [...readChain(path.resolve(path.dirname(abs), base), where, [...seen, abs]), me];
}

function coerceAt(leaf: Leaf<unknown>, raw: unknown, where: string, key: string): unknown {
  try {
    return coerceValue(leaf, raw);
  } catch (e) {
    throw new ConfigError(`${where}: ${key}: ${(e as Error).message}`, where, key);
  }
}

class ConfigBuilder {
  constructor(
    readonly values: Values = defaultValues(),
    readonly origins = new Map<string, string>(),
  ) {}

  mergeFile(f: LoadedFile): void {
    if (f.root) this.mergeMap(f, f.root, SCHEMA, this.values, "");
  }

  private mergeMap(f: LoadedFile, node: YAMLMap, section: Section, target: Values, prefix: string): void {
    for (const pair of node.items) {
      const keyNode = pair.key as Node | null;
      const where = `${f.file}:${f.yaml.line(keyNode?.range?.[0] ?? 0)}`;
      if (!isScalar(keyNode) || typeof keyNode.value !== "string") {
        throw new ConfigError(`${where}: config keys must be plain names, got ${describe(keyNode?.toJS(f.yaml.doc))}`, where);
      }
      const name = keyNode.value;
      const key = prefix ? `${prefix}.${name}` : name;
      const schemaNode = own(section, name);
      if (!schemaNode) throw new ConfigError(`${where}: unknown key ${key}${didYouMean(key, ALL_KEYS)}`, where, key);
      if (key === "BASE_CONFIG") continue; // followed by readChain
      let valueNode = pair.value as Node | null;
      if (isAlias(valueNode)) valueNode = valueNode.resolve(f.yaml.doc) ?? null;
      const raw = valueNode === null ? null : valueNode.toJS(f.yaml.doc);
      if (schemaNode instanceof Leaf) {
        target[name] = coerceAt(schemaNode, raw, where, key);
        this.origins.set(key, where);
      } else if (isMap(valueNode)) {
        this.mergeMap(f, valueNode, schemaNode, target[name] as Values, key);
      } else if (raw !== null) {
        throw new ConfigError(`${where}: ${key} is a section: expected a mapping of its keys, got ${describe(raw)}`, where, key);
      }
    }
  }

  /** Merges a plain nested object (buildConfig, section-valued overrides). */
  mergeObject(obj: Values, section: Section, prefix: string, source: string): void {
    let target = this.values;
    for (const part of prefix ? prefix.split(".") : []) target = target[part] as Values;
    for (const [name, raw] of Object.entries(obj)) {
      const key = prefix ? `${prefix}.${name}` : name;
      const node = own(section, name);
      if (!node) throw new ConfigError(`${source}: unknown key ${key}${didYouMean(key, ALL_KEYS)}`, source, key);
      if (node instanceof Leaf) {
        target[name] = coerceAt(node, raw, source, key);
        this.origins.set(key, source);
      } else if (typeof raw === "object" && raw !== null && !Array.isArray(raw)) {
        this.mergeObject(raw as Values, node, key, source);
      } else {
        throw new ConfigError(`${source}: ${key} is a section: expected a mapping of its keys, got ${describe(raw)}`, source, key);
      }
    }
  }

  override(o: ConfigOverride, defaultSource: string): void {
    const source = o.source ?? defaultSource;
    const node = schemaAt(o.key);
    if (!node) throw new ConfigError(`${source}: unknown key ${o.key}${didYouMean(o.key, ALL_KEYS)}`, source, o.key);
    if (o.key === "BASE_CONFIG") {
      throw new ConfigError(`${source}: BASE_CONFIG can only be set in a config file`, source, o.key);
    }
    const value = typeof o.value === "string" ? decodeCliValue(o.value, node) : o.value;
    const parts = o.key.split(".");
    const name = parts.pop()!;
    const prefix = parts.join(".");
    const section = (prefix ? schemaAt(prefix) : SCHEMA) as Section;
    this.mergeObject({ [name]: value }, section, prefix, source);
  }

  finish(files: readonly string[]): Config {
    this.values.BASE_CONFIG = "";
    const cfg = deepFreeze(this.values) as unknown as Config;
    setMeta(cfg, { files, origins: this.origins });
    validateConfig(cfg);
    return cfg;
  }
}

function own(section: Section, name: string): Leaf<unknown> | Section | undefined {
  return Object.prototype.hasOwnProperty.call(section, name) ? section[name] : undefined;
}

/** A command-line value: YAML syntax (numbers, [lists], {maps}, null), except that text stays text for strings. */
function decodeCliValue(text: string, node: Leaf<unknown> | Section): unknown {
  let parsed: unknown;
  try {
    parsed = parseYamlValue(text, { version: "1.1" });
  } catch {
    return text;
  }
  if (node instanceof Leaf && (node.kind === "str" || node.kind === "choice")) {
    return typeof parsed === "string" || (parsed === null && node.nullable && text.trim() !== "") ? parsed : text;
  }
  return parsed === null && !/^(null|~|none)$/i.test(text.trim()) ? text : parsed;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
}
