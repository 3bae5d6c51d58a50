/**
 * The package's library entry (`require("ssql-trainer")`); the command line is the `ssql` bin (lib/main.js).
 * Loading this file loads no native addon: the training entry points load it when they run.
 */
export { buildConfig, loadConfig, validateFor, type Config } from "./config";
export { runLinear, type LinearRunOptions, type LinearRunResult } from "./train/linear";
export { runPtq, type PtqRunOptions } from "./train/ptq";
export { runSsl, type SslRunOptions, type SslRunResult } from "./train/ssl";
