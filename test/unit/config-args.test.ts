import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { bitsOption, nprocOption, parseCommandArgs, type CommandArgs, type HelpRequest } from "../../lib/cli/args";
import { loadConfig, originOf } from "../../lib/config";

const run = (argv: string[], extras = [bitsOption, nprocOption]) => parseCommandArgs("linear", argv, extras) as CommandArgs;
const failure = (argv: string[]) => {
  try {
    run(argv);
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected an error");
};

describe("parseCommandArgs", () => {
  it("reads every common option, and turns the explicit ones into overrides in order", () => {
    const a = run([
      "--config", "c.yaml", "--output", "out", "-j", "2", "--print-freq", "10", "--device", "cuda:1",
      "--seed", "7", "--resume", "ck.safetensors", "--bits", "fp,4w4f", "--nproc-per-node", "4",
      "--opts", "TRAIN.EPOCHS", "5", "MODEL.PRETRAINED", "runs/x",
    ]);
    expect(a.options).toEqual({
      config: "c.yaml",
      output: "out",
      workers: 2,
      printFreq: 10,
      device: "cuda:1",
      seed: 7,
      resume: "ck.safetensors",
      extra: { bits: ["fp", "4w4f"], "nproc-per-node": 4 },
    });
    expect(a.configOverrides.map((o) => [o.key, o.value, o.source])).toEqual([
      ["OUTPUT", "out", "--output"],
      ["TRAIN.NUM_WORKERS", 2, "-j/--workers"],
      ["QUANT.CALIBRATION.NUM_WORKERS", 2, "-j/--workers"],
      ["TRAIN.PRINT_FREQ", 10, "-p/--print-freq"],
      ["DEVICE", "cuda:1", "--device"],
      ["SEED", 7, "--seed"],
      ["LINEAR.BITS", ["fp", "4w4f"], "--bits"],
      ["TRAIN.EPOCHS", "5", "--opts"],
      ["MODEL.PRETRAINED", "runs/x", "--opts"],
    ]);
    expect(a.configDefaults).toEqual([]);
  });

  it("leaves flags at their defaults out of the overrides (the yaml wins over them)", () => {
    const a = run(["--config", "c.yaml"]);
    expect(a.options).toEqual({
      config: "c.yaml",
      output: "./train_log",
      workers: 4,
      printFreq: 50,
      device: undefined,
      seed: undefined,
      resume: false,
      extra: { bits: undefined, "nproc-per-node": 1 },
    });
    expect(a.configOverrides).toEqual([]);
    expect(a.configDefaults.map((o) => [o.key, o.value])).toEqual([
      ["OUTPUT", "./train_log"],
      ["TRAIN.NUM_WORKERS", 4],
      ["QUANT.CALIBRATION.NUM_WORKERS", 4],
      ["TRAIN.PRINT_FREQ", 50],
    ]);
  });

  it("takes short options and --opt=value forms", () => {
    const a = run(["--config=c.yaml", "-j", "0", "-p", "3", "--seed=0"]);
    expect([a.options.workers, a.options.printFreq, a.options.seed]).toEqual([0, 3, 0]);
  });

  it("reads --resume with and without a path", () => {
    expect(run(["--config", "c", "--resume"]).options.resume).toBe(true);
    expect(run(["--config", "c", "--resume", "-j", "1"]).options.resume).toBe(true);
    expect(run(["--config", "c", "--resume", "--opts", "SEED", "1"]).options.resume).toBe(true);
    expect(run(["--config", "c", "--resume", "a/b"]).options.resume).toBe("a/b");
    expect(run(["--config", "c"]).options.resume).toBe(false);
  });

  it("names the bad option in every error", () => {
    expect(failure([])).toMatch(/^linear: option --config PATH is required/);
    expect(failure(["--config", "c", "--frobnicate"])).toMatch(/^linear: Unknown option '--frobnicate'\nRun 'node lib\/main.js linear --help'/);
    expect(failure(["--config", "c", "--ouput", "x"])).toMatch(/^linear: Unknown option '--ouput' \(did you mean --output\?\)/);
    expect(failure(["--config", "c", "-j", "many"])).toMatch(/option -j\/--workers: expected an integer >= 0, got 'many'/);
    expect(failure(["--config", "c", "-p", "0"])).toMatch(/option -p\/--print-freq: expected an integer >= 1, got '0'/);
    expect(failure(["--config", "c", "--seed", "-3"])).toMatch(/--seed/);
    expect(failure(["--config", "c", "--device", "gpu"])).toMatch(/option --device: expected cpu, cuda or cuda:N, got 'gpu'/);
    expect(failure(["--config", "c", "--bits", "fp,4w"])).toMatch(/option --bits: bad bit setting '4w'/);
    expect(failure(["--config", "c", "--nproc-per-node", "0"])).toMatch(/option --nproc-per-node: expected an integer >= 1/);
    expect(failure(["--config", "c", "--opts", "TRAIN.EPOCHS"])).toMatch(/--opts expects KEY VALUE pairs; 'TRAIN.EPOCHS' has no value/);
    expect(failure(["--config", "c", "--opts"])).toMatch(/--opts expects KEY VALUE pairs/);
    expect(failure(["--config"])).toMatch(/--config/);
    expect(failure(["--config", "c", "stray"])).toMatch(/stray/);
  });

  it("--help describes every option, without needing --config", () => {
    for (const flag of ["--help", "-h"]) {
      const h = parseCommandArgs("linear", [flag], [bitsOption, nprocOption], "Linear evaluation at several bit-widths.");
      expect("help" in h && typeof h.help === "string").toBe(true);
      const text = (h as HelpRequest).help;
      expect(text).toMatch(/^usage: node lib\/main\.js linear --config PATH \[options\] \[--opts KEY VALUE \.\.\.\]/);
      expect(text).toContain("Linear evaluation at several bit-widths.");
      for (const opt of ["--config PATH", "--output DIR", "-j, --workers N", "-p, --print-freq N", "--device DEV", "--seed N",
        "--resume [PATH]", "--bits LIST", "--nproc-per-node N", "--opts KEY VALUE", "-h, --help"]) {
        expect(text).toContain(opt);
      }
      expect(text).toContain("default ./train_log");
      expect(text).toContain("fp,8w8f,4w4f,2w4f");
    }
  });
});

describe("parseCommandArgs with loadConfig", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-args-"));
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const file = path.join(tmp, "c.yaml");
  fs.writeFileSync(file, "TRAIN:\n  PRINT_FREQ: 10\n  EPOCHS: 100\n");
  const load = (...argv: string[]) => {
    const a = run(["--config", file, ...argv]);
    return loadConfig(a.options.config, a.configOverrides, { defaults: a.configDefaults });
  };

  it("lets an explicit flag beat the yaml, and the yaml beat a default flag", () => {
    expect(load().TRAIN.PRINT_FREQ).toBe(10);
    expect(load().TRAIN.NUM_WORKERS).toBe(4);
    expect(load().OUTPUT).toBe("./train_log");
    expect(load("-p", "7").TRAIN.PRINT_FREQ).toBe(7);
    const cfg = load("-j", "3", "--bits", "fp,2w4f", "--opts", "TRAIN.EPOCHS", "2", "TRAIN.EPOCHS", "3");
    expect([cfg.TRAIN.NUM_WORKERS, cfg.QUANT.CALIBRATION.NUM_WORKERS, cfg.TRAIN.EPOCHS]).toEqual([3, 3, 3]);
    expect(cfg.LINEAR.BITS).toEqual(["fp", "2w4f"]);
    expect(originOf(cfg, "LINEAR.BITS")).toBe("--bits");
    expect(originOf(cfg, "TRAIN.PRINT_FREQ")).toBe(`${file}:2`);
  });
});
