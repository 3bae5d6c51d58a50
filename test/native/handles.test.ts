import { spawnSync } from "node:child_process";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { cpuOps } from "../../lib/tensor/binding";

// Tensor handles (native/core/binding.h): dispose() frees at once; a handle dropped without dispose() is freed by
// the garbage collector.
describe("tensor handles", () => {
  it("dispose frees the tensor at once; a second dispose is a no-op; a disposed handle is rejected by name", () => {
    const o = cpuOps();
    const before = o.memoryStats().storages;
    const x = o.full([1000], 1);
    expect(o.memoryStats().storages).toBe(before + 1);
    expect(o.isDisposed(x)).toBe(false);
    o.dispose(x);
    expect(o.memoryStats().storages).toBe(before);
    expect(o.isDisposed(x)).toBe(true);
    o.dispose(x);
    expect(() => o.mulScalar(x, 2)).toThrow(/mulScalar\(\): argument 0 'x' is a disposed tensor/);
    expect(() => o.mulScalar({} as never, 2)).toThrow(/expected a tensor handle/);
  });

  it("handles dropped without dispose are freed by the garbage collector", () => {
    const binding = path.resolve(__dirname, "..", "..", "lib", "tensor", "binding");
    const script = `
      const o = require(${JSON.stringify(binding)}).cpuOps();
      const base = o.memoryStats().storages;
      for (let i = 0; i < 2000; i++) o.full([256], i);
      const made = o.memoryStats().storages - base;
      (async () => {
        for (let k = 0; k < 10 && o.memoryStats().storages > base; k++) {
          global.gc();
          await new Promise((r) => setImmediate(r));
        }
        console.log(JSON.stringify({ made, left: o.memoryStats().storages - base }));
      })();`;
    const r = spawnSync(process.execPath, ["--expose-gc", "-e", script], { encoding: "utf8", timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    const { made, left } = JSON.parse(r.stdout.trim().split("\n").pop()!) as { made: number; left: number };
    expect(made).toBe(2000);
    expect(left).toBe(0);
  });
});
