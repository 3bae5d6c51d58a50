import * as fs from "node:fs";
import * as path from "node:path";

/** Append-only JSON-lines metrics log (one object per line, with a timestamp). */
export class MetricsLog {
  private readonly fd: number;

  constructor(readonly file: string) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, "a");
  }

  write(record: Record<string, unknown>): void {
    fs.writeSync(this.fd, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
  }

  close(): void {
    fs.closeSync(this.fd);
  }
}

export function readMetrics(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
