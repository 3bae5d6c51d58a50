export { formatBitSetting, parseBitSetting, type BitSetting } from "./bits";
export { dumpConfig, type DumpOptions } from "./dump";
export { ConfigError } from "./errors";
export { buildConfig, loadConfig, withOverrides, type ConfigOverride, type ConfigPatch, type LoadOptions } from "./load";
export { configFiles, originOf } from "./meta";
export {
  ARCHS,
  DATASETS,
  GRANULARITIES,
  MAX_BITS,
  OBSERVERS,
  SCHEMA,
  SSL_TYPES,
  leafEntries,
  type Arch,
  type BitConfig,
  type Config,
  type DatasetName,
  type Granularity,
  type LayerBits,
  type ObserverName,
  type SslType,
} from "./schema";
export { validateConfig, validateFor, type CommandName } from "./validate";
