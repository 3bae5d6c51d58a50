import { defineConfig } from "vitest/config";

export default defineConfig({
  // Compiled .js files sit beside the .ts sources in lib/; tests must import the sources.
  resolve: { extensions: [".ts", ".mts", ".js", ".mjs", ".json"] },
  test: {
    include: ["test/**/*.test.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
});
