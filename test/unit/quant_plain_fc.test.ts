import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../lib/config";
import { buildSslMethod } from "../../lib/ssl/build";
import type { MoCo } from "../../lib/ssl/moco";
import { noGrad } from "../../lib/tensor/autograd";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";

/**
 * SSL.SETTING.MLP False: the plain `fc` head (the original's `model.fc = nn.Linear`) is a quantization unit named
 * `fc`, and an SSQL pass really quantizes its weight (before the fix it was registered but never called).
 */
const recipe = path.resolve(__dirname, "..", "..", "configs", "cifar", "resnet18_ssql_moco_cifar.yaml");

describe("SSQL_MoCo with SSL.SETTING.MLP False", () => {
  it("quantizes the plain fc head's weight at the sampled bits", () => {
    const cfg = loadConfig(recipe, [
      { key: "SSL.SETTING.MLP", value: false },
      { key: "SSL.SETTING.MOCO_K", value: 64 },
      { key: "QUANT.BIT_CONFIG", value: [{ conv1: { w: 8, a: 8 } }] },
    ]);
    const built = buildSslMethod(cfg, new Generator(0));
    const q = built.quant!;
    expect(q.layers.map((l) => l.name)).toContain("fc");
    const enc = (built.method as MoCo).encoder;
    const seen = new Map<string, number>();
    noGrad(() =>
      tidy(() => {
        const x = new Generator(1).normal([4, 3, 32, 32]);
        q.observe();
        enc.forward(x);
        q.fullPrecision();
        q.quantize(3, 8);
        const inner = enc.slot.hooks;
        enc.slot.hooks = {
          weight: (unit, w) => {
            const out = inner.weight(unit, w);
            if (unit === "fc") {
              const a = out.toArraySync();
              const cols = out.shape[1];
              let most = 0;
              for (let r = 0; r < out.shape[0]; r++) most = Math.max(most, new Set(a.subarray(r * cols, (r + 1) * cols)).size);
              seen.set("fc:weight", most);
            }
            return out;
          },
          output: (unit, y) => {
            if (unit === "fc") seen.set("fc:output", 1);
            return inner.output(unit, y);
          },
        };
        enc.forward(x);
        q.fullPrecision();
      }),
    );
    expect(seen.get("fc:output")).toBe(1);
    // 3-bit per-channel weights: at most 8 levels per output row (full precision has one per input).
    expect(seen.get("fc:weight")).toBeLessThanOrEqual(8);
    built.method.dispose();
    q.dispose();
  });
});
