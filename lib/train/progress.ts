/**
 * Progress output. On a terminal: one self-updating line, refreshed every `printFreq` steps and at the end of each
 * epoch. Otherwise (a log file, a pipe): one line per epoch, at its end. Both show the epoch's and the run's
 * elapsed time and ETA; every line that is not the terminal's self-updating one starts with a timestamp.
 */
export interface ProgressFields {
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss?: number;
  lr?: number;
  imagesPerSec?: number;
  extra?: string;
}

/** Seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "?";
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** Local time as YYYY-MM-DD HH:MM:SS. */
export function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

interface Span {
  /** First epoch of this process's loop and one past its last. */
  from: number;
  to: number;
  start: number;
  epochStart: number;
  epoch: number;
  /** Steps finished in this process's loop before the current epoch. */
  stepsBefore: number;
}

export class Progress {
  private readonly tty: boolean;
  private lastLen = 0;
  private span: Span | null = null;

  constructor(
    private readonly printFreq: number,
    private readonly out: NodeJS.WriteStream = process.stdout,
    private readonly enabled = true,
    private readonly now: () => number = Date.now,
  ) {
    this.tty = Boolean(out.isTTY);
  }

  static format(f: ProgressFields): string {
    const parts = [`Epoch [${f.epoch}/${f.epochs}]`, `step ${f.step}/${f.steps}`];
    if (f.loss !== undefined) parts.push(`loss ${f.loss.toFixed(4)}`);
    if (f.lr !== undefined) parts.push(`lr ${f.lr.toExponential(3)}`);
    if (f.imagesPerSec !== undefined) parts.push(`${f.imagesPerSec.toFixed(1)} img/s`);
    if (f.extra) parts.push(f.extra);
    return parts.join("  ");
  }

  /** The training loop runs epochs [from, to): the run's clock starts (again) here. */
  beginRun(from: number, to: number): void {
    const t = this.now();
    this.span = { from, to, start: t, epochStart: t, epoch: from, stepsBefore: 0 };
  }

  /** Epoch `epoch` starts; `stepsDone` steps of this loop came before it. */
  beginEpoch(epoch: number, stepsDone: number): void {
    if (!this.span) this.beginRun(epoch, epoch + 1);
    this.span!.epoch = epoch;
    this.span!.epochStart = this.now();
    this.span!.stepsBefore = stepsDone;
  }

  /** "epoch 0:12 ETA 0:36 | run 1:02 ETA 3:04" at `step` of `steps`, from this loop's pace so far. */
  timing(step: number, steps: number): string {
    const s = this.span;
    if (!s) return "";
    const t = this.now();
    const inEpoch = (t - s.epochStart) / 1000;
    const inRun = (t - s.start) / 1000;
    const perStepEpoch = step > 0 ? inEpoch / step : NaN;
    const done = s.stepsBefore + step;
    // The run's pace includes what happens between epochs (checkpoints, validation, the kNN monitor).
    const perStepRun = done > 0 ? inRun / done : NaN;
    const epochsAfter = Math.max(0, s.to - s.epoch - 1);
    const epochEta = perStepEpoch * (steps - step);
    const runEta = perStepRun * (steps - step + epochsAfter * steps);
    return `epoch ${formatDuration(inEpoch)} ETA ${formatDuration(epochEta)} | run ${formatDuration(inRun)} ETA ${formatDuration(runEta)}`;
  }

  update(f: ProgressFields): void {
    if (!this.enabled) return;
    const last = f.step === f.steps;
    const timing = this.timing(f.step, f.steps);
    const line = [Progress.format(f), timing].filter(Boolean).join("  ");
    if (this.tty) {
      if (!last && this.printFreq > 1 && f.step % this.printFreq !== 0) return;
      const width = this.out.columns ?? 120;
      const bar = bar20(f.step / Math.max(1, f.steps));
      const text = `${bar} ${line}`.slice(0, width - 1);
      this.out.write(`\r${text}${" ".repeat(Math.max(0, this.lastLen - text.length))}`);
      this.lastLen = text.length;
    } else if (last) {
      this.out.write(`[${timestamp()}] ${line}\n`);
    }
  }

  /** Ends the current line (TTY) and prints a message on its own line (timestamped when not on a terminal). */
  log(message: string): void {
    if (!this.enabled) return;
    if (this.tty && this.lastLen) this.out.write("\n");
    this.lastLen = 0;
    if (this.tty) this.out.write(`${message}\n`);
    else {
      // One timestamp per message, on its first line: a table printed as one message stays a table.
      const lead = /^\n*/.exec(message)![0];
      this.out.write(`${lead}[${timestamp()}] ${message.slice(lead.length)}\n`);
    }
  }
}

function bar20(frac: number): string {
  const n = Math.round(Math.min(1, Math.max(0, frac)) * 20);
  return `[${"#".repeat(n)}${".".repeat(20 - n)}]`;
}
