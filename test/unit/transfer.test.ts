import { describe, expect, it } from "vitest";
import { tensor } from "../../lib/tensor/tensor";
import { toDevice, toDeviceAsync } from "../../lib/tensor/transfer";

// Moves between CPU and CUDA run in test/gpu/checks.ts; here, the same-device contract (as torch's .to()).
describe("toDevice", () => {
  it("returns the tensor itself when it is already on the device", async () => {
    const t = tensor([1, 2, 3], [3]).keep();
    expect(toDevice(t, "cpu")).toBe(t);
    expect(await toDeviceAsync(t, "cpu")).toBe(t);
    expect(Array.from(t.toArraySync())).toEqual([1, 2, 3]);
    t.dispose();
  });
});
