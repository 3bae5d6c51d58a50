import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const MAIN = path.resolve(__dirname, "..", "main.js");

/** A `node lib/main.js ...` command as a reader would type it from the repository root. */
export function commandLine(args: readonly string[]): string {
  const q = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ["node", "lib/main.js", ...args].map(q).join(" ");
}

/**
 * Runs `node lib/main.js <args>` as a child process (it inherits this process's niceness), its output into `log`.
 * Returns the seconds it took; throws with the log's last lines when it fails.
 */
export async function runChild(args: readonly string[], log: string): Promise<number> {
  fs.mkdirSync(path.dirname(log), { recursive: true });
  const fd = fs.openSync(log, "w");
  const t0 = Date.now();
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", fd, fd] });
      child.on("error", reject);
      child.on("exit", (c, signal) => resolve(signal ? null : c));
    });
    if (code !== 0) {
      const tail = fs.readFileSync(log, "utf-8").split("\n").slice(-15).join("\n");
      throw new Error(`'${commandLine(args)}' failed (exit ${code ?? "by signal"}); its log ${log} ends:\n${tail}`);
    }
  } finally {
    fs.closeSync(fd);
  }
  return (Date.now() - t0) / 1000;
}

/** `node lib/main.js <args>`'s standard output (for `info`). */
export async function childOutput(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString("utf-8")));
    child.on("error", reject);
    child.on("exit", (c) => (c === 0 ? resolve(out) : reject(new Error(`'${commandLine(args)}' failed (exit ${c})`))));
  });
}
