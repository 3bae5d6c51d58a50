import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { report } from "../../lib/cli/report";
import { MetricsLog } from "../../lib/train/metrics_log";
import { readTrainingCurves } from "../../lib/train/curves";
import { writeRunResults, type RunResults } from "../../lib/train/results";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-curves-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** An ssl run folder's metrics log: epochs with loss and lr, kNN at fp and 4w4f, and a resumed epoch 1 rewritten. */
function sslRun(name: string, shift: number): string {
  const dir = path.join(tmp, name);
  const log = new MetricsLog(path.join(dir, "metrics.jsonl"));
  for (let e = 0; e < 3; e++) {
    log.write({ kind: "step", epoch: e, step: 0, globalStep: e, loss: -0.1 * e, lr: 0.05 });
    log.write({ kind: "epoch", epoch: e, loss: -0.1 * e - shift, lr: 0.05 / (e + 1), seconds: 1 });
    log.write({ kind: "knn", epoch: e, bits: "fp", top1: 30 + 10 * e + shift, top5: 90 });
    log.write({ kind: "knn", epoch: e, bits: "4w4f", top1: 20 + 10 * e + shift, top5: 80 });
  }
  // A resumed run appends epoch 2 again: the last record wins.
  log.write({ kind: "epoch", epoch: 2, loss: -0.5, lr: 0.01, seconds: 1 });
  log.write({ kind: "knn", epoch: 2, bits: "fp", top1: 77, top5: 99 });
  log.close();
  return dir;
}

describe("pretraining curves", () => {
  it("reads loss, lr and kNN top-1 per epoch from metrics.jsonl (last record of an epoch wins)", () => {
    const c = readTrainingCurves(sslRun("a", 0), "A")!;
    expect(c.epochs).toEqual([{ epoch: 0, loss: 0, lr: 0.05 }, { epoch: 1, loss: -0.1, lr: 0.025 }, { epoch: 2, loss: -0.5, lr: 0.01 }]);
    expect([...c.knn.keys()]).toEqual(["fp", "4w4f"]);
    expect(c.knn.get("fp")!.map((p) => p.top1)).toEqual([30, 40, 77]);
    expect(readTrainingCurves(path.join(tmp, "nothing"), "X")).toBeNull();
  });

  it("report --runs draws loss, lr and kNN against epoch for ssl folders and for linear runs' pretraining", async () => {
    const ssql = sslRun("ssql", 5);
    const simsiam = sslRun("simsiam", 0);
    const lin: RunResults = {
      format: "ssql-linear-results", version: 1, command: "linear", label: "SSQL_SimSiam", method: "SSQL_SimSiam", pretrained: ssql,
      arch: "cifar_resnet18", dataset: "fmnist", linearEval: true, epochs: 1, valImages: 10,
      settings: [{ bits: "fp", w: 0, a: 0, top1: 50, top5: 90, bestTop1: 50, bestEpoch: 0, valLoss: 1, trainLoss: 1, epochs: 1, calibration: null, seconds: 1 }],
    };
    const linDir = path.join(tmp, "linear_ssql");
    await writeRunResults(linDir, lin);
    const out = path.join(tmp, "report", "r.svg");
    const log: string[] = [];
    const orig = console.log;
    console.log = (...a: unknown[]) => void log.push(a.join(" "));
    try {
      expect(await report(["--runs", linDir, simsiam, "--labels", "SSQL,SimSiam", "--output", out])).toBe(0);
    } finally {
      console.log = orig;
    }
    for (const f of ["r.svg", "r_loss.svg", "r_lr.svg", "r_knn.svg"]) expect(fs.existsSync(path.join(tmp, "report", f)), f).toBe(true);
    const knn = fs.readFileSync(path.join(tmp, "report", "r_knn.svg"), "utf8");
    // SSQL and SimSiam side by side: four lines (fp solid, 4w4f dashed), each with its 3 epochs.
    expect(knn.match(/<path /g)).toHaveLength(4);
    expect(knn.match(/stroke-dasharray/g)!.length).toBeGreaterThanOrEqual(2);
    for (const l of ["SSQL fp", "SSQL 4w4f", "SimSiam fp", "SimSiam 4w4f"]) expect(knn).toContain(`>${l}<`);
    expect(fs.readFileSync(path.join(tmp, "report", "r_loss.svg"), "utf8").match(/<path /g)).toHaveLength(2);
    const md = log.join("\n");
    expect(md).toContain("| epoch | SSQL fp kNN top-1 (%) | SSQL 4w4f kNN top-1 (%) | SimSiam fp kNN top-1 (%) | SimSiam 4w4f kNN top-1 (%) |");
    expect(md).toContain("| 2 | 77.00 | 45.00 | 77.00 | 40.00 |");
    expect(md).toContain("| bits | SSQL top-1 (%) |");
  });
});
