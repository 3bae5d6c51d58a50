import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { assertBackboneComplete, mapBackboneState } from "../../lib/io/backbone_keys";
import type { HostTensor, HostTensors } from "../../lib/io/host_tensor";
import { createResNet } from "../../lib/nn/resnet";
import { SGD } from "../../lib/optim/sgd";
import { buildConfig } from "../../lib/config";
import { buildSslMethod } from "../../lib/ssl/build";
import { Generator } from "../../lib/tensor/ops/random";
import { loadIntoModel, readStateDict } from "../../lib/train/pretrained";
import { saveTrainingState } from "../../lib/train/state";

/**
 * Checkpoint layouts beyond the original's: this trainer's own tensors file named directly, solo-learn's and
 * lightly's `backbone.*` keys (a Lightning .ckpt keeps them under "state_dict"), lightly's torchvision ResNet
 * flattened into a Sequential; and the error for a real mismatch lists the layouts tried and what to pass.
 */
const net = createResNet("resnet18", new Generator(0), { numClasses: 10 });
const shapes: Record<string, number[]> = {};
for (const [k, t] of net.stateDict()) shapes[k] = [...t.shape];
const backbone = Object.keys(shapes).filter((k) => !k.startsWith("fc."));
const fake = (keys: string[], rename: (k: string) => string): HostTensors =>
  Object.fromEntries(keys.map((k) => [rename(k), { dtype: "float32", shape: shapes[k]!, data: new Float32Array(0) } as HostTensor]));

const TORCHVISION_CHILD: Record<string, string> = { conv1: "0", bn1: "1", layer1: "4", layer2: "5", layer3: "6", layer4: "7" };

describe("checkpoint layouts", () => {
  it("solo-learn / lightly: backbone.* keys beside the projector, found under the 'backbone.' prefix", () => {
    const sd = { ...fake(backbone, (k) => `backbone.${k}`), "projector.0.weight": { dtype: "float32", shape: [8, 512], data: new Float32Array(0) } as HostTensor };
    const m = mapBackboneState(sd, shapes);
    expect(m.prefix).toBe("backbone.");
    expect(m.missing).toEqual([]);
    expect(m.ignored).toContain("projector.0.weight");
  });

  it("lightly's nn.Sequential(*resnet.children()[:-1]): backbone.0 conv1, backbone.1 bn1, backbone.4..7 layer1..4", () => {
    const sd = fake(backbone, (k) => {
      const [head, ...rest] = k.split(".");
      return `backbone.${TORCHVISION_CHILD[head!]}.${rest.join(".")}`;
    });
    const m = mapBackboneState(sd, shapes);
    expect(m.missing).toEqual([]);
    expect(m.sources["layer3.1.conv2.weight"]).toBe("backbone.6.1.conv2.weight");
    expect(m.sources["bn1.running_var"]).toBe("backbone.1.running_var");
  });

  it("a real mismatch says which layouts were tried and what to pass instead", () => {
    const sd = fake(backbone, (k) => `trunk.${k}`);
    const m = mapBackboneState(sd, shapes);
    expect(() => assertBackboneComplete(m, "x.ckpt")).toThrow(/x\.ckpt: the checkpoint does not fit the backbone.*backbone keys are missing.*Layouts tried: the prefixes 'module\.encoder_q\.'.*'backbone\.'.*Pass an ssl run folder/);
  });

  it("MODEL.PRETRAINED may name the .safetensors file of one of this trainer's checkpoints", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-layout-"));
    const cfg = buildConfig({ MODEL: { ARCH: "cifar_resnet18", INPUTSHAPE: [32, 32] }, SSL: { TYPE: "SimSiam", SETTING: { DIM: 32, HIDDEN_DIM: 16 } } });
    const built = buildSslMethod(cfg, new Generator(1));
    const opt = new SGD(built.method.parameters(), { lr: 0.1, momentum: 0.9, weightDecay: 0 });
    await saveTrainingState(path.join(dir, "checkpoint.json"), built.method, opt, { epoch: 1, step: 1 });
    const tensorsFile = fs.readdirSync(dir).find((f) => f.endsWith(".safetensors"))!;
    const state = await readStateDict(path.join(dir, tensorsFile));
    expect(state.kind).toBe("trainer");
    const model = createResNet("cifar_resnet18", new Generator(2), { numClasses: 10 });
    const report = loadIntoModel(model, state, "cpu", "fresh");
    expect(report.mapping.missing).toEqual([]);
    expect(report.mapping.prefix).toBe("encoder.");
    const want = (built.method.namedParameters().find(([n]) => n === "encoder.layer1.0.conv1.weight")![1]).toArraySync();
    expect(Array.from(model.stateDict().get("layer1.0.conv1.weight")!.toArraySync())).toEqual(Array.from(want));
    opt.dispose();
    built.method.dispose();
    model.dispose();
  });
});
