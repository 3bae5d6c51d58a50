import { existsSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import type { RunResults } from "../../lib/train/results";

// docs/results.md quotes a reproduction run; its run data (results.json, plan.json, logs) is copied under
// docs/results-data with the run folder's relative paths. Every table cell must recompute from those files.
const docs = path.resolve(__dirname, "..", "..", "docs");
const page = readFileSync(path.join(docs, "results.md"), "utf-8");
const runDir = /Produced by `node lib\/main\.js reproduce [^`]*?--output (\S+)/.exec(page)![1];

function results(ref: string): RunResults {
  const rel = ref.replace(/^`|`$/g, "").slice(runDir.length + 1);
  return JSON.parse(readFileSync(path.join(docs, "results-data", rel), "utf-8")) as RunResults;
}

function tableAfter(heading: string): string[][] {
  const lines = page.slice(page.indexOf(heading)).split("\n");
  const start = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (let i = start; i < lines.length && lines[i].startsWith("|"); i++) rows.push(lines[i].split("|").slice(1, -1).map((c) => c.trim()));
  return rows.slice(2);
}

const top1 = (r: RunResults, bits: string) => r.settings.find((s) => s.bits === bits)!.top1;
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: number[]) => Math.sqrt(xs.reduce((a, b) => a + (b - mean(xs)) ** 2, 0) / (xs.length - 1));

describe("docs/results.md", () => {
  const sources = page.slice(page.indexOf("Where each number comes from")).split("\n").filter((l) => l.startsWith("- "));
  const refs = (line: string) => line.match(/`[^`]+results\.json`/g) ?? [];

  it("names a results.json for every column, each copied under docs/results-data", () => {
    expect(sources).toHaveLength(4);
    for (const line of sources) for (const r of refs(line)) expect(existsSync(path.join(docs, "results-data", r.replace(/`/g, "").slice(runDir.length + 1))), r).toBe(true);
  });

  it("its main table is the mean ± sd of the named runs", () => {
    const [ssql, simsiam] = sources.slice(0, 2).map((l) => refs(l).map(results));
    const rows = tableAfter("Main comparison");
    expect(rows.length).toBeGreaterThan(0);
    for (const [bits, a, b, gap] of rows) {
      const va = ssql.map((r) => top1(r, bits));
      const vb = simsiam.map((r) => top1(r, bits));
      expect(a).toBe(`${mean(va).toFixed(2)} ± ${sd(va).toFixed(2)}`);
      expect(b).toBe(`${mean(vb).toFixed(2)} ± ${sd(vb).toFixed(2)}`);
      expect(gap).toBe((mean(va) - mean(vb)).toFixed(2));
    }
  });

  it("its repeated-pretraining table is the named runs' top-1", () => {
    const [ssql, simsiam] = sources.slice(2, 4).map((l) => refs(l).map(results));
    const rows = tableAfter("Two pretraining seeds");
    expect(rows.length).toBeGreaterThan(0);
    for (const [bits, ...cells] of rows) {
      const v = [...ssql, ...simsiam].map((r) => top1(r, bits));
      expect(cells).toEqual([...v, ...ssql.map((r, i) => top1(r, bits) - top1(simsiam[i], bits))].map((x) => x.toFixed(2)));
    }
  });

  it("its kNN table is the kNN records of the named pretraining logs", () => {
    const section = page.slice(page.indexOf("During pretraining: kNN monitor"));
    const logs = (section.slice(0, section.indexOf("|")).match(/`[^`]+metrics\.jsonl`/g) ?? []).map((r) =>
      readFileSync(path.join(docs, "results-data", r.replace(/`/g, "").slice(runDir.length + 1)), "utf-8")
        .split("\n")
        .filter((l) => l.includes('"kind":"knn"'))
        .map((l) => JSON.parse(l) as { epoch: number; bits: string; top1: number }),
    );
    expect(logs).toHaveLength(2);
    const lines = section.split("\n").filter((l) => l.startsWith("|"));
    const head = lines[0].split("|").slice(2, -1).map((c) => c.trim());
    const rows = lines.slice(2).map((l) => l.split("|").slice(1, -1).map((c) => c.trim()));
    expect(rows.length).toBeGreaterThan(0);
    // Columns: the first method's settings, then the second's, in the order of the logs named.
    const perLog = head.length / 2;
    for (const [epoch, ...cells] of rows)
      cells.forEach((cell, i) => {
        const bits = /^\S+ (\S+) kNN top-1/.exec(head[i])![1];
        const rec = logs[Math.floor(i / perLog)].filter((r) => r.epoch === Number(epoch) && r.bits === bits).pop();
        expect(cell, `epoch ${epoch}, ${head[i]}`).toBe(rec ? rec.top1.toFixed(2) : "");
      });
  });
});
