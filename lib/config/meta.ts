import type { Config } from "./schema";

/** Where a loaded config came from: its files (deepest base first) and, per dotted key, who set it last. */
export interface ConfigMeta {
  readonly files: readonly string[];
  readonly origins: ReadonlyMap<string, string>;
}

const metas = new WeakMap<object, ConfigMeta>();

export function setMeta(cfg: Config, meta: ConfigMeta): void {
  metas.set(cfg, meta);
}

export function getMeta(cfg: Config): ConfigMeta {
  return metas.get(cfg) ?? { files: [], origins: new Map() };
}

/** The config files merged into `cfg`, deepest BASE_CONFIG first, the file given last. */
export function configFiles(cfg: Config): readonly string[] {
  return getMeta(cfg).files;
}

/** Who set a key last: "file.yaml:LINE", "--opts", a CLI flag such as "--output", "code", or "default". */
export function originOf(cfg: Config, key: string): string {
  return getMeta(cfg).origins.get(key) ?? "default";
}
