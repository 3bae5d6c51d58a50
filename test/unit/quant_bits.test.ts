import { describe, expect, it } from "vitest";
import { formatBitSetting, parseBitSetting, resolveBitConfig, validateBits } from "../../lib/quant/bits";
import { buildConfig } from "../../lib/config";
import { quantSideSpec } from "../../lib/quant/config";

// The CIFAR ResNet-18 SSQL encoder's quantized layers (subset) and the shipped BIT_CONFIG (resnet18_ssql_simsiam_cifar.yaml).
const layers = [
  { name: "conv1", hasWeight: true, hasAct: true },
  { name: "layer1.0", hasWeight: false, hasAct: true },
  { name: "layer1.0.conv1", hasWeight: true, hasAct: true },
  { name: "layer1.0.conv2", hasWeight: true, hasAct: true },
  { name: "layer2.0.downsample", hasWeight: true, hasAct: true },
  { name: "fc.0", hasWeight: true, hasAct: true },
];
const shipped = [{ conv1: { w: 8, a: 8 }, "layer1.0.conv2": { a: 0 }, "layer2.0.downsample": { a: 0 }, "fc.0": { w: 8, a: 0 } }];

describe("bit configs", () => {
  it("uniform bits, then per-layer overrides (the original's allocate_bit)", () => {
    const r = resolveBitConfig(layers, 4, 6, shipped);
    expect(Object.fromEntries(r)).toEqual({
      conv1: { w: 8, a: 8 },
      "layer1.0": { a: 6 },
      "layer1.0.conv1": { w: 4, a: 6 },
      "layer1.0.conv2": { w: 4, a: 0 },
      "layer2.0.downsample": { w: 4, a: 0 },
      "fc.0": { w: 8, a: 0 },
    });
    // A plain mapping works as the one-element list; null entries are skipped like the original's None.
    expect(resolveBitConfig(layers, 2, 4, { conv1: { w: null, a: 8 } } as never).get("conv1")).toEqual({ w: 2, a: 8 });
    expect(resolveBitConfig(layers, 2, 4, []).get("conv1")).toEqual({ w: 2, a: 4 });
  });

  it("an unknown layer name is an error listing the valid names", () => {
    expect(() => resolveBitConfig(layers, 4, 4, [{ "layer9.0.conv1": { w: 2 } }])).toThrow(
      'QUANT.BIT_CONFIG[0]["layer9.0.conv1"]: no quantized layer named \'layer9.0.conv1\'; valid names: conv1, layer1.0, layer1.0.conv1, layer1.0.conv2, layer2.0.downsample, fc.0',
    );
  });

  it("bad entries name the key and the allowed values", () => {
    expect(() => resolveBitConfig(layers, 4, 4, [{ conv1: { w: 17 } }])).toThrow(/QUANT.BIT_CONFIG\[0\]\["conv1"\].w: bit width must be an integer in 0..16/);
    expect(() => resolveBitConfig(layers, 4, 4, [{ conv1: { w: 2.5 } }])).toThrow(/\["conv1"\].w: bit width must be an integer/);
    expect(() => resolveBitConfig(layers, 4, 4, [{ conv1: { b: 4 } }] as never)).toThrow("QUANT.BIT_CONFIG[0][\"conv1\"]: unknown key 'b'; allowed: w, a");
    expect(() => resolveBitConfig(layers, 4, 4, [{ "layer1.0": { w: 4 } }])).toThrow(/\["layer1.0"\].w: layer 'layer1.0' has no weight quantizer/);
    expect(() => resolveBitConfig(layers, 4, 4, [{ conv1: 8 }] as never)).toThrow(/expected \{"w": bits, "a": bits\}/);
    expect(() => resolveBitConfig(layers, 4, 4, [{}, {}])).toThrow(/at most one mapping/);
    expect(() => resolveBitConfig(layers, -1, 4)).toThrow(/QUANT.W.BIT: bit width must be an integer in 0..16/);
    expect(() => validateBits(true, "x")).toThrow(/x: bit width/);
  });

  it("parses and formats bit settings", () => {
    expect(parseBitSetting("fp")).toEqual({ w: 0, a: 0 });
    expect(parseBitSetting("8w8f")).toEqual({ w: 8, a: 8 });
    expect(parseBitSetting("4w4f")).toEqual({ w: 4, a: 4 });
    expect(parseBitSetting("2w4f")).toEqual({ w: 2, a: 4 });
    expect(formatBitSetting({ w: 2, a: 4 })).toBe("2w4f");
    expect(formatBitSetting({ w: 0, a: 0 })).toBe("fp");
    for (const bad of ["4w", "w4f4", "4f4w", "4w4", "", "fp32", "4w17f"])
      expect(() => parseBitSetting(bad), bad).toThrow(/invalid bit setting|bit width must be/);
    expect(() => parseBitSetting("4w")).toThrow("invalid bit setting '4w': expected 'fp' or '<W>w<A>f' such as '8w8f', '4w4f' or '2w4f'");
  });

  it("builds quantizer specs from the loaded QUANT.W / QUANT.A, validated once by the config", () => {
    expect(quantSideSpec(buildConfig({ QUANT: { W: { BIT: 0 } } }).QUANT.W, "QUANT.W")).toEqual({
      bits: 0, bitRange: [2, 9], symmetric: true, perChannel: true, observer: "MINMAX", alpha: 0.0001, bins: 2049,
    });
    expect(quantSideSpec(buildConfig().QUANT.A, "QUANT.A")).toEqual({
      bits: 8, bitRange: [4, 9], symmetric: false, perChannel: false, observer: "MINMAX", alpha: 0.0001, bins: 2049,
    });
    expect(quantSideSpec(buildConfig({ QUANT: { A: { OBSERVER_METHOD: { NAME: "PERCENTILE", ALPHA: 0.01, BINS: 511 } } } }).QUANT.A, "QUANT.A")).toMatchObject({
      observer: "PERCENTILE", alpha: 0.01, bins: 511,
    });
    // Bits, ranges, granularity and types are the config's to check (one validation, lib/config/validate.ts).
    expect(() => buildConfig({ QUANT: { A: { BIT: 20 } } })).toThrow(/QUANT.A.BIT: 20 bits is outside 0..16/);
    expect(() => buildConfig({ QUANT: { W: { BIT_RANGE: [9, 2] } } })).toThrow(/QUANT.W.BIT_RANGE: \[9, 2\] is empty or inverted/);
    expect(() => buildConfig({ QUANT: { W: { BIT_RANGE: [4, 4] } } })).toThrow(/QUANT.W.BIT_RANGE/);
    expect(() => buildConfig({ QUANT: { W: { BIT_RANGE: [2, 18] } } })).toThrow(/QUANT.W.BIT_RANGE: \[2, 18\] draws bits outside 0..16/);
    expect(() => buildConfig({ QUANT: { W: { GRANULARITY: "groupwise" as never } } })).toThrow("QUANT.W.GRANULARITY: unknown granularity 'groupwise'; allowed: channelwise, layerwise");
    expect(() => buildConfig({ QUANT: { W: { SYMMETRY: "yes" as never } } })).toThrow(/QUANT.W.SYMMETRY: expected bool, got "yes"/);
    // What the original offers and the config accepts, but this trainer does not implement.
    expect(() => quantSideSpec(buildConfig({ QUANT: { A: { OBSERVER_METHOD: { NAME: "BASIC" } } } }).QUANT.A, "QUANT.A")).toThrow(
      'QUANT.A.OBSERVER_METHOD.NAME: got "BASIC"; allowed: MINMAX, MOMENTUM_MINMAX, MSE, HISTOGRAM, PERCENTILE, KL_HISTOGRAM, GAUSSIAN',
    );
    // Observer parameters out of range, named by their key.
    const side = (m: Record<string, unknown>) => buildConfig({ QUANT: { A: { OBSERVER_METHOD: { NAME: "PERCENTILE", ...m } } } }).QUANT.A;
    for (const alpha of [-0.1, 1.5])
      expect(() => quantSideSpec(side({ ALPHA: alpha }), "QUANT.A")).toThrow(`QUANT.A.OBSERVER_METHOD.ALPHA: the share of largest |x| the PERCENTILE observer cuts off must be a number in [0, 1] (0.0001: 0.01 %), got ${alpha}`);
    for (const bins of [0, -3])
      expect(() => quantSideSpec(side({ BINS: bins }), "QUANT.A")).toThrow(`QUANT.A.OBSERVER_METHOD.BINS: the KL_HISTOGRAM observer's histogram bins must be an integer in 1..1048576, got ${bins}`);
    expect(() => quantSideSpec(buildConfig({ QUANT: { W: { QUANTIZER: "LSQ" } } }).QUANT.W, "QUANT.W")).toThrow('QUANT.W.QUANTIZER: got "LSQ"; allowed: uniform');
  });
});
