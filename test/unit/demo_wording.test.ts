import { existsSync } from "node:fs";
import * as path from "node:path";
import { describe, expect, it, vi } from "vitest";
import { demo, DEMO_CAVEAT } from "../../lib/cli/demo";

const root = path.resolve(__dirname, "..", "..");

describe("demo wording", () => {
  it("says it shows the pipeline, not SSQL's effect, and points to the results page and the reproduction", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      expect(await demo(["--help"])).toBe(0);
      const help = log.mock.calls.map((c) => String(c[0])).join("\n");
      for (const text of [help, DEMO_CAVEAT]) {
        expect(text).toMatch(/pipeline working/);
        expect(text).toMatch(/not SSQL's\s+effect/);
        expect(text).toContain("docs/results.md");
        expect(text).toContain("npm run reproduce");
      }
    } finally {
      log.mockRestore();
    }
    // The pointer leads somewhere.
    expect(existsSync(path.join(root, "docs", "results.md"))).toBe(true);
    expect((require(path.join(root, "package.json")) as { scripts: Record<string, string> }).scripts.reproduce).toMatch(/node lib\/main\.js reproduce/);
  });
});
