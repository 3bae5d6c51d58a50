import { loadConfig, validateFor, type Config } from "../config";
import type { CommandName } from "../config/validate";
import { spawnWorkers } from "../distributed/launch";
import type { Device } from "../tensor/binding";
import { nprocOption, parseCommandArgs, type ExtraOption } from "./args";
import { resolveDevice } from "./resolve_device";

/** What a run command (ssl, linear, ptq) starts from once its arguments and config are checked. */
export interface CommandRun {
  cfg: Config;
  device: Device;
  /** OUTPUT from the config, else --output. */
  output: string;
  workers: number;
  printFreq: number;
  resume: string | boolean;
}

/**
 * The shared front of the run commands: parses the arguments (--help prints the usage), re-runs the command on
 * N local workers for `--nproc-per-node N` (the one re-exec path: each worker runs the same command line without
 * the flag, with the launcher's environment), else loads and validates the config, resolves the device and calls
 * `run`. Returns the exit code.
 */
export async function runCommand(
  name: CommandName,
  argv: string[],
  extras: readonly ExtraOption[],
  summary: string,
  run: (r: CommandRun) => Promise<number>,
): Promise<number> {
  const parsed = parseCommandArgs(name, argv, [...extras, nprocOption], summary);
  if ("help" in parsed) {
    console.log(parsed.help);
    return 0;
  }
  const nproc = Number(parsed.options.extra["nproc-per-node"] ?? 1);
  if (nproc > 1 && !process.env.WORLD_SIZE) return (await spawnWorkers(nproc, [name, ...stripOption(argv, "--nproc-per-node")])).exitCode;
  const cfg = loadConfig(parsed.options.config, parsed.configOverrides, { defaults: parsed.configDefaults });
  validateFor(name, cfg);
  const device = resolveDevice(parsed.options.device ?? cfg.DEVICE);
  return run({
    cfg,
    device,
    output: cfg.OUTPUT || parsed.options.output,
    workers: parsed.options.workers,
    printFreq: cfg.TRAIN.PRINT_FREQ,
    resume: parsed.options.resume,
  });
}

/** argv without `name VALUE` / `name=VALUE`. */
export function stripOption(argv: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === name) {
      i++;
      continue;
    }
    if (argv[i].startsWith(`${name}=`)) continue;
    out.push(argv[i]);
  }
  return out;
}
