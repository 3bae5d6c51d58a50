import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseCommandArgs, type CommandArgs } from "../../lib/cli/args";
import { buildConfig, ConfigError, loadConfig, validateFor } from "../../lib/config";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-config-err-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
/** Writes a yaml file and returns [path, the name errors use]. */
function yaml(text: string): string {
  const p = path.join(tmp, `bad${n++}.yaml`);
  fs.writeFileSync(p, text);
  return p;
}
function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected an error");
}
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

describe("bad config files", () => {
  it("unknown key: file, line, dotted key and a near-miss suggestion", () => {
    const f = yaml("TRAIN:\n  EPOCHS: 2\n  BATCH_SZE: 4\n");
    const e = errorOf(() => loadConfig(f));
    expect(e.message).toMatch(new RegExp(`${esc(f)}:3: unknown key TRAIN\\.BATCH_SZE \\(did you mean TRAIN\\.BATCH_SIZE\\?\\)$`));
    expect(e.key).toBe("TRAIN.BATCH_SZE");
    expect(errorOf(() => loadConfig(yaml("TRAIN:\n  ARCH: resnet18\n"))).message).toMatch(/did you mean MODEL\.ARCH\?/);
    expect(errorOf(() => loadConfig(yaml("train:\n  epochs: 3\n"))).message).toMatch(/unknown key train \(did you mean TRAIN\?\)/);
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  W:\n    BITS: 4\n"))).message).toMatch(/QUANT\.W\.BITS \(did you mean QUANT\.W\.BIT\?\)/);
    expect(errorOf(() => loadConfig(yaml("COMPLETELY_DIFFERENT: 1\n"))).message).toMatch(/unknown key COMPLETELY_DIFFERENT$/);
  });

  it("wrong type: the expected type and what was found", () => {
    const f = yaml("TRAIN:\n  EPOCHS: ten\n");
    const e = errorOf(() => loadConfig(f));
    expect(e.message).toBe(`${f}:2: TRAIN.EPOCHS: expected int, got "ten" (string)`);
    expect(e.key).toBe("TRAIN.EPOCHS");
    expect(errorOf(() => loadConfig(yaml("TRAIN:\n  BATCH_SIZE: 1.5\n"))).message).toMatch(/TRAIN\.BATCH_SIZE: expected int, got 1\.5 \(number\)/);
    expect(errorOf(() => loadConfig(yaml("TRAIN:\n  USE_DDP: 1\n"))).message).toMatch(/TRAIN\.USE_DDP: expected bool, got 1/);
    expect(errorOf(() => loadConfig(yaml("TRAIN:\n  LR_SCHEDULER:\n    BASE_LR: fast\n"))).message).toMatch(/TRAIN\.LR_SCHEDULER\.BASE_LR: expected float/);
    expect(errorOf(() => loadConfig(yaml("MODEL:\n  INPUTSHAPE: [32, a]\n"))).message).toMatch(/MODEL\.INPUTSHAPE: expected list of int/);
    expect(errorOf(() => loadConfig(yaml("TRAIN: 5\n"))).message).toMatch(/:1: TRAIN is a section: expected a mapping of its keys, got 5/);
    expect(errorOf(() => loadConfig(yaml("DATA:\n  ON_BAD_IMAGE: ignore\n"))).message).toMatch(/DATA\.ON_BAD_IMAGE: expected one of error \| skip, got "ignore"/);
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  ROUNDING: nearest\n"))).message).toMatch(/QUANT\.ROUNDING: expected one of divide \| reciprocal, got "nearest"/);
    expect(errorOf(() => loadConfig(yaml("SEED: abc\n"))).message).toMatch(/SEED: expected int or null/);
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  BIT_CONFIG: [{conv1: {w: 8, b: 2}}]\n"))).message).toMatch(
      /QUANT\.BIT_CONFIG: layer 'conv1': unknown field 'b'/,
    );
    expect(errorOf(() => loadConfig(yaml("TRAIN:\n  EPOCHS: 2\n  EPOCHS: 3\n"))).message).toMatch(/:3: invalid YAML: Map keys must be unique/);
  });

  it("missing file: the config itself, or a BASE_CONFIG (naming the file and line that asked for it)", () => {
    const missing = path.join(tmp, "nope.yaml");
    expect(errorOf(() => loadConfig(missing)).message).toBe(`config file ${missing}: file not found`);
    const f = yaml("SEED: 1\nBASE_CONFIG: base/missing.yaml\n");
    const e = errorOf(() => loadConfig(f));
    expect(e.message).toMatch(new RegExp(`^${esc(f)}:2: BASE_CONFIG: file not found: ${esc(path.join(tmp, "base/missing.yaml"))}`));
    expect(e.key).toBe("BASE_CONFIG");
  });

  it("invalid YAML: file and line", () => {
    const f = yaml("TRAIN:\n  EPOCHS: [1, 2\nSEED: 1\n");
    expect(errorOf(() => loadConfig(f)).message).toMatch(new RegExp(`^${esc(f)}:\\d+: invalid YAML: `));
  });

  it("bits outside 0..16, in QUANT.{W,A}.BIT and BIT_CONFIG", () => {
    const f = yaml("QUANT:\n  W:\n    BIT: 17\n");
    expect(errorOf(() => loadConfig(f)).message).toBe(`${f}:3: QUANT.W.BIT: 17 bits is outside 0..16 (0 = not quantized)`);
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  A:\n    BIT: -1\n"))).message).toMatch(/QUANT\.A\.BIT: -1 bits is outside 0\.\.16/);
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  BIT_CONFIG: [{fc: {w: 20}}]\n"))).message).toMatch(
      /:2: QUANT\.BIT_CONFIG: layer 'fc' "w": 20 bits is outside 0\.\.16/,
    );
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  W:\n    BIT_RANGE: [2, 18]\n"))).message).toMatch(/\[2, 18\] draws bits outside 0\.\.16/);
  });

  it("empty or inverted BIT_RANGE", () => {
    const f = yaml("QUANT:\n  W:\n    BIT_RANGE: [9, 2]\n");
    expect(errorOf(() => loadConfig(f)).message).toBe(
      `${f}:3: QUANT.W.BIT_RANGE: [9, 2] is empty or inverted: bits are drawn from low..high-1, so high must exceed low`,
    );
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  A:\n    BIT_RANGE: [4, 4]\n"))).message).toMatch(/QUANT\.A\.BIT_RANGE: \[4, 4\] is empty/);
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  A:\n    BIT_RANGE: [4]\n"))).message).toMatch(/expected \[low, high\]/);
  });

  it("unknown ARCH, DATASET, SSL.TYPE, observer, granularity: the allowed values and a suggestion", () => {
    const f = yaml("MODEL:\n  ARCH: resnet19\n");
    const e = errorOf(() => loadConfig(f));
    expect(e.message).toMatch(new RegExp(`^${esc(f)}:2: MODEL\\.ARCH: unknown architecture 'resnet19' \\(did you mean resnet18\\?\\); allowed: cifar_resnet18, `));
    expect(e.message).toContain("resnet50");
    expect(errorOf(() => loadConfig(yaml("TRAIN:\n  DATASET: cifar-10\n"))).message).toMatch(
      /TRAIN\.DATASET: unknown dataset 'cifar-10' \(did you mean cifar10\?\); allowed: .*fmnist/,
    );
    expect(errorOf(() => loadConfig(yaml("SSL:\n  TYPE: simsiam\n"))).message).toMatch(
      /SSL\.TYPE: unknown SSL method 'simsiam' \(did you mean SimSiam\?\); allowed: SimSiam, SSQL_SimSiam, BYOL/,
    );
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  A:\n    OBSERVER_METHOD:\n      NAME: MIN_MAX\n"))).message).toMatch(
      /QUANT\.A\.OBSERVER_METHOD\.NAME: unknown observer 'MIN_MAX' \(did you mean MINMAX\?\)/,
    );
    expect(errorOf(() => loadConfig(yaml("QUANT:\n  W:\n    GRANULARITY: channel\n"))).message).toMatch(
      /QUANT\.W\.GRANULARITY: unknown granularity 'channel'.*allowed: channelwise, layerwise/,
    );
    expect(errorOf(() => loadConfig(yaml('QUANT:\n  W:\n    OBSERVER_METHOD: {NAME: ""}\n'))).message).toMatch(
      /QUANT\.W\.OBSERVER_METHOD\.NAME: unknown observer ''; allowed: BASIC, MINMAX/,
    );
  });

  it("reports every problem at once", () => {
    const f = yaml("MODEL:\n  ARCH: vgg16\nQUANT:\n  W:\n    BIT: 32\nLINEAR:\n  BITS: [fp, 4w]\n");
    const e = errorOf(() => loadConfig(f));
    expect(e.message.split("\n")[0]).toBe("invalid config (3 problems):");
    expect(e.message).toContain(`${f}:2: MODEL.ARCH: unknown architecture 'vgg16'`);
    expect(e.message).toContain(`${f}:5: QUANT.W.BIT: 32 bits`);
    expect(e.message).toContain(`${f}:7: LINEAR.BITS: bad bit setting '4w'`);
  });
});

describe("bad command-line settings", () => {
  const f = yaml("TRAIN:\n  EPOCHS: 2\n");
  const load = (...opts: string[]) => {
    const a = parseCommandArgs("ssl", ["--config", f, "--opts", ...opts]) as CommandArgs;
    return () => loadConfig(a.options.config, a.configOverrides, { defaults: a.configDefaults });
  };

  it("an unknown --opts key, with a suggestion", () => {
    const e = errorOf(load("TRAIN.EPOCH", "3"));
    expect(e.message).toBe("--opts: unknown key TRAIN.EPOCH (did you mean TRAIN.EPOCHS?)");
    expect(e.source).toBe("--opts");
  });

  it("a wrong --opts value type, a section, BASE_CONFIG", () => {
    expect(errorOf(load("TRAIN.EPOCHS", "x")).message).toBe('--opts: TRAIN.EPOCHS: expected int, got "x" (string)');
    expect(errorOf(load("TRAIN", "3")).message).toMatch(/--opts: TRAIN is a section/);
    expect(errorOf(load("BASE_CONFIG", "a.yaml")).message).toMatch(/BASE_CONFIG can only be set in a config file/);
    expect(errorOf(load("QUANT.W.BIT", "99")).message).toBe("--opts: QUANT.W.BIT: 99 bits is outside 0..16 (0 = not quantized)");
  });

  it("a bad flag value reaching the config names the flag", () => {
    const a = parseCommandArgs("ssl", ["--config", f, "--seed", "3"]) as CommandArgs;
    expect(loadConfig(f, a.configOverrides).SEED).toBe(3);
    expect(errorOf(() => loadConfig(f, [{ key: "DEVICE", value: "tpu", source: "--device" }])).message).toBe(
      "--device: DEVICE: unknown device 'tpu'; allowed: cpu, cuda, cuda:N",
    );
  });
});

describe("validateFor", () => {
  it("lists what a command needs and the config lacks", () => {
    const f = yaml("TRAIN:\n  DATASET: cifar10\n");
    const e = errorOf(() => validateFor("ssl", loadConfig(f)));
    expect(e.message.split("\n")[0]).toBe("config is incomplete for 'ssl' (5 problems):");
    for (const key of ["MODEL.ARCH", "MODEL.INPUTSHAPE", "SSL.TYPE", "TRAIN.EPOCHS", "TRAIN.LR_SCHEDULER.BASE_LR"]) {
      expect(e.message).toContain(`${f}: ${key}: set`);
    }
    expect(e.message).not.toContain("TRAIN.DATASET");
  });

  it("linear needs classes and a checkpoint; ptq needs no epochs", () => {
    const base = {
      MODEL: { ARCH: "cifar_resnet18", INPUTSHAPE: [32, 32] },
      TRAIN: { DATASET: "cifar10", EPOCHS: 1, LR_SCHEDULER: { BASE_LR: 0.1 } },
    } as const;
    const e = errorOf(() => validateFor("linear", buildConfig(base)));
    expect(e.message).toMatch(/MODEL\.NUM_CLASSES: set the number of classes/);
    expect(e.message).toMatch(/MODEL\.PRETRAINED: set the SSL checkpoint to evaluate/);
    validateFor("linear", buildConfig({ ...base, MODEL: { ...base.MODEL, NUM_CLASSES: 10, CHECKPOINT: "runs/x" } }));
    validateFor("ptq", buildConfig({ MODEL: { ...base.MODEL, NUM_CLASSES: 10, PRETRAINED: "c" }, TRAIN: { DATASET: "cifar10" } }));
    expect(() => validateFor("ssl", buildConfig({ ...base, SSL: { TYPE: "SSQL_SimSiam" } }))).not.toThrow();
  });
});
