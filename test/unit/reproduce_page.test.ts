import { describe, expect, it } from "vitest";
import { mainTable, noiseSummary, repeatTable, type MainRuns, type RepeatRuns } from "../../lib/reproduce/page";
import type { RunResults } from "../../lib/train/results";

function run(method: string, top1: Record<string, number>): { dir: string; results: RunResults } {
  const settings = Object.entries(top1).map(([bits, t]) => ({ bits, w: 0, a: 0, top1: t, top5: 100, bestTop1: t, bestEpoch: 0, valLoss: 1, trainLoss: 1, epochs: 1, calibration: null, seconds: 1 }));
  return { dir: `runs/${method}`, results: { format: "ssql-linear-results", version: 1, command: "linear", label: method, method, pretrained: `runs/${method}/checkpoint.json`, arch: "cifar_resnet18", dataset: "fmnist", linearEval: true, epochs: 1, valImages: 64, settings } };
}

const BITS = ["fp", "2w4f"];
const main: MainRuns = {
  methods: [
    { method: "SSQL_SimSiam", runs: [run("SSQL_SimSiam", { fp: 80, "2w4f": 70 }), run("SSQL_SimSiam", { fp: 82, "2w4f": 74 })] },
    { method: "SimSiam", runs: [run("SimSiam", { fp: 81, "2w4f": 60 }), run("SimSiam", { fp: 81, "2w4f": 62 })] },
  ],
};
const rep: RepeatRuns = {
  seeds: [100, 101],
  methods: [
    { method: "SSQL_SimSiam", bySeed: [run("SSQL_SimSiam", { fp: 70, "2w4f": 65 }), run("SSQL_SimSiam", { fp: 73, "2w4f": 64 })] },
    { method: "SimSiam", bySeed: [run("SimSiam", { fp: 71, "2w4f": 50 }), run("SimSiam", { fp: 71.5, "2w4f": 55 })] },
  ],
};

describe("reproduce page", () => {
  it("tabulates mean ± sample sd and the gap", () => {
    expect(mainTable(main, BITS).split("\n").slice(2, 4)).toEqual(["| fp | 81.00 ± 1.41 | 81.00 ± 0.00 | 0.00 |", "| 2w4f | 72.00 ± 2.83 | 61.00 ± 1.41 | 11.00 |"]);
    expect(repeatTable(rep, BITS).split("\n")[3]).toBe("| 2w4f | 65.00 | 64.00 | 50.00 | 55.00 | 15.00 | 9.00 |");
  });

  it("names the noise beside the gap", () => {
    const s = noiseSummary(main, rep, BITS);
    expect(s).toContain("standard deviation reaches 2.83 (SSQL_SimSiam) and 1.41 (SimSiam) points");
    expect(s).toContain("differs by up to 3.00 (SSQL_SimSiam) and 5.00 (SimSiam) points");
    expect(s).toContain("gap runs from 0.00 to 11.00 points");
  });
});
