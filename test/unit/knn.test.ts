import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { cpuOps } from "../../lib/tensor/binding";
import { normalize } from "../../lib/tensor/ops/norm";
import { tensor, Tensor } from "../../lib/tensor/tensor";
import { featureBank, knnCorrect, knnScores } from "../../lib/train/knn";
import { pythonPath } from "../helpers/fixtures";
import { randomArray } from "../helpers/random";

const root = path.resolve(__dirname, "..", "..");
const py = pythonPath();
if (!py) console.log("kNN reference test skipped: no Python with PyTorch (.venv/bin/python or $SSQL_PYTHON)");

interface Case {
  name: string;
  n: number;
  b: number;
  d: number;
  classes: number;
  k: number;
  t: number;
  seed: number;
  spread?: number;
}

/** Features clustered by class (centre + noise), so neighbours agree with labels often but not always. */
function clustered(count: number, d: number, classes: number, seed: number, spread = 1.5): { x: Float32Array; labels: Int32Array } {
  const centres = randomArray(classes * d, 7);
  const noise = randomArray(count * d, seed);
  const x = new Float32Array(count * d);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = (i * 7 + seed) % classes;
    for (let j = 0; j < d; j++) x[i * d + j] = centres[labels[i] * d + j] + spread * noise[i * d + j];
  }
  return { x, labels };
}

function normalised(x: Float32Array, rows: number, d: number): Tensor {
  const raw = tensor(x, [rows, d]);
  const out = normalize(raw).keep();
  raw.dispose();
  return out;
}

const cases: Case[] = [
  { name: "SimSiam's defaults (k 200, T 0.1), 10 classes", n: 3000, b: 400, d: 64, classes: 10, k: 200, t: 0.1, seed: 11, spread: 6 },
  { name: "k larger than the bank (all of it votes)", n: 60, b: 50, d: 16, classes: 4, k: 200, t: 0.5, seed: 12 },
  { name: "k = 1, 3 classes, T 0.07", n: 500, b: 120, d: 32, classes: 3, k: 1, t: 0.07, seed: 13 },
  { name: "a bank larger than one similarity block", n: 70000, b: 1100, d: 8, classes: 10, k: 20, t: 0.1, seed: 14 },
];

describe.skipIf(!py)("weighted kNN equals the SimSiam/InstDisc PyTorch reference on fixed features", () => {
  for (const c of cases) {
    it(c.name, () => {
      const bank = clustered(c.n, c.d, c.classes, c.seed, c.spread);
      const q = clustered(c.b, c.d, c.classes, c.seed + 100, c.spread);
      const bankX = normalised(bank.x, c.n, c.d);
      const queries = normalised(q.x, c.b, c.d);
      const fb = featureBank(bankX, bank.labels, c.classes);
      const dir = path.join(root, ".cache", "knn", c.name.replace(/[^a-z0-9]+/gi, "_"));
      fs.mkdirSync(dir, { recursive: true });
      const write = (f: string, a: Float32Array | Int32Array) => fs.writeFileSync(path.join(dir, f), Buffer.from(a.buffer, a.byteOffset, a.byteLength));
      write("bank.f32", bankX.toArraySync() as Float32Array);
      write("bank_labels.i32", bank.labels);
      write("queries.f32", queries.toArraySync() as Float32Array);
      fs.writeFileSync(path.join(dir, "params.json"), JSON.stringify({ n: c.n, b: c.b, d: c.d, classes: c.classes, k: c.k, t: c.t }));
      const outFile = path.join(dir, "reference.json");
      execFileSync(py!, [path.join(root, "test", "fixtures", "knn_reference.py"), dir, outFile], { stdio: "pipe" });
      const ref = JSON.parse(fs.readFileSync(outFile, "utf8")) as { pred: number[]; scores: number[] };

      const scores = knnScores(queries, fb, { k: c.k, t: c.t });
      const s = scores.toArraySync() as Float32Array;
      expect(scores.shape).toEqual([c.b, c.classes]);
      const pred = Array.from({ length: c.b }, (_, i) => {
        let best = 0;
        for (let j = 1; j < c.classes; j++) if (s[i * c.classes + j] > s[i * c.classes + best]) best = j;
        return best;
      });
      expect(pred).toEqual(ref.pred);
      let worst = 0;
      for (let i = 0; i < s.length; i++) worst = Math.max(worst, Math.abs(s[i] - ref.scores[i]) / Math.max(1, Math.abs(ref.scores[i])));
      expect(worst).toBeLessThan(1e-5);

      const labels = tensor(q.labels, [c.b]).keep();
      const counts = knnCorrect(queries, labels, fb, { k: c.k, t: c.t });
      const refCorrect = ref.pred.filter((p, i) => p === q.labels[i]).length;
      expect(counts.top1).toBe(refCorrect);
      // Not a trivial case: some queries right, some wrong.
      expect(refCorrect).toBeGreaterThan(0);
      if (c.k > 1) expect(refCorrect).toBeLessThan(c.b);
      expect(counts.top5).toBeGreaterThanOrEqual(counts.top1);
      for (const t of [scores, labels, queries, bankX, fb.labels]) t.dispose();
    }, 60_000);
  }
});

describe("knnClassScores checks its arguments", () => {
  const ops = cpuOps();
  const sim = () => tensor(Float32Array.from([0.9, 0.1, 0.5, 0.2, 0.8, 0.3]), [2, 3]).keep();
  const lab = (a: number[]) => tensor(Int32Array.from(a), [a.length]).keep();

  it("votes with exp(sim / T) for the k most similar, ties to the lower bank index", () => {
    const s = tensor(Float32Array.from([0.5, 0.5, 0.1]), [1, 3]).keep();
    const l = lab([1, 0, 0]);
    const out = new Tensor(ops.knnClassScores(s.handle, l.handle, 1, 0.5, 2), "cpu");
    expect(Array.from(out.toArraySync())).toEqual([0, Math.fround(Math.exp(1))]);
    for (const t of [s, l, out]) t.dispose();
  });

  it("names the problem: k, temperature, labels", () => {
    const s = sim();
    expect(() => ops.knnClassScores(s.handle, lab([0, 1, 2]).handle, 4, 0.1, 3)).toThrow(/k = 4 must be in 1\.\.3/);
    expect(() => ops.knnClassScores(s.handle, lab([0, 1, 2]).handle, 0, 0.1, 3)).toThrow(/k = 0/);
    expect(() => ops.knnClassScores(s.handle, lab([0, 1, 2]).handle, 2, 0, 3)).toThrow(/temperature must be a positive number/);
    expect(() => ops.knnClassScores(s.handle, lab([0, 1, 3]).handle, 2, 0.1, 3)).toThrow(/bank label 3 at 2 is outside 0\.\.2/);
    expect(() => ops.knnClassScores(s.handle, lab([0, 1]).handle, 2, 0.1, 3)).toThrow(/bankLabels.*shape \[3\]/);
    s.dispose();
  });
});
