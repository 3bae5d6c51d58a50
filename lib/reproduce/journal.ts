import * as fs from "node:fs";
import * as path from "node:path";

/**
 * `<out>/journal.jsonl`: when each call of the reproduction started and how long each command took, so a run
 * finished by `--resume` (or a page rewritten from finished runs) still reports the first call's start and every
 * command's own time.
 */
export interface Journal {
  /** The first call's start and load average. */
  started: Date;
  loadStart: number[];
  calls: number;
  /** Seconds per command, by output folder (the last record wins). */
  seconds: Map<string, number>;
  /** When the last command recorded ended (null before any, or in a journal without end times). */
  lastEnd: Date | null;
}

const file = (out: string) => path.join(out, "journal.jsonl");

const append = (out: string, record: object) => fs.appendFileSync(file(out), JSON.stringify(record) + "\n");

/** Reads the journal (null when there is none), then records this call's start. */
export function openJournal(out: string, now: Date, load: number[]): Journal {
  let journal: Journal = { started: now, loadStart: load, calls: 0, seconds: new Map(), lastEnd: null };
  if (fs.existsSync(file(out))) {
    const lines = fs.readFileSync(file(out), "utf-8").split("\n").filter((l) => l.trim());
    lines.forEach((l, i) => {
      let r: { kind?: string; time?: string; load?: number[]; output?: string; seconds?: number; end?: string };
      try {
        r = JSON.parse(l);
      } catch {
        throw new Error(`${file(out)}: line ${i + 1} is not JSON; delete the file to start the timing afresh`);
      }
      if (r.kind === "start" && typeof r.time === "string") {
        if (journal.calls === 0) journal = { ...journal, started: new Date(r.time), loadStart: r.load ?? load };
        journal.calls++;
      } else if (r.kind === "job" && typeof r.output === "string" && typeof r.seconds === "number") {
        journal.seconds.set(r.output, r.seconds);
        journal.lastEnd = typeof r.end === "string" ? new Date(r.end) : null;
      }
    });
  }
  append(out, { kind: "start", time: now.toISOString(), load });
  journal.calls++;
  return journal;
}

export function recordJob(out: string, journal: Journal, output: string, seconds: number, end = new Date()): void {
  journal.seconds.set(output, seconds);
  journal.lastEnd = end;
  append(out, { kind: "job", output, seconds, end: end.toISOString() });
}

/** From the first call's start to the end of the last command (to now when the journal has no end times). */
export const wallSeconds = (journal: Journal, now = new Date()): number => ((journal.lastEnd ?? now).getTime() - journal.started.getTime()) / 1000;
