import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assertBackboneComplete, mapBackboneState, planBackboneKeys, plainKey, stateDictOf } from "../../lib/io/backbone_keys";
import type { HostTensor, HostTensors } from "../../lib/io/host_tensor";
import { loadTorchCheckpoint } from "../../lib/io/torch_pickle";

const ROOT = join(__dirname, "../..");
const FIXTURES = join(ROOT, "test/fixtures/checkpoints");
const readKeys = (name: string): Record<string, number[]> => JSON.parse(readFileSync(join(FIXTURES, name), "utf-8"));
const r18 = readKeys("cifar_resnet18_keys.json");
const r50 = readKeys("cifar_resnet50_keys.json");
const ssqlR18 = readKeys("ssql_simsiam_cifar_resnet18_keys.json");
const ssqlR50 = readKeys("ssql_simsiam_cifar_resnet50_keys.json");
const backbone = (keys: Record<string, number[]>) => Object.keys(keys).filter((k) => !k.startsWith("fc."));

/** A state dict with the given keys and shapes; the mapping reads only names and shapes, so the data stays empty. */
const fake = (keys: Record<string, number[]>, rename: (k: string) => string = (k) => k): HostTensors =>
  Object.fromEntries(Object.entries(keys).map(([k, shape]) => [rename(k), { dtype: "float32", shape, data: new Float32Array(0) } as HostTensor]));

describe("backbone key mapping", () => {
  it("the original's SSQL_SimSiam CIFAR R18 checkpoint has the 276 keys the spec records", () => {
    const keys = Object.keys(ssqlR18);
    expect(keys.length).toBe(276);
    expect(keys).toContain("encoder_q.model.conv1.bn_function.num_batches_tracked");
    expect(keys).toContain("encoder_q.model.layer4.1.conv2.weight_quantizer.weight");
    expect(keys).toContain("encoder_q.model.fc.6.output_quantizer.observer.max_val");
    expect(keys).toContain("predictor.3.bias");
  });

  it("undoes the QuantModel rewriting: convK.bn_function → bnK, downsample → downsample.0/.1, Sequential N → N+1", () => {
    expect(plainKey("conv1.bn_function.running_var")).toBe("bn1.running_var");
    expect(plainKey("layer1.0.conv1.bn_function.weight")).toBe("layer1.0.bn1.weight");
    expect(plainKey("layer3.2.conv3.bn_function.bias")).toBe("layer3.2.bn3.bias");
    expect(plainKey("layer2.0.downsample.weight")).toBe("layer2.0.downsample.0.weight");
    expect(plainKey("layer2.0.downsample.bn_function.num_batches_tracked")).toBe("layer2.0.downsample.1.num_batches_tracked");
    expect(plainKey("fc.3.bn_function.weight")).toBe("fc.4.weight");
    expect(plainKey("layer1.0.conv2.weight")).toBe("layer1.0.conv2.weight");
    expect(plainKey("layer1.0.conv2.weight_quantizer.weight")).toBeNull();
    expect(plainKey("conv1.output_quantizer.observer.min_val")).toBeNull();
    expect(plainKey("layer1.0.output_quantizer.observer.max_val")).toBeNull();
  });

  for (const [arch, ssql, plain] of [["CIFAR ResNet-18", ssqlR18, r18], ["CIFAR ResNet-50", ssqlR50, r50]] as const) {
    it(`finds every ${arch} backbone key (with its shape) in the original SSQL layout`, () => {
      const m = mapBackboneState(fake(ssql), plain);
      expect(m.prefix).toBe("encoder_q.model.");
      expect(m.layout).toBe("quant-model");
      expect(m.missing).toEqual([]);
      expect(m.missingOptional).toEqual([]);
      expect(m.unexpected).toEqual([]);
      expect(m.mismatched).toEqual([]);
      expect(m.missingClassifier.sort()).toEqual(["fc.bias", "fc.weight"]);
      expect(Object.keys(m.mapped).sort()).toEqual(backbone(plain).sort());
      expect(m.sources["layer1.0.bn2.running_mean"]).toBe("encoder_q.model.layer1.0.conv2.bn_function.running_mean");
      expect(m.sources["layer2.0.downsample.0.weight"]).toBe("encoder_q.model.layer2.0.downsample.weight");
      expect(m.sources["layer2.0.downsample.1.bias"]).toBe("encoder_q.model.layer2.0.downsample.bn_function.bias");
      expect(m.sources["bn1.weight"]).toBe("encoder_q.model.conv1.bn_function.weight");
      // Nothing is lost silently: every key is either mapped or deliberately dropped.
      expect(Object.keys(m.mapped).length + m.ignored.length).toBe(Object.keys(ssql).length);
      expect(m.ignored.every((k) => /quantizer|^predictor\.|^encoder_q\.model\.fc\./.test(k))).toBe(true);
      expect(() => assertBackboneComplete(m, "ckpt.pth.tar")).not.toThrow();
    });
  }

  it("chooses the prefix from the keys, whatever the file is called", () => {
    const cases: [string, (k: string) => string, string][] = [
      ["DDP-wrapped SSQL (issue #3: module.encoder_q.)", (k) => `module.${k}`, "module.encoder_q.model."],
      ["an original SimSiam checkpoint (module.encoder.)", (k) => k.replace(/^encoder_q\.model\./, "module.encoder."), "module.encoder."],
      ["our own SimSiam layout (encoder.)", (k) => k.replace(/^encoder_q\.model\./, "encoder."), "encoder."],
      ["a QuantModel linear-eval checkpoint (model.)", (k) => k.replace(/^encoder_q\./, ""), "model."],
      ["a raw backbone state dict", (k) => k.replace(/^encoder_q\.model\./, ""), ""],
    ];
    for (const [what, rename, prefix] of cases) {
      const layoutKeys = prefix.includes("model.") ? ssqlR18 : plainLayoutOf(ssqlR18);
      const m = mapBackboneState(fake(layoutKeys, rename), r18);
      expect(m.prefix, what).toBe(prefix);
      expect(m.missing, what).toEqual([]);
      expect(m.unexpected, what).toEqual([]);
    }
  });

  it("lists every missing backbone key and fails with that list", () => {
    const sd = fake(ssqlR18);
    delete sd["encoder_q.model.layer3.1.conv2.bn_function.running_mean"];
    delete sd["encoder_q.model.layer4.0.downsample.weight"];
    delete sd["encoder_q.model.layer4.0.downsample.weight_quantizer.weight"];
    const m = mapBackboneState(sd, r18);
    expect(m.missing.sort()).toEqual(["layer3.1.bn2.running_mean", "layer4.0.downsample.0.weight"]);
    expect(() => assertBackboneComplete(m, "ssql.pth.tar")).toThrow(
      /ssql\.pth\.tar: the checkpoint does not fit the backbone; .*2 backbone keys are missing: (layer3\.1\.bn2\.running_mean|layer4\.0\.downsample\.0\.weight), /,
    );
  });

  it("a checkpoint of another architecture fails with missing keys and shape mismatches, never silently", () => {
    const m = mapBackboneState(fake(ssqlR50), r18);
    expect(m.mismatched.length).toBeGreaterThan(0);
    expect(() => assertBackboneComplete(m, "r50.pth.tar")).toThrow(/shapes differ: .*checkpoint encoder_q\.model\..* vs backbone/);
    // What the original loads without a word when the path lacks a capital Q: nothing (§6.1: 100 + fc).
    const nothing = planBackboneKeys(["queue", "queue_ptr"], backbone(r18));
    expect(nothing.missing.length).toBe(100);
    expect(nothing.missingOptional.length).toBe(20);
  });

  it("treats num_batches_tracked as optional, as PyTorch's load_state_dict does", () => {
    const sd = fake(r18, (k) => `encoder.${k}`);
    for (const k of Object.keys(sd)) if (k.endsWith("num_batches_tracked")) delete sd[k];
    const m = mapBackboneState(sd, r18);
    expect(m.missing).toEqual([]);
    expect(m.missingOptional.length).toBe(20);
    const withoutCounters = Object.fromEntries(Object.entries(r18).filter(([k]) => !k.endsWith("num_batches_tracked")));
    const m2 = mapBackboneState(fake(ssqlR18), withoutCounters);
    expect(m2.unexpected).toEqual([]);
  });

  it("keeps the classifier when asked (fine-tuning from a linear-eval checkpoint)", () => {
    const m = mapBackboneState(fake(r18, (k) => `model.${k}`), r18, { keepClassifier: true });
    expect(m.missingClassifier).toEqual([]);
    expect(m.sources["fc.weight"]).toBe("model.fc.weight");
  });
});

/** The SSQL key list with the QuantModel layout undone, as a plain-model checkpoint would hold it. */
function plainLayoutOf(keys: Record<string, number[]>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const [k, shape] of Object.entries(keys)) {
    if (!k.startsWith("encoder_q.model.")) continue;
    const p = plainKey(k.slice("encoder_q.model.".length));
    if (p) out[`encoder_q.model.${p}`] = shape;
  }
  return out;
}

describe("the original's full-size SSQL checkpoint, written by PyTorch", () => {
  const python = join(ROOT, ".venv/bin/python");
  const cache = join(ROOT, ".cache/io");
  const file = join(cache, "ssql_simsiam_cifar_r18.pth.tar");
  const haveTorch = existsSync(python);

  it.skipIf(!haveTorch)("maps all 120 backbone tensors to the plain ResNet's values (skipped without .venv/bin/python)", async () => {
    if (!existsSync(file) || !existsSync(file.replace(".pth.tar", ".reference.json"))) {
      execFileSync(python, [join(ROOT, "test/fixtures/generate_checkpoints.py"), "ssql", cache], { stdio: "inherit" });
    }
    const ref = JSON.parse(readFileSync(file.replace(".pth.tar", ".reference.json"), "utf-8")) as {
      keys: string[];
      backbone: Record<string, { shape: number[]; sum: number; first: number[] }>;
    };
    const ckpt = (await loadTorchCheckpoint(file)) as { epoch: number; optimizer: { param_groups: unknown[] } };
    expect(ckpt.epoch).toBe(400);
    const sd = stateDictOf(ckpt, file);
    expect(Object.keys(sd)).toEqual(ref.keys);
    const m = mapBackboneState(sd, r18);
    assertBackboneComplete(m, file);
    expect(Object.keys(m.mapped).sort()).toEqual(Object.keys(ref.backbone).sort());
    for (const [key, want] of Object.entries(ref.backbone)) {
      const t = m.mapped[key];
      expect(t.shape, key).toEqual(want.shape);
      const values = t.dtype === "int64" ? Array.from(t.data as BigInt64Array, Number) : Array.from(t.data as Float32Array);
      expect(values.slice(0, 4), key).toEqual(want.first);
      const sum = values.reduce((a, b) => a + b, 0);
      expect(Math.abs(sum - want.sum), key).toBeLessThanOrEqual(1e-9 * Math.max(1, values.reduce((a, b) => a + Math.abs(b), 0)));
    }
    // The weight quantizer's copy is the same Parameter, so torch stored it once and both keys read the same values.
    expect(sd["encoder_q.model.layer1.0.conv1.weight_quantizer.weight"].data).toEqual(sd["encoder_q.model.layer1.0.conv1.weight"].data);
  });
});
