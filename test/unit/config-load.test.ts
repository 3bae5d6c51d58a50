import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  buildConfig,
  configFiles,
  dumpConfig,
  loadConfig,
  originOf,
  validateFor,
  withOverrides,
  type Config,
} from "../../lib/config";
import { indentFlowContinuations } from "../../lib/config/yaml-file";

// Verbatim copies of the original yaml files (test/fixtures/reference-configs), or another copy named by the variable.
const REFERENCE = process.env.SSQL_REFERENCE_CONFIGS ?? path.resolve(__dirname, "../fixtures/reference-configs");
const PROJECT = path.resolve(__dirname, "../../configs");
// Every key each original file sets, as yacs sees it (PyYAML + literal_eval): test/fixtures/config_reference.py.
const FIXTURE = JSON.parse(
  fs.readFileSync(path.resolve(__dirname, "../fixtures/reference-configs.json"), "utf8"),
) as Record<string, Record<string, unknown>>;
const NAMES = Object.keys(FIXTURE);
const hasReference = fs.existsSync(path.join(REFERENCE, "cifar"));

function get(cfg: Config, key: string): unknown {
  return key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], cfg);
}

function commandOf(cfg: Config): "ssl" | "linear" {
  return cfg.TRAIN.RUNNER.NAME === "ssl" ? "ssl" : "linear";
}

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-config-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
function write(rel: string, text: string): string {
  const p = path.join(tmp, rel);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, text);
  return p;
}

describe.skipIf(!hasReference)("the original SSQL configs", () => {
  it("covers all 24 files", () => {
    const onDisk = ["cifar", "imagenet"].flatMap((g) => fs.readdirSync(path.join(REFERENCE, g)).map((f) => `${g}/${f}`));
    expect(onDisk.sort()).toEqual([...NAMES].sort());
    expect(NAMES).toHaveLength(24);
  });

  it.each(NAMES)("%s loads unchanged, with every value as yacs reads it, and validates", (name) => {
    const cfg = loadConfig(path.join(REFERENCE, name));
    validateFor(commandOf(cfg), cfg);
    for (const [key, value] of Object.entries(FIXTURE[name]!)) expect(get(cfg, key), key).toEqual(value);
  });

  it("reads the quirks: string tuples, flow BIT_CONFIG with trailing commas, 0., TRUE", () => {
    const moco = loadConfig(path.join(REFERENCE, "cifar/resnet18_ssql_moco_cifar.yaml"));
    expect(moco.AUG.TRAIN.RANDOMRESIZEDCROP.SCALE).toEqual([0.08, 1.0]);
    expect(moco.TRAIN.LR_SCHEDULER.MIN_LR).toBe(0);
    expect(moco.SSL.SETTING.MLP).toBe(true);
    expect(moco.SSL.SETTING.MOCO_K).toBe(4096);
    expect(moco.QUANT.BIT_CONFIG).toHaveLength(1);
    expect(Object.keys(moco.QUANT.BIT_CONFIG[0]!)).toHaveLength(14);
    expect(moco.QUANT.BIT_CONFIG[0]!["fc.2"]).toEqual({ w: 8, a: 0 });
    expect(moco.QUANT.BIT_CONFIG[0]!["layer2.0.downsample"]).toEqual({ a: 0 });
  });

  it("keeps the defaults of keys a file does not set", () => {
    const cfg = loadConfig(path.join(REFERENCE, "cifar/resnet18_simsiam_cifar.yaml"));
    expect(cfg.SSL.SETTING.T).toBe(0.07);
    expect(cfg.QUANT.W.BIT).toBe(8);
    expect(cfg.QUANT.A.BIT_RANGE).toEqual([4, 9]);
    expect(cfg.QUANT.A.OBSERVER_METHOD.BINS).toBe(2049);
    expect(cfg.TRAIN.LR_SCHEDULER.DECAY_RATE).toBe(0.1);
    expect(cfg.SSL.SETTING.PROJECTOR_HIDDEN).toBe("head");
    expect(cfg.DATA).toEqual({ ROOT: "", ON_BAD_IMAGE: "error", TRAIN_SUBSET: 0, VAL_SUBSET: 0 });
    expect(cfg.LINEAR.BITS).toEqual([]);
    expect(cfg.BASE_CONFIG).toBe("");
  });
});

describe.skipIf(!hasReference)("the project's configs", () => {
  it("has one file per original, with the same name and values, only the checkpoint paths changed", () => {
    for (const group of ["cifar", "imagenet"]) {
      expect(fs.readdirSync(path.join(PROJECT, group)).sort()).toEqual(fs.readdirSync(path.join(REFERENCE, group)).sort());
    }
    for (const name of NAMES) {
      const ours = loadConfig(path.join(PROJECT, name));
      validateFor(commandOf(ours), ours);
      const theirs = loadConfig(path.join(REFERENCE, name));
      const strip = (c: Config) => ({ ...c, MODEL: { ...c.MODEL, PRETRAINED: "", CHECKPOINT: "" } });
      expect(strip(ours), name).toEqual(strip(theirs));
      for (const p of [ours.MODEL.PRETRAINED, ours.MODEL.CHECKPOINT]) expect(p === "" || p.startsWith("runs/"), name).toBe(true);
    }
  });

  it("carries no private paths or copied comments", () => {
    for (const name of NAMES) {
      const text = fs.readFileSync(path.join(PROJECT, name), "utf8");
      expect(text, name).not.toMatch(/\/data\/|\/home\/|caoyunhao|train_log|gpu, we use|mannuly/);
    }
  });

  it("fmnist demo: SSQL and SimSiam (via BASE_CONFIG) pretraining and a linear sweep at four settings", () => {
    const ssql = loadConfig(path.join(PROJECT, "fmnist/resnet18_ssql_simsiam_fmnist.yaml"));
    const simsiam = loadConfig(path.join(PROJECT, "fmnist/resnet18_simsiam_fmnist.yaml"));
    const linear = loadConfig(path.join(PROJECT, "fmnist/resnet18_linear_eval_fmnist.yaml"));
    validateFor("ssl", ssql);
    validateFor("ssl", simsiam);
    validateFor("linear", linear);
    expect(ssql.SSL.TYPE).toBe("SSQL_SimSiam");
    expect(simsiam.SSL.TYPE).toBe("SimSiam");
    expect({ ...simsiam, SSL: ssql.SSL }).toEqual(ssql);
    expect(configFiles(simsiam).map((f) => path.basename(f))).toEqual([
      "resnet18_ssql_simsiam_fmnist.yaml",
      "resnet18_simsiam_fmnist.yaml",
    ]);
    for (const c of [ssql, linear]) {
      expect(c.TRAIN.DATASET).toBe("fmnist");
      expect(c.MODEL.ARCH).toBe("cifar_resnet18");
      expect(c.TRAIN.LR_SCHEDULER.TYPE).toBe("cosine");
      expect(c.DATA.TRAIN_SUBSET).toBeGreaterThan(0);
    }
    expect(ssql.TRAIN.BATCH_SIZE).toBe(128);
    // The linear demo trains on cached features (no augmentation): small batches, many cheap epochs.
    expect(linear.TRAIN.BATCH_SIZE).toBe(32);
    expect(linear.LINEAR.AUGMENT).toBe(false);
    expect(linear.LINEAR.BITS).toEqual(["fp", "8w8f", "4w4f", "2w4f"]);
    expect(linear.MODEL.NUM_CLASSES).toBe(10);
  });

  it("uses clean YAML (nothing for the PyYAML shim to fix)", () => {
    for (const f of ["cifar", "imagenet", "fmnist"].flatMap((g) => fs.readdirSync(path.join(PROJECT, g)).map((n) => path.join(PROJECT, g, n)))) {
      const text = fs.readFileSync(f, "utf8");
      expect(indentFlowContinuations(text), f).toBe(text);
    }
  });
});

describe("BASE_CONFIG chains", () => {
  it("merges the deepest base first, each path relative to the file naming it", () => {
    write("chain/base/base.yaml", "SEED: 1\nTRAIN:\n  EPOCHS: 10\n  BATCH_SIZE: 32\n");
    write("chain/mid/mid.yaml", "BASE_CONFIG: ../base/base.yaml\nTRAIN:\n  EPOCHS: 20\n");
    const top = write("chain/top.yaml", "BASE_CONFIG: mid/mid.yaml\nTRAIN:\n  BATCH_SIZE: 64\n");
    const cfg = loadConfig(top);
    expect([cfg.SEED, cfg.TRAIN.EPOCHS, cfg.TRAIN.BATCH_SIZE]).toEqual([1, 20, 64]);
    expect(configFiles(cfg).map((f) => path.basename(f))).toEqual(["base.yaml", "mid.yaml", "top.yaml"]);
    expect(originOf(cfg, "TRAIN.EPOCHS")).toMatch(/mid\.yaml:3$/);
    expect(originOf(cfg, "TRAIN.BATCH_SIZE")).toMatch(/top\.yaml:3$/);
    expect(originOf(cfg, "SEED")).toMatch(/base\.yaml:1$/);
    expect(originOf(cfg, "TRAIN.DATASET")).toBe("default");
    expect(cfg.BASE_CONFIG).toBe("");
  });

  it("reports a cycle with the whole loop", () => {
    write("cycle/a.yaml", "BASE_CONFIG: b.yaml\n");
    write("cycle/b.yaml", "BASE_CONFIG: ./a.yaml\n");
    expect(() => loadConfig(path.join(tmp, "cycle/a.yaml"))).toThrow(/b\.yaml:1: BASE_CONFIG: cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml/);
    write("cycle/self.yaml", "BASE_CONFIG: self.yaml\n");
    expect(() => loadConfig(path.join(tmp, "cycle/self.yaml"))).toThrow(/cycle: .*self\.yaml -> .*self\.yaml/);
  });

  it("allows the same base twice in a diamond-free chain and an empty BASE_CONFIG", () => {
    const f = write("chain/empty-base.yaml", 'BASE_CONFIG: ""\nSEED: 3\n');
    expect(loadConfig(f).SEED).toBe(3);
  });
});

describe("values and overrides", () => {
  it("reads YAML 1.1 scalars and Python literals as yacs does, accepting ints for floats", () => {
    const f = write(
      "values.yaml",
      [
        "TRAIN:",
        "  USE_DDP: yes",
        "  LR_SCHEDULER:",
        "    BASE_LR: 1",
        '    WARMUP_LR: "1e-4"',
        "  OPTIMIZER:",
        "    WEIGHT_DECAY: 5e-4",
        "AUG:",
        "  TRAIN:",
        '    RANDOMRESIZEDCROP: {SCALE: "(0.2, 1.)"}',
        "  EVALUATION:",
        "    RESIZE:",
        "      SIZE: (36, 36)",
        "QUANT:",
        "  W:",
        "    QUANTIZER: None",
        "SSL:",
        "  TYPE: ~",
      ].join("\n"),
    );
    const cfg = loadConfig(f);
    expect(cfg.TRAIN.USE_DDP).toBe(true);
    expect(cfg.TRAIN.LR_SCHEDULER.BASE_LR).toBe(1);
    expect(cfg.TRAIN.LR_SCHEDULER.WARMUP_LR).toBe(0.0001);
    expect(cfg.TRAIN.OPTIMIZER.WEIGHT_DECAY).toBe(0.0005);
    expect(cfg.AUG.TRAIN.RANDOMRESIZEDCROP.SCALE).toEqual([0.2, 1]);
    expect(cfg.AUG.EVALUATION.RESIZE.SIZE).toEqual([36, 36]);
    expect(cfg.QUANT.W.QUANTIZER).toBeNull();
    expect(cfg.SSL.TYPE).toBeNull();
  });

  it.skipIf(!hasReference)("applies overrides over the yaml, and CLI defaults under it", () => {
    const file = path.join(REFERENCE, "cifar/resnet18_ssql_simsiam_cifar.yaml");
    const cfg = loadConfig(
      file,
      [
        { key: "TRAIN.BATCH_SIZE", value: "64" },
        { key: "TRAIN.EPOCHS", value: 3 },
        { key: "AUG.TRAIN.RANDOMRESIZEDCROP.SCALE", value: "(0.2, 1.0)" },
        { key: "QUANT.W.BIT_RANGE", value: "[3, 5]" },
        { key: "LINEAR.BITS", value: "fp,4w4f" },
        { key: "SEED", value: "null" },
        { key: "MODEL.PRETRAINED", value: "123" },
        { key: "QUANT.BIT_CONFIG", value: '[{"conv1": {"w": 8, "a": 8}}]' },
        { key: "TRAIN.EPOCHS", value: "5", source: "--opts" },
      ],
      { defaults: [{ key: "TRAIN.PRINT_FREQ", value: 50 }, { key: "OUTPUT", value: "./train_log" }] },
    );
    expect(cfg.TRAIN.BATCH_SIZE).toBe(64);
    expect(cfg.TRAIN.EPOCHS).toBe(5);
    expect(cfg.AUG.TRAIN.RANDOMRESIZEDCROP.SCALE).toEqual([0.2, 1.0]);
    expect(cfg.QUANT.W.BIT_RANGE).toEqual([3, 5]);
    expect(cfg.LINEAR.BITS).toEqual(["fp", "4w4f"]);
    expect(cfg.SEED).toBeNull();
    expect(cfg.MODEL.PRETRAINED).toBe("123");
    expect(cfg.QUANT.BIT_CONFIG).toEqual([{ conv1: { w: 8, a: 8 } }]);
    expect(cfg.TRAIN.PRINT_FREQ).toBe(10); // the yaml sets 10: it beats the CLI default
    expect(cfg.OUTPUT).toBe("./train_log"); // the yaml does not set it: the CLI default stays
    expect(originOf(cfg, "TRAIN.BATCH_SIZE")).toBe("--opts");
    expect(originOf(cfg, "OUTPUT")).toBe("default");
  });

  it("returns a deeply frozen config", () => {
    const cfg = buildConfig({ TRAIN: { EPOCHS: 3 } });
    expect(cfg.TRAIN.EPOCHS).toBe(3);
    expect(() => {
      (cfg.TRAIN as { EPOCHS: number }).EPOCHS = 4;
    }).toThrow(TypeError);
    expect(() => {
      (cfg.MODEL.INPUTSHAPE as number[]).push(1);
    }).toThrow(TypeError);
  });

  it("withOverrides makes a new config and leaves the old one alone", () => {
    const a = buildConfig({ QUANT: { W: { BIT: 0 }, A: { BIT: 0 } } });
    const b = withOverrides(a, [
      { key: "QUANT.W.BIT", value: 4 },
      { key: "QUANT.A.BIT", value: 4 },
    ]);
    expect([a.QUANT.W.BIT, a.QUANT.A.BIT, b.QUANT.W.BIT, b.QUANT.A.BIT]).toEqual([0, 0, 4, 4]);
    expect(Object.isFrozen(b.QUANT.W)).toBe(true);
  });
});

describe("dumpConfig", () => {
  const all = [
    ...(hasReference ? NAMES.map((n) => path.join(REFERENCE, n)) : []),
    ...["cifar", "imagenet", "fmnist"].flatMap((g) => fs.readdirSync(path.join(PROJECT, g)).map((n) => path.join(PROJECT, g, n))),
  ];

  it.each(all.map((f) => [path.relative(path.resolve(__dirname, "../.."), f), f]))("round-trips %s", (_, file) => {
    const cfg = loadConfig(file);
    for (const docs of [false, true]) {
      const text = dumpConfig(cfg, { docs });
      expect(loadConfig(write(`dump/${path.basename(file)}`, text))).toEqual(cfg);
    }
  });

  it("writes every float with a decimal point and lists inline", () => {
    const text = dumpConfig(buildConfig({ TRAIN: { LR_SCHEDULER: { BASE_LR: 30 } }, MODEL: { INPUTSHAPE: [32, 32] } }));
    expect(text).toMatch(/^ {4}BASE_LR: 30\.0$/m);
    expect(text).toMatch(/^ {2}INPUTSHAPE: \[32, 32\]$/m);
    expect(text).toMatch(/^ {2}LABEL_SMOOTHING: 0\.0$/m);
    expect(text).toMatch(/^ {6}SCALE: \[0\.08, 1\.0\]$/m);
    expect(text).toMatch(/^SEED: null$/m);
  });
});

describe("indentFlowContinuations", () => {
  it("indents only a flow collection's under-indented lines, keeping line numbers", () => {
    const src = 'Q:\n    B: [{\n        "x": {"w": 8},\n    }]\n    C: a[b]\n';
    const out = indentFlowContinuations(src);
    expect(out).toBe('Q:\n    B: [{\n        "x": {"w": 8},\n      }]\n    C: a[b]\n');
  });
});
