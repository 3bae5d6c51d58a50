import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadCheckpoint } from "../../lib/io/checkpoint";
import { Conv2d } from "../../lib/nn/layers";
import { SGD } from "../../lib/optim/sgd";
import { cpuOps } from "../../lib/tensor/binding";
import { Generator } from "../../lib/tensor/ops/random";
import { tidy } from "../../lib/tensor/scope";
import type { Tensor } from "../../lib/tensor/tensor";
import { restoreTrainingState, saveTrainingState } from "../../lib/train/state";
import { randomTensor } from "../helpers/numeric";

const o = cpuOps();
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ssql-conv-alg-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** The choices made for problems whose key holds `shape` (the conv's N,C,H,W,O,...). */
function choicesFor(shape: string): [string, string][] {
  return Object.entries(o.convAlgorithms()).filter(([k]) => k.includes(shape));
}

/** The forward convolution of x by w (padding 1), read back. */
function convValues(x: Tensor, w: Tensor, stride: number): Float32Array {
  const y = o.conv2d(x.handle, w.handle, null, [stride, stride], [1, 1], [1, 1], 1);
  const values = o.toArray(y) as Float32Array;
  o.dispose(y);
  return values;
}

describe("CPU convolution algorithm per problem", () => {
  it("times each new problem once and keeps the fastest for every later call", () => {
    const x = randomTensor([3, 5, 9, 7], 1, false);
    const w = randomTensor([6, 5, 3, 3], 2, false);
    const conv = () => convValues(x, w, 1);
    const first = conv();
    const chosen = choicesFor(",3,5,9,7,6,3,3,");
    expect(chosen).toHaveLength(1);
    expect(chosen[0][0]).toMatch(/^fwd,/);
    expect(["blocked", "plain", "gemm", "winograd"]).toContain(chosen[0][1]);
    // The same problem again: no new entry, and the same algorithm computes the same bits.
    const again = conv();
    expect(choicesFor(",3,5,9,7,6,3,3,")).toEqual(chosen);
    expect(Buffer.from(again.buffer).equals(Buffer.from(first.buffer))).toBe(true);
    x.dispose();
    w.dispose();
  });

  it("adopts choices set from JavaScript and rejects unknown algorithms with their name", () => {
    o.setConvAlgorithms({ "fwd,1,2,3,4;t9": "gemm" });
    expect(o.convAlgorithms()["fwd,1,2,3,4;t9"]).toBe("gemm");
    expect(() => o.setConvAlgorithms({ "fwd,1,2,3,4;t9": "fft" })).toThrow(/'fft' is not 'blocked', 'plain', 'gemm' or 'winograd'/);
    expect(o.convAlgorithms()["fwd,1,2,3,4;t9"]).toBe("gemm");
    expect(() => o.setConvAlgorithms(["gemm"] as unknown as Record<string, string>)).toThrow(/must be an object/);
    expect(() => o.pinConvAlgorithm("fastest" as never)).toThrow(/'fastest' is not/);
  });

  it("times a problem again when a choice set from outside cannot run it (Winograd for a stride-2 convolution)", () => {
    const x = randomTensor([2, 4, 9, 9], 5, false);
    const w = randomTensor([6, 4, 3, 3], 6, false);
    const conv = () => convValues(x, w, 2);
    const reference = conv();
    const [key] = choicesFor(",2,4,9,9,6,3,3,2,2,")[0];
    o.setConvAlgorithms({ [key]: "winograd" });
    const again = conv();
    expect(o.convAlgorithms()[key]).not.toBe("winograd");
    for (let i = 0; i < reference.length; i++) expect(again[i]).toBeCloseTo(reference[i], 4);
    x.dispose();
    w.dispose();
  });

  it("is saved with the training state, and a resumed run adopts it", async () => {
    const conv = new Conv2d(4, 8, 3, new Generator(3), { padding: 1 });
    const optimizer = new SGD(conv.parameters(), { lr: 0.1 });
    const x = randomTensor([2, 4, 6, 6], 4, false);
    tidy(() => conv.forward(x).dispose());
    const key = choicesFor(",2,4,6,6,8,3,3,")[0][0];
    const saved = o.convAlgorithms()[key];
    const file = path.join(tmp, "checkpoint.json");
    await saveTrainingState(file, conv, optimizer, { epoch: 1, step: 1 });
    const ckpt = await loadCheckpoint(file);
    expect(ckpt.manifest.convAlgorithms?.[key]).toBe(saved);

    const other = saved === "gemm" ? "plain" : "gemm";
    o.setConvAlgorithms({ [key]: other });
    restoreTrainingState(ckpt, conv, optimizer, "cpu");
    expect(o.convAlgorithms()[key]).toBe(saved);

    const corrupt = { ...ckpt, manifest: { ...ckpt.manifest, convAlgorithms: { [key]: "direct" } } };
    expect(() => restoreTrainingState(corrupt, conv, optimizer, "cpu")).toThrow(/checkpoint\.json: its convAlgorithms cannot be adopted: .*'direct' is not/);
    x.dispose();
    conv.dispose();
  });
});
