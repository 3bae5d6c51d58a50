export { bitSettingProblem } from "./bit_setting_check";
export { dumpConfig, type DumpOptions } from "./dump";
export { ConfigError } from "./errors";
export { buildConfig, loadConfig, withOverrides, type ConfigOverride, type ConfigPatch, type LoadOptions } from "./load";
export { configFiles, originOf } from "./meta";
export { ARCH_NAMES, SCHEMA, SSL_TYPES, leafEntries, type BitConfig, type Config, type SslType } from "./schema";
export { validateConfig, validateFor, type CommandName } from "./validate";
