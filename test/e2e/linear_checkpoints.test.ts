import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { bitsOption, parseCommandArgs } from "../../lib/cli/args";
import { buildConfig } from "../../lib/config";
import { saveCheckpoint } from "../../lib/io/checkpoint";
import type { HostTensors } from "../../lib/io/host_tensor";
import { createResNet } from "../../lib/nn/resnet";
import { SGD } from "../../lib/optim/sgd";
import { buildSslMethod } from "../../lib/ssl/build";
import { Generator } from "../../lib/tensor/ops/random";
import { runLinear } from "../../lib/train/linear";
import { loadIntoModel, readStateDict } from "../../lib/train/pretrained";
import { saveTrainingState } from "../../lib/train/state";

const ROOT = join(__dirname, "../..");
const FIXTURES = join(ROOT, "test/fixtures/checkpoints");
const python = join(ROOT, ".venv/bin/python");
const haveTorch = existsSync(python);
const haveFmnist = existsSync("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");

/** The original's full-size CIFAR R18 SSQL_SimSiam checkpoint.pth.tar (QuantModel layout), as the io tests generate it. */
function originalSsqlCheckpoint(): string {
  const cache = join(ROOT, ".cache/io");
  const file = join(cache, "ssql_simsiam_cifar_r18.pth.tar");
  if (!existsSync(file) || !existsSync(file.replace(".pth.tar", ".reference.json"))) {
    execFileSync(python, [join(ROOT, "test/fixtures/generate_checkpoints.py"), "ssql", cache], { stdio: "inherit" });
  }
  return file;
}

const classifier = () => createResNet("cifar_resnet18", new Generator(0), { numClasses: 10 });

describe("linear: loading a backbone from an SSL checkpoint", () => {
  it.skipIf(!haveTorch)("the original's SSQL checkpoint.pth.tar loads every backbone tensor, with the values PyTorch wrote", async () => {
    const file = originalSsqlCheckpoint();
    const ref = JSON.parse(readFileSync(file.replace(".pth.tar", ".reference.json"), "utf-8")) as {
      backbone: Record<string, { shape: number[]; sum: number; first: number[] }>;
    };
    const state = await readStateDict(file);
    expect(state.kind).toBe("torch");
    const model = classifier();
    const fcBefore = Array.from(model.fc.stateDict().get("weight")!.toArraySync() as Float32Array);
    const report = loadIntoModel(model, state, "cpu", "fresh");
    expect(report.mapping.prefix).toBe("encoder_q.model.");
    expect(report.mapping.layout).toBe("quant-model");
    const own = model.stateDict();
    const backboneKeys = [...own.keys()].filter((k) => !k.startsWith("fc."));
    expect(report.loaded).toBe(backboneKeys.length);
    expect(backboneKeys.length).toBe(100);
    for (const k of backboneKeys) {
      const want = ref.backbone[k];
      expect(want, k).toBeDefined();
      const values = Array.from(own.get(k)!.toArraySync() as Float32Array);
      expect([...own.get(k)!.shape], k).toEqual(want.shape);
      expect(values.slice(0, 4), k).toEqual(want.first.map((v) => Math.fround(v)));
      const sum = values.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - want.sum), k).toBeLessThanOrEqual(1e-6 * Math.max(1, values.reduce((a, b) => a + Math.abs(b), 0)));
    }
    // The classifier keeps its fresh init: the checkpoint's fc is the SSL projector.
    expect(Array.from(model.fc.stateDict().get("weight")!.toArraySync() as Float32Array)).toEqual(fcBefore);
    model.dispose();
  });

  it.skipIf(!haveTorch)("a checkpoint missing a backbone key fails and lists it (the original silently kept a random layer)", async () => {
    const state = await readStateDict(originalSsqlCheckpoint());
    delete state.tensors["encoder_q.model.layer3.1.conv2.bn_function.running_var"];
    delete state.tensors["encoder_q.model.layer2.0.downsample.weight"];
    delete state.tensors["encoder_q.model.layer2.0.downsample.weight_quantizer.weight"];
    const model = classifier();
    expect(() => loadIntoModel(model, state, "cpu", "fresh")).toThrow(
      /the checkpoint does not fit the backbone.*2 backbone keys are missing: (layer2\.0\.downsample\.0\.weight, layer3\.1\.bn2\.running_var|layer3\.1\.bn2\.running_var, layer2\.0\.downsample\.0\.weight)/,
    );
    model.dispose();
  });

  it("our own SimSiam checkpoint (keys model.encoder.<name>) loads every backbone tensor with its value", async () => {
    const dir = mkdtempSync(join(tmpdir(), "linear-own-"));
    const cfg = buildConfig({ MODEL: { ARCH: "cifar_resnet18" }, SSL: { TYPE: "SimSiam", SETTING: { DIM: 64, HIDDEN_DIM: 32 } } });
    const { method } = buildSslMethod(cfg, new Generator(7));
    await saveTrainingState(join(dir, "checkpoint.json"), method, new SGD(method.parameters(), { lr: 0.1 }), { epoch: 1, step: 1, config: { ssl: "SimSiam" } });
    const state = await readStateDict(dir);
    expect(state.kind).toBe("trainer");
    const model = classifier();
    const report = loadIntoModel(model, state, "cpu", "fresh");
    expect(report.mapping.prefix).toBe("encoder.");
    const src = method.stateDict();
    for (const [k, t] of model.stateDict()) {
      if (k.startsWith("fc.")) continue;
      expect(Array.from(t.toArraySync() as Float32Array), k).toEqual(Array.from(src.get(`encoder.${k}`)!.toArraySync() as Float32Array));
    }
    model.dispose();
    method.dispose();
  });

  it.skipIf(!haveFmnist)("a trainer checkpoint with a missing backbone key stops the linear command with the list", async () => {
    const dir = mkdtempSync(join(tmpdir(), "linear-missing-"));
    const model = classifier();
    const tensors: HostTensors = {};
    for (const [k, t] of model.stateDict()) {
      if (k === "layer4.1.bn2.running_var" || k.startsWith("fc.")) continue;
      tensors[`model.encoder.${k}`] = { dtype: "float32", shape: [...t.shape], data: t.toArraySync() as Float32Array };
    }
    model.dispose();
    await saveCheckpoint(join(dir, "checkpoint.json"), tensors, { epoch: 1, step: 1 });
    const cfg = buildConfig({
      MODEL: { ARCH: "cifar_resnet18", NUM_CLASSES: 10, INPUTSHAPE: [16, 16], PRETRAINED: dir },
      TRAIN: { DATASET: "fmnist", EPOCHS: 1, BATCH_SIZE: 8, LINEAR_EVAL: true, LR_SCHEDULER: { BASE_LR: 0.1 } },
      DATA: { TRAIN_SUBSET: 8, VAL_SUBSET: 8 },
    } as never);
    await expect(runLinear({ cfg, output: join(dir, "out"), device: "cpu", workers: 1, printFreq: 1, resume: false, quiet: true })).rejects.toThrow(
      /checkpoint\.json: the checkpoint does not fit the backbone; .*1 backbone keys are missing: layer4\.1\.bn2\.running_var/,
    );
  }, 60_000);

  it("with WARMUP_FC (fine-tuning, ptq) the classifier must come from the checkpoint too", async () => {
    const dir = mkdtempSync(join(tmpdir(), "linear-warmup-"));
    const model = classifier();
    const tensors: HostTensors = {};
    for (const [k, t] of model.stateDict()) if (!k.startsWith("fc.")) tensors[`model.${k}`] = { dtype: "float32", shape: [...t.shape], data: t.toArraySync() as Float32Array };
    await saveCheckpoint(join(dir, "checkpoint.json"), tensors, { epoch: 1, step: 1 });
    expect(() => loadIntoModel(model, readStateDictSync(tensors, dir), "cpu", "required")).toThrow(/holds no trained classifier \(missing fc\.weight, fc\.bias\)/);
    model.dispose();
  });
});

function readStateDictSync(tensors: HostTensors, dir: string) {
  const stripped: HostTensors = {};
  for (const [k, t] of Object.entries(tensors)) stripped[k.slice("model.".length)] = t;
  return { file: join(dir, "checkpoint.json"), kind: "trainer" as const, tensors: stripped };
}

describe("linear: bad input gives errors that name the problem", () => {
  const dir = mkdtempSync(join(tmpdir(), "linear-bad-"));
  const write = (name: string, bytes: Uint8Array | string) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    return p;
  };

  it("unreadable and foreign files", async () => {
    await expect(readStateDict(join(dir, "nothing-here.pth.tar"))).rejects.toThrow(/nothing-here\.pth\.tar: no such file or folder/);
    await expect(readStateDict(write("notes.pth", "just some text\n"))).rejects.toThrow(/notes\.pth: not a checkpoint: the file is of an unknown format/);
    await expect(readStateDict(write("image.pth", Buffer.from("89504e470d0a1a0a0000000d49484452", "hex")))).rejects.toThrow(/image\.pth: not a checkpoint: the file is a PNG image/);
    await expect(readStateDict(write("empty.pth.tar", ""))).rejects.toThrow(/empty\.pth\.tar: not a checkpoint: the file is empty/);
    await expect(readStateDict(write("other.json", '{"hello": 1}'))).rejects.toThrow(/other\.json: not a checkpoint manifest/);
    const torchFile = readFileSync(join(FIXTURES, "original_like.pth.tar"));
    await expect(readStateDict(write("truncated.pth.tar", torchFile.subarray(0, torchFile.length - 200)))).rejects.toThrow(/truncated\.pth\.tar: /);
    copyFileSync(join(FIXTURES, "legacy.pt"), join(dir, "legacy.pt"));
    await expect(readStateDict(join(dir, "legacy.pt"))).rejects.toThrow(/legacy\.pt: this is PyTorch's legacy checkpoint format/);
    mkdirSync(join(dir, "empty-folder"));
    await expect(readStateDict(join(dir, "empty-folder"))).rejects.toThrow(/empty-folder[/\\]checkpoint\.json: no checkpoint here/);
  });

  it("a pickle that asks to execute code is refused, and nothing runs", async () => {
    await expect(readStateDict(join(FIXTURES, "os_system.pt"))).rejects.toThrow(/os_system\.pt: refusing to load (posix|os)\.system: the checkpoint asks to run code/);
    await expect(readStateDict(join(FIXTURES, "os_system.pkl"))).rejects.toThrow(/os_system\.pkl: this is PyTorch's legacy checkpoint format/);
  });

  it("a checkpoint of another architecture fails with shape mismatches", async () => {
    const state = await readStateDict(join(FIXTURES, "original_like.pth.tar"));
    const model = classifier();
    expect(() => loadIntoModel(model, state, "cpu", "fresh")).toThrow(/original_like\.pth\.tar: the checkpoint does not fit the backbone.*backbone keys are missing/);
    model.dispose();
  });

  it("bit settings written wrong", () => {
    for (const bad of ["4w", "w4f4", "4w4", "8x8f", "4w99f", ""]) {
      expect(() => parseCommandArgs("linear", ["--config", "c.yaml", "--bits", bad], [bitsOption]), bad).toThrow(
        bad === "" ? /option --bits: expects at least one setting/ : bad === "4w99f" ? /option --bits: bad bit setting '4w99f': bit widths must be in 0\.\.16/ : new RegExp(`option --bits: bad bit setting '${bad}': expected 'fp' or '<W>w<A>f'`),
      );
    }
    const ok = parseCommandArgs("linear", ["--config", "c.yaml", "--bits", "fp,8w8f, 4w4f,2w4f"], [bitsOption]);
    expect("options" in ok && ok.options.extra.bits).toEqual(["fp", "8w8f", "4w4f", "2w4f"]);
    expect(() => buildConfig({ LINEAR: { BITS: ["fp", "w4f4"] } })).toThrow(/LINEAR\.BITS: bad bit setting 'w4f4'/);
  });
});
