import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureCompiled, launch, tempDir, workers } from "./helpers";

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

async function until<T>(f: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const readPid = (dir: string, r: number) => {
  const f = path.join(dir, `pid${r}`);
  return fs.existsSync(f) && fs.readFileSync(f, "utf8") ? Number(fs.readFileSync(f, "utf8")) : undefined;
};

// The promise of the architecture: a failed rank ends the whole job within seconds with its error, never a hang.
const LIMIT_S = 10;

describe("a failing rank ends the job", () => {
  beforeAll(() => ensureCompiled());

  it(`an exception in rank 1 stops every rank within ${LIMIT_S} s and reports its error`, async () => {
    const dir = tempDir("throw");
    const run = await launch("failure.js", 3, { OUT_DIR: dir, FAIL_MODE: "throw", FAIL_RANK: "1", FAIL_STEP: "3" });
    expect(run.failedRank).toBe(1);
    expect(run.exitCode).toBe(1);
    expect(run.message).toMatch(/^rank 1 failed: exit code 1; its last error lines:\n {2}Error: boom from rank 1 at step 3\n/);
    expect(run.stderr).toContain(run.message!);
    expect(run.stdout).toMatch(/\[rank 2\] step 2\n/);
    expect(run.seconds).toBeLessThan(LIMIT_S);
    for (const r of [0, 1, 2]) expect(alive(readPid(dir, r)!)).toBe(false);
  });

  it(`killing rank 1 mid-run (SIGKILL) ends the job within ${LIMIT_S} s`, async () => {
    const dir = tempDir("kill");
    let seen = "";
    const out = new (await import("node:stream")).PassThrough();
    out.on("data", (d: Buffer) => (seen += d.toString()));
    const running = launch("failure.js", 2, { OUT_DIR: dir, FAIL_MODE: "none" }, { stdout: out });
    const pid = await until(() => (/\[rank 1\] step 3\n/.test(seen) ? readPid(dir, 1) : undefined), 60_000, "rank 1 to reach step 3");
    const rank0 = readPid(dir, 0)!;
    const t0 = performance.now();
    process.kill(pid, "SIGKILL");
    const run = await running;
    const seconds = (performance.now() - t0) / 1000;
    expect(run.failedRank).toBe(1);
    expect(run.exitCode).toBe(128 + 9);
    expect(run.message).toMatch(/^rank 1 failed: killed by SIGKILL/);
    expect(seconds).toBeLessThan(LIMIT_S);
    expect(alive(rank0)).toBe(false);
  });

  it("a rank that stops taking part makes the others' collective fail after the group timeout", async () => {
    const dir = tempDir("hang");
    const run = await launch("failure.js", 2, { OUT_DIR: dir, FAIL_MODE: "hang", FAIL_RANK: "1", FAIL_STEP: "2", SSQL_DIST_TIMEOUT: "2" });
    expect(run.failedRank).toBe(0);
    expect(run.message).toMatch(/^rank 0 failed: exit code 1; its last error lines:\n {2}Error: allReduceAsync_ \(gloo, rank 0 of 2\): .*[Tt]imed out/);
    expect(run.seconds).toBeGreaterThan(2);
    expect(run.seconds).toBeLessThan(2 + LIMIT_S);
    expect(alive(readPid(dir, 1)!)).toBe(false);
  });
});

describe("stopping the launcher stops the workers", () => {
  beforeAll(() => ensureCompiled());

  const startLauncher = (dir: string) => {
    const child = spawn(process.execPath, [path.join(workers, "launcher.js"), "2"], { env: { ...process.env, OUT_DIR: dir, FAIL_MODE: "none" }, stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.resume();
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.on("exit", (code, signal) => r({ code, signal })));
    return { child, exited, stderr: () => stderr };
  };

  it("SIGINT to the launcher stops every rank and exits 130", async () => {
    const dir = tempDir("sigint");
    const l = startLauncher(dir);
    const pids = await until(() => { const a = readPid(dir, 0), b = readPid(dir, 1); return a && b ? [a, b] : undefined; }, 60_000, "both ranks to start");
    const t0 = performance.now();
    l.child.kill("SIGINT");
    const { code } = await l.exited;
    expect(code).toBe(130);
    expect(l.stderr()).toContain("interrupted (SIGINT); stopped all 2 ranks");
    expect((performance.now() - t0) / 1000).toBeLessThan(LIMIT_S);
    for (const p of pids) expect(alive(p)).toBe(false);
  });

  it("workers exit when the launcher is killed outright", async () => {
    const dir = tempDir("orphan");
    const l = startLauncher(dir);
    const pids = await until(() => { const a = readPid(dir, 0), b = readPid(dir, 1); return a && b ? [a, b] : undefined; }, 60_000, "both ranks to start");
    l.child.kill("SIGKILL");
    await l.exited;
    await until(() => (pids.every((p) => !alive(p)) ? true : undefined), LIMIT_S * 1000, "the orphaned workers to exit");
  });
});
