import { describe, it } from "vitest";
import { runHostCheck } from "../helpers/host_check";

// The CUDA caching allocator's bookkeeping (native/core/block_pool.h) and SSQL_CUDA_ALLOC_CONF against a fake
// device, on the CPU (test/native/block_pool_check.cc).
describe("the CUDA caching allocator's block pool", () => {
  it("splits and merges blocks, fits best per stream, rounds to 512 B, recovers from out of memory, applies its options", () => {
    runHostCheck("block_pool_check");
  }, 120_000);
});
