import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { openJournal, recordJob, wallSeconds } from "../../lib/reproduce/journal";
import { knnCost } from "../../lib/reproduce/probe";

describe("reproduce journal", () => {
  it("keeps the first call's start and every command's seconds across --resume calls", () => {
    const out = mkdtempSync(path.join(tmpdir(), "ssql-journal-"));
    const t0 = new Date("2026-12-07T10:00:00Z");
    const first = openJournal(out, t0, [1, 2, 3]);
    expect(first.calls).toBe(1);
    recordJob(out, first, "runs/a", 12.5, new Date("2026-12-07T10:00:12.5Z"));
    recordJob(out, first, "runs/b", 3, new Date("2026-12-07T10:00:15.5Z"));
    const again = openJournal(out, new Date("2026-12-07T11:00:00Z"), [4, 5, 6]);
    expect(again.started.toISOString()).toBe(t0.toISOString());
    expect(again.loadStart).toEqual([1, 2, 3]);
    expect(again.calls).toBe(2);
    expect([...again.seconds]).toEqual([["runs/a", 12.5], ["runs/b", 3]]);
    // A call that only rewrites the page does not stretch the wall time to itself.
    expect(wallSeconds(again, new Date("2026-12-07T11:00:00Z"))).toBe(15.5);
    recordJob(out, again, "runs/b", 4);
    expect(openJournal(out, new Date(), [0, 0, 0]).seconds.get("runs/b")).toBe(4);
  });

  it("names a damaged journal", () => {
    const out = mkdtempSync(path.join(tmpdir(), "ssql-journal-"));
    writeFileSync(path.join(out, "journal.jsonl"), '{"kind":"start","time":"2026-12-07T10:00:00Z"}\n{"kind":"jo\n');
    expect(() => openJournal(out, new Date(), [0, 0, 0])).toThrow(/journal\.jsonl: line 2 is not JSON/);
  });
});

describe("reproduce probe: kNN monitor cost", () => {
  it("is the monitor's seconds over the images it embedded, per setting", () => {
    const dir = mkdtempSync(path.join(tmpdir(), "ssql-probe-"));
    const file = path.join(dir, "metrics.jsonl");
    const knn = (epoch: number, bits: string, seconds: number) => JSON.stringify({ kind: "knn", epoch, bits, top1: 10, bank: 192, queries: 384, seconds });
    writeFileSync(file, [JSON.stringify({ kind: "step", epoch: 0, time: "2026-12-07T10:00:00Z" }), knn(0, "fp", 5.76), knn(0, "4w4f", 11.52)].join("\n") + "\n");
    const c = knnCost(file)!;
    expect(c.perImage).toBeCloseTo((5.76 + 11.52) / (2 * 576), 12);
    expect(c.settings).toBe(2);
    expect(c.queries).toBe(384);
    writeFileSync(file, JSON.stringify({ kind: "step", epoch: 0, time: "2026-12-07T10:00:00Z" }) + "\n");
    expect(knnCost(file)).toBeNull();
  });
});
