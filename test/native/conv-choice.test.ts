import { describe, it } from "vitest";
import { runHostCheck } from "../helpers/host_check";

// When the CUDA convolution adopts a cuDNN graph-API engine over the legacy algorithm (native/cuda/conv_choice.h),
// on the CPU (test/native/conv_choice_check.cc).
describe("the convolution engine choice", () => {
  it("adopts an engine only when it is 3% faster and matches the legacy output to 1e-5", () => {
    runHostCheck("conv_choice_check");
  }, 120_000);
});
