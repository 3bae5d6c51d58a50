import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig, validateFor, withOverrides, type Config } from "../../lib/config";
import { ConfigError } from "../../lib/config/errors";
import { KEY_USE, type KeyUseCommand } from "../../lib/config/key_use";
import { leafEntries, type Leaf } from "../../lib/config/schema";
import { ensureCompiled, root } from "../distributed/helpers";

/**
 * No key is accepted and unused: every key of the schema is classified in lib/config/key_use.ts; a key that acts
 * is read where the table says; a key that has no effect stops the run, naming the key, at any value but the
 * default; and every yaml of the original (and ours) loads and, for each key it sets, acts or is accepted as
 * meaning what it meant there.
 */
const ssl = path.join(root, "configs", "cifar", "resnet18_ssql_simsiam_cifar.yaml");
const linear = path.join(root, "configs", "cifar", "resnet18_linear_eval_cifar.yaml");
const base: Record<KeyUseCommand, Config> = { ssl: loadConfig(ssl), linear: loadConfig(linear), ptq: loadConfig(linear) };

function errorOf(f: () => void): ConfigError {
  try {
    f();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

/** A value of the leaf's type other than its default. */
function otherValue(leaf: Leaf<unknown>): unknown {
  const d = leaf.defaultValue;
  switch (leaf.kind) {
    case "int":
      return d === null ? 5 : (d as number) + 3;
    case "float":
      return d === null ? 0.5 : (d as number) + 0.5;
    case "bool":
      return !d;
    case "str":
      return "something";
    case "ints":
      return [3];
    case "floats":
      return [0.5, 0.5];
    case "strs":
      return ["x"];
    default:
      throw new Error(`no other value for a ${leaf.kind}`);
  }
}

const leaves = leafEntries();

describe("every key of the schema does what it says, or stops the run", () => {
  it("classifies every key, and only keys of the schema", () => {
    expect(Object.keys(KEY_USE).sort()).toEqual(leaves.map(([k]) => k).sort());
  });

  for (const [key, use] of Object.entries(KEY_USE)) {
    if (!("acts" in use)) continue;
    it(`${key} is read where it acts (${use.acts.join(", ")})`, () => {
      const parts = key.split(".");
      const texts = use.acts.map((f) => fs.readFileSync(path.join(root, f), "utf8"));
      // The key's last name (and its section's, for generic names like ENABLE) occur in a file that reads it.
      const needed = parts.length > 1 ? parts.slice(-2) : parts;
      expect(texts.some((t) => needed.every((n) => t.includes(n))), `${key} in ${use.acts.join(", ")}`).toBe(true);
    });
  }

  const inert = leaves.filter(([k]) => "inert" in KEY_USE[k]!);
  for (const [key, leaf] of inert) {
    it(`${key}: a value other than the default stops every command, naming the key`, () => {
      const value = otherValue(leaf);
      for (const command of ["ssl", "linear", "ptq"] as const) {
        const e = errorOf(() => validateFor(command, withOverrides(base[command], [{ key, value }])));
        expect(e.key, `${command}: ${e.message}`).toBe(key);
        expect(e.message).toMatch(/supported: /);
      }
    });
  }

  it("keeps the accepted-with-a-meaning keys to the documented few", () => {
    const info = Object.entries(KEY_USE).filter(([, u]) => "info" in u).map(([k]) => k);
    expect(info.sort()).toEqual([
      "QUANT.CALIBRATION.BATCHSIZE", "QUANT.CALIBRATION.PATH", "QUANT.CALIBRATION.TYPE",
      "QUANT.FINETUNE.BRECQ.KEEP_GPU", "QUANT.FINETUNE.ENABLE",
      "TRAIN.METER.ACC.TOPK", "TRAIN.METER.NAME", "TRAIN.RUNNER.NAME", "TRAIN.USE_DDP",
    ]);
  });

  const cases: [string, unknown, KeyUseCommand, RegExp][] = [
    ["TRAIN.OPTIMIZER.NAME", "adamw", "ssl", /'adamw' is not supported; supported: sgd, lars/],
    ["TRAIN.OPTIMIZER.NAME", "adam", "linear", /supported: sgd, lars/],
    ["TRAIN.LR_SCHEDULER.TYPE", "step", "ssl", /'step' is not supported; supported: cosine, multiStep/],
    ["TRAIN.LR_SCHEDULER.TYPE", "specificStep", "linear", /supported: cosine, multiStep/],
    ["TRAIN.LOSS.CRITERION.NAME", "InfoNCEv2", "ssl", /does not apply to SSL.TYPE SSQL_SimSiam; supported for SSQL_SimSiam: CosineSimilarity/],
    ["TRAIN.LOSS.CRITERION.NAME", "LpLoss", "linear", /not supported by linear; supported: CrossEntropy/],
    ["TRAIN.LOSS.REGULARIZER.NAME", "PACT", "ssl", /PACT .*supported: Slimming/],
    ["TRAIN.LOSS.REGULARIZER.NAME", "Slimming", "linear", /supported: empty/],
    ["TRAIN.LABEL_SMOOTHING", 0.1, "ssl", /supported: 0/],
    ["TRAIN.RUNNER.NAME", "default", "ssl", /supported for ssl: ssl/],
    ["TRAIN.START_EPOCH", 800, "ssl", /leaves no epoch to run/],
    ["QUANT.BIT_ASSIGNER.NAME", "HAWQ", "ssl", /HAWQ bit assigner .* not implemented/],
    ["SSL.TYPE", "RSSQL_BYOL", "ssl", /unknown SSL method 'RSSQL_BYOL'.*allowed: SimSiam, SSQL_SimSiam, BYOL, SSQL_BYOL, MoCo, SSQL_MoCo, SimCLR/],
  ];
  for (const [key, value, command, message] of cases) {
    it(`${command}: ${key} ${String(value)} stops the run naming the key`, () => {
      const e = errorOf(() => validateFor(command, withOverrides(base[command], [{ key, value }])));
      expect(e.key).toBe(key);
      expect(e.message).toContain(key);
      expect(e.message).toMatch(message);
    });
  }

  it("accepts what the original's configs use: sgd, lars, cosine, multiStep, Slimming in ssl", () => {
    for (const [key, value] of [["TRAIN.OPTIMIZER.NAME", "lars"], ["TRAIN.LR_SCHEDULER.TYPE", "multiStep"], ["TRAIN.LOSS.REGULARIZER.NAME", "Slimming"], ["TRAIN.LR_SCHEDULER.TYPE", null]] as const) {
      validateFor("ssl", withOverrides(base.ssl, [{ key, value }]));
    }
  });
});

describe("the original's yamls (and ours) load, and every key they set acts or means what it meant", () => {
  const dirs = ["test/fixtures/reference-configs/cifar", "test/fixtures/reference-configs/imagenet", "configs/cifar", "configs/imagenet", "configs/fmnist"];
  const reference = JSON.parse(fs.readFileSync(path.join(root, "test", "fixtures", "reference-configs.json"), "utf8")) as Record<string, Record<string, unknown>>;
  for (const dir of dirs) {
    for (const name of fs.readdirSync(path.join(root, dir)).filter((f) => f.endsWith(".yaml"))) {
      it(`${dir}/${name}`, () => {
        const cfg = loadConfig(path.join(root, dir, name));
        const command: KeyUseCommand = cfg.TRAIN.RUNNER.NAME === "ssl" ? "ssl" : "linear";
        validateFor(command, cfg);
        const set = dir.startsWith("test/") ? Object.keys(reference[`${path.basename(dir)}/${name}`] ?? {}) : [];
        if (dir.startsWith("test/")) expect(set.length, "reference-configs.json lists the file").toBeGreaterThan(0);
        for (const key of set) expect(KEY_USE[key], key).toBeDefined();
      });
    }
  }
});

describe("CLI: a key set to what the trainer cannot honour stops the command, naming the key", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-keyuse-"));
  const cli = (args: string[]) => spawnSync(process.execPath, [path.join(root, "lib", "main.js"), ...args], { cwd: root, encoding: "utf8" });
  it("ssl with TRAIN.OPTIMIZER.NAME adamw, and with an original checkpoint.pth.tar as MODEL.CHECKPOINT", () => {
    ensureCompiled();
    const r = cli(["ssl", "--config", ssl, "--output", tmp, "--opts", "TRAIN.OPTIMIZER.NAME", "adamw"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/TRAIN\.OPTIMIZER\.NAME: 'adamw' is not supported; supported: sgd, lars/);
    const pth = path.join(tmp, "checkpoint.pth.tar");
    fs.writeFileSync(pth, Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0, 0]));
    const r2 = cli(["ssl", "--config", ssl, "--output", tmp, "--opts", "MODEL.CHECKPOINT", pth]);
    expect(r2.status).not.toBe(0);
    expect(r2.stderr).toMatch(/MODEL\.CHECKPOINT: .*checkpoint\.pth\.tar is a zip archive.*ssl resumes only this trainer's checkpoints/);
    const r3 = cli(["ssl", "--config", ssl, "--output", tmp, "--opts", "MODEL.CHECKPOINT", path.join(tmp, "missing.json")]);
    expect(r3.stderr).toMatch(/MODEL\.CHECKPOINT: file not found/);
  });

  it("the original's default and draw commands say what to use instead", () => {
    ensureCompiled();
    const d = cli(["default", "--config", linear]);
    expect(d.status).toBe(2);
    expect(d.stderr).toMatch(/command 'default': .*use 'linear' with TRAIN\.LINEAR_EVAL False/);
    const w = cli(["draw"]);
    expect(w.status).toBe(2);
    expect(w.stderr).toMatch(/command 'draw': .*not implemented/);
  });
});
