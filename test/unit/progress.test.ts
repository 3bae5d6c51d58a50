import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { formatDuration, Progress } from "../../lib/train/progress";

/** A stream that records what is written; `isTTY` as asked. */
function sink(tty: boolean): { out: NodeJS.WriteStream; text: () => string } {
  let buf = "";
  const w = new Writable({ write: (c, _e, cb) => ((buf += c.toString()), cb()) }) as unknown as NodeJS.WriteStream;
  (w as { isTTY?: boolean }).isTTY = tty;
  (w as { columns?: number }).columns = 400;
  return { out: w, text: () => buf };
}

const stamp = /^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\] /;

describe("progress", () => {
  it("formats durations as m:ss and h:mm:ss", () => {
    expect(formatDuration(0)).toBe("0:00");
    expect(formatDuration(75.4)).toBe("1:15");
    expect(formatDuration(3 * 3600 + 4 * 60 + 5)).toBe("3:04:05");
    expect(formatDuration(NaN)).toBe("?");
  });

  it("not on a terminal: one timestamped line per epoch, with the epoch's and the run's elapsed time and ETA", () => {
    let now = 0;
    const s = sink(false);
    const p = new Progress(1, s.out, true, () => now);
    // Epochs 2..4 of a run (3 epochs in this process), 4 steps each, 10 s per step.
    p.beginRun(2, 5);
    for (let e = 2; e < 5; e++) {
      p.beginEpoch(e, (e - 2) * 4);
      for (let step = 1; step <= 4; step++) {
        now += 10_000;
        p.update({ epoch: e, epochs: 5, step, steps: 4, loss: 0.5 });
      }
      p.log(`epoch ${e} done`);
    }
    const lines = s.text().trimEnd().split("\n");
    expect(lines).toHaveLength(6);
    for (const l of lines) expect(l).toMatch(stamp);
    // After epoch 2: 40 s in the epoch, none left in it; 40 s in the run, 2 epochs x 40 s to go.
    expect(lines[0]).toContain("Epoch [2/5]  step 4/4");
    expect(lines[0]).toContain("epoch 0:40 ETA 0:00 | run 0:40 ETA 1:20");
    expect(lines[2]).toContain("run 1:20 ETA 0:40");
    expect(lines[4]).toContain("run 2:00 ETA 0:00");
    expect(lines[5]).toMatch(/\] epoch 4 done$/);
  });

  it("on a terminal: the line refreshes every printFreq steps and at the epoch's end, with ETAs mid-epoch", () => {
    let now = 0;
    const s = sink(true);
    const p = new Progress(3, s.out, true, () => now);
    p.beginRun(0, 2);
    p.beginEpoch(0, 0);
    for (let step = 1; step <= 4; step++) {
      now += 1000;
      p.update({ epoch: 0, epochs: 2, step, steps: 4 });
    }
    const frames = s.text().split("\r").filter(Boolean);
    expect(frames.map((f) => /step (\d)\/4/.exec(f)![1])).toEqual(["3", "4"]);
    // At step 3: 3 s in, 1 step left in the epoch, 1 + 4 steps left in the run.
    expect(frames[0]).toContain("epoch 0:03 ETA 0:01 | run 0:03 ETA 0:05");
    expect(frames[0]).not.toMatch(stamp);
  });
});
