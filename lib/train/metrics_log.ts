import * as fs from "node:fs";
import * as path from "node:path";

/** Another destination of the metrics records (TensorBoard event files). */
export interface MetricsSink {
  write(record: Record<string, unknown>): void;
  close(): void;
}

/** Append-only JSON-lines metrics log (one object per line, with a timestamp), each record also given to `sinks`. */
export class MetricsLog {
  private readonly fd: number;

  constructor(readonly file: string, private readonly sinks: readonly MetricsSink[] = []) {
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, "a");
  }

  write(record: Record<string, unknown>): void {
    fs.writeSync(this.fd, `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`);
    for (const s of this.sinks) s.write(record);
  }

  close(): void {
    fs.closeSync(this.fd);
    for (const s of this.sinks) s.close();
  }
}

export function readMetrics(file: string): Record<string, unknown>[] {
  return fs
    .readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
