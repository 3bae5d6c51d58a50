import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunResults } from "../../lib/train/results";

const haveFmnist = existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
if (!haveFmnist) console.log("reproduce test skipped: Fashion-MNIST is not at /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)");

const root = path.resolve(__dirname, "..", "..");
const BITS = ["fp", "2w4f"];
const SEED = 100;
const CSEEDS = [SEED, SEED + 1];
const METHODS = [
  { method: "SSQL_SimSiam", name: "ssql_simsiam" },
  { method: "SimSiam", name: "simsiam" },
];

// Independent of lib/reproduce/stats.ts on purpose: the test recomputes what the page must show.
function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
function sd(xs: number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1));
}

/** The rows of the first markdown table after `heading`, as trimmed cells. */
function tableAfter(page: string, heading: string): string[][] {
  const lines = page.slice(page.indexOf(heading)).split("\n");
  const start = lines.findIndex((l) => l.startsWith("|"));
  const rows: string[][] = [];
  for (let i = start; i < lines.length && lines[i].startsWith("|"); i++) rows.push(lines[i].split("|").slice(1, -1).map((c) => c.trim()));
  return rows;
}

describe.skipIf(!haveFmnist)("reproduce at a tiny budget", () => {
  let out: string;
  let page: string;
  const read = (rel: string) => JSON.parse(readFileSync(path.join(out, rel, "results.json"), "utf-8")) as RunResults;
  const top1 = (r: RunResults, bits: string) => r.settings.find((s) => s.bits === bits)!.top1;

  beforeAll(async () => {
    out = path.join(mkdtempSync(path.join(tmpdir(), "ssql-reproduce-")), "run");
    // A seconds-scale budget: the plan falls to its floors (one step per epoch, 64 linear images); the tiny input
    // and one epoch everywhere keep the 16 child commands short.
    const args = ["lib/main.js", "reproduce", "--budget-minutes", "0.05", "--output", out, "--batch", "8", "--bits", BITS.join(","), "--classifier-seeds", "2",
      "--opts", "MODEL.INPUTSHAPE", "[16, 16]", "TRAIN.EPOCHS", "1"];
    await promisify(execFile)(process.execPath, args, { cwd: root, maxBuffer: 64 << 20 });
    page = readFileSync(path.join(out, "results.md"), "utf-8");
  }, 1_200_000);

  // The run folder holds a dozen checkpoints.
  afterAll(() => {
    if (out) rmSync(path.dirname(out), { recursive: true, force: true });
  });

  it("states the budget, the machine, the wall time and the plan", () => {
    expect(page).toMatch(/^# SSQL_SimSiam vs SimSiam on Fashion-MNIST \(budget 0\.05 min\)/);
    expect(page).toContain("node lib/main.js reproduce --budget-minutes 0.05");
    expect(page).toMatch(/wall time \d+\.\d min/);
    expect(page).toMatch(/platform\s+linux/);
    expect(page).toMatch(/cpu backend\s+loaded/);
    const plan = JSON.parse(readFileSync(path.join(out, "plan.json"), "utf-8")) as { plan: { main: { images: number } } };
    expect(page).toContain(`main pretraining, seed ${SEED}: ${plan.plan.main.images} training images`);
    for (const f of ["results.svg", "results_repeat.svg"]) expect(readFileSync(path.join(out, f), "utf-8")).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
  });

  it("the main table's every cell is the mean ± sd of the runs' results.json", () => {
    const rows = tableAfter(page, "## Main comparison");
    expect(rows[0]).toEqual(["bits", "SSQL_SimSiam top-1 (%)", "SimSiam top-1 (%)", "SSQL_SimSiam − SimSiam"]);
    expect(rows[1]).toEqual(["---", "---:", "---:", "---:"]);
    expect(rows.slice(2).map((r) => r[0])).toEqual(BITS);
    for (const [bits, ...cells] of rows.slice(2)) {
      const means: number[] = [];
      METHODS.forEach((m, k) => {
        const runs = CSEEDS.map((c) => read(`main/linear_${m.name}_seed${c}`));
        for (const r of runs) {
          expect(r.method).toBe(m.method);
          expect(path.resolve(r.pretrained)).toBe(path.resolve(out, "main", m.name, "checkpoint.json"));
        }
        const vals = runs.map((r) => top1(r, bits));
        const match = /^(-?\d+\.\d\d) ± (\d+\.\d\d)$/.exec(cells[k]);
        expect(match, `cell '${cells[k]}'`).not.toBeNull();
        expect(match![1]).toBe(mean(vals).toFixed(2));
        expect(match![2]).toBe(sd(vals).toFixed(2));
        means.push(mean(vals));
      });
      expect(cells[2]).toBe((means[0] - means[1]).toFixed(2));
    }
  });

  it("the repeated-pretraining table's every cell is one run's top-1", () => {
    const rows = tableAfter(page, "## Two pretraining seeds");
    const seeds = [SEED, SEED + 1];
    expect(rows[0]).toEqual([
      "bits",
      ...METHODS.flatMap((m) => seeds.map((s) => `${m.method} seed ${s}`)),
      ...seeds.map((s) => `SSQL_SimSiam − SimSiam (seed ${s})`),
    ]);
    expect(rows.slice(2).map((r) => r[0])).toEqual(BITS);
    for (const [bits, ...cells] of rows.slice(2)) {
      const runs = METHODS.map((m) => seeds.map((s) => read(`repeat/linear_${m.name}_seed${s}`)));
      runs.forEach((bySeed, k) => bySeed.forEach((r, i) => expect(path.resolve(r.pretrained)).toBe(path.resolve(out, "repeat", `${METHODS[k].name}_seed${seeds[i]}`, "checkpoint.json"))));
      const vals = runs.flat().map((r) => top1(r, bits));
      const diffs = seeds.map((_, i) => top1(runs[0][i], bits) - top1(runs[1][i], bits));
      expect(cells).toEqual([...vals, ...diffs].map((v) => v.toFixed(2)));
    }
  });

  it("the kNN table's every cell is a kNN record of the main runs' metrics.jsonl", () => {
    const rows = tableAfter(page, "## During pretraining");
    const bitsOf = ["fp", "4w4f"];
    expect(rows[0]).toEqual(["epoch", ...METHODS.flatMap((m) => bitsOf.map((b) => `${m.method} ${b} kNN top-1 (%)`))]);
    expect(rows.slice(2).map((r) => r[0])).toEqual(["0"]);
    const knn = METHODS.map((m) =>
      readFileSync(path.join(out, "main", m.name, "metrics.jsonl"), "utf-8")
        .split("\n")
        .filter((l) => l.includes('"kind":"knn"'))
        .map((l) => JSON.parse(l) as { bits: string; top1: number }),
    );
    expect(rows[2].slice(1)).toEqual(knn.flatMap((recs) => bitsOf.map((b) => recs.find((r) => r.bits === b)!.top1.toFixed(2))));
    expect(readFileSync(path.join(out, "curves_knn.svg"), "utf-8")).toMatch(/^<svg[\s\S]*<\/svg>\n$/);
    expect(page).toContain("![knn](curves_knn.svg)");
    // The repeats skip the monitor: they only feed the linear table.
    expect(readFileSync(path.join(out, "repeat", "simsiam_seed101", "metrics.jsonl"), "utf-8")).not.toContain('"kind":"knn"');
  });

  it("--resume rewrites the page from the finished runs, keeping the first call's start and each command's time", async () => {
    const args = ["lib/main.js", "reproduce", "--resume", "--budget-minutes", "0.05", "--output", out, "--batch", "8", "--bits", BITS.join(","), "--classifier-seeds", "2",
      "--opts", "MODEL.INPUTSHAPE", "[16, 16]", "TRAIN.EPOCHS", "1"];
    const { stdout } = await promisify(execFile)(process.execPath, args, { cwd: root, maxBuffer: 64 << 20 });
    expect(stdout).not.toMatch(/== reproduce \((probe|main|repeat)\)/);
    const again = readFileSync(path.join(out, "results.md"), "utf-8");
    const started = (p: string) => /started (\S+);/.exec(p)![1];
    expect(started(again)).toBe(started(page));
    expect(again).toMatch(/over 2 calls, the commands themselves \d+\.\d min/);
    // The second call ran nothing: the wall time still ends with the first call's last command.
    const wall = (p: string) => /wall time (\S+) min/.exec(p)![1];
    expect(wall(again)).toBe(wall(page));
    expect(again).not.toContain("reused from an earlier call");
    expect(tableAfter(again, "## Main comparison")).toEqual(tableAfter(page, "## Main comparison"));
    const secs = (p: string) => [...p.matchAll(/ {3}# (\d+) s$/gm)].map((m) => m[1]);
    expect(secs(again)).toEqual(secs(page));
  }, 300_000);

  it("lists every command it ran, each with its output folder and log", () => {
    const block = page.slice(page.indexOf("```sh") + 5, page.lastIndexOf("```")).trim().split("\n");
    // probe (3) + main (2 ssl + 4 linear) + repeat (4 ssl + 4 linear)
    expect(block).toHaveLength(17);
    for (const line of block) {
      expect(line).toMatch(/^node lib\/main\.js (ssl|linear) --config configs\/fmnist\/\S+\.yaml --output \S+ --seed \d+ /);
      const output = /--output (\S+)/.exec(line)![1];
      expect(existsSync(path.resolve(root, output)), output).toBe(true);
      expect(existsSync(path.resolve(root, `${output}.log`)), `${output}.log`).toBe(true);
    }
    // Same settings except the method: the two main pretrainings differ only in their config file and output.
    const main = block.filter((l) => l.startsWith("node lib/main.js ssl") && l.includes("/main/"));
    expect(main).toHaveLength(2);
    const strip = (l: string) => l.replace(/--config \S+/, "").replace(/--output \S+/, "").replace(/\s+#.*$/, "");
    expect(strip(main[0])).toBe(strip(main[1]));
  });
});
