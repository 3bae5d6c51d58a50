import { spawnWorkers, type LaunchOptions } from "../distributed/launch";

export const launchUsage = `usage: node lib/main.js launch [--nproc-per-node N] [--nnodes N --node-rank K --master-addr A] [--master-port P] <command> [options]

Runs N copies of 'node lib/main.js <command> [options]' on this node with RANK, LOCAL_RANK, WORLD_SIZE,
LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (as torchrun does). If one rank fails, the others are stopped
and its last error lines are printed. Options may also be spelled with underscores (--nproc_per_node).`;

const flags: Record<string, keyof LaunchOptions | "nproc"> = {
  "nproc-per-node": "nproc",
  nnodes: "nnodes",
  "node-rank": "nodeRank",
  "master-addr": "masterAddr",
  "master-port": "masterPort",
};

/** Splits `launch` flags from the command line that follows them. */
export function parseLaunchArgs(argv: readonly string[]): { nproc: number; opts: LaunchOptions; rest: string[] } {
  const opts: LaunchOptions = {};
  let nproc = 1;
  let i = 0;
  for (; i < argv.length && argv[i].startsWith("--"); i++) {
    const [raw, inline] = argv[i].slice(2).split(/=(.*)/s, 2);
    const name = raw.replace(/_/g, "-");
    const key = flags[name];
    if (!key) throw new Error(`launch: unknown option --${raw}\n\n${launchUsage}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Error(`launch: --${raw} needs a value`);
    if (key === "masterAddr") {
      opts.masterAddr = value;
      continue;
    }
    const n = Number(value);
    if (!Number.isInteger(n)) throw new Error(`launch: --${raw} must be an integer, got '${value}'`);
    if (key === "nproc") nproc = n;
    else (opts as Record<string, number>)[key] = n;
  }
  const rest = argv.slice(i);
  if (!rest.length) throw new Error(`launch: which command should the workers run?\n\n${launchUsage}`);
  return { nproc, opts, rest };
}

/** `ssql launch`: the torchrun of this trainer. */
export async function launch(argv: string[]): Promise<number> {
  if (argv[0] === "--help" || argv[0] === "-h") {
    console.log(launchUsage);
    return 0;
  }
  const { nproc, opts, rest } = parseLaunchArgs(argv);
  return (await spawnWorkers(nproc, rest, opts)).exitCode;
}
