import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as path from "node:path";
import { createInterface } from "node:readline";
import { pythonPath } from "../helpers/fixtures";

export const python = pythonPath();

/** A real torch.distributed.TCPStore server, with a torch client we can drive line by line. */
export class TorchStore {
  private lines: AsyncIterator<string>;
  private constructor(private readonly proc: ChildProcessWithoutNullStreams, readonly port: number, readonly torch: string, lines: AsyncIterator<string>) {
    this.lines = lines;
  }

  static async start(classic: boolean): Promise<TorchStore> {
    const proc = spawn(python!, [path.join(__dirname, "python", "tcpstore.py"), "serve", ...(classic ? ["--classic"] : [])], { stdio: "pipe" });
    let stderr = "";
    proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const lines = createInterface({ input: proc.stdout })[Symbol.asyncIterator]();
    const first = await Promise.race([lines.next(), new Promise<never>((_, r) => setTimeout(() => r(new Error(`tcpstore.py did not start: ${stderr}`)), 30_000))]);
    const { port, torch } = JSON.parse(first.value as string) as { port: number; torch: string };
    return new TorchStore(proc, port, torch, lines);
  }

  /** Runs one command on the torch client and returns its answer. */
  async ask(command: string): Promise<unknown> {
    this.proc.stdin.write(`${command}\n`);
    const r = await this.lines.next();
    return JSON.parse(r.value as string);
  }

  stop(): void {
    this.proc.stdin.end();
    this.proc.kill();
  }
}

