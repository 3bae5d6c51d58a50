import { BitSettingError, parseBitSetting } from "../quant/bits";

/** Why `text` is not a bit setting (lib/quant's parseBitSetting), in the config's words; undefined when it is one. */
export function bitSettingProblem(text: string): string | undefined {
  try {
    parseBitSetting(text);
    return undefined;
  } catch (e) {
    if (e instanceof BitSettingError) return `bad bit setting '${e.setting}': ${e.reason}`;
    throw e;
  }
}
