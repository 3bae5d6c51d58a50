/** Progress output: one self-updating line on a TTY, plain lines every `printFreq` steps otherwise. */
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

export class Progress {
  private readonly tty: boolean;
  private lastLen = 0;

  constructor(private readonly printFreq: number, private readonly out: NodeJS.WriteStream = process.stdout, private readonly enabled = true) {
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

  update(f: ProgressFields): void {
    if (!this.enabled) return;
    const line = Progress.format(f);
    if (this.tty) {
      const width = this.out.columns ?? 120;
      const bar = bar20(f.step / Math.max(1, f.steps));
      const text = `${bar} ${line}`.slice(0, width - 1);
      this.out.write(`\r${text}${" ".repeat(Math.max(0, this.lastLen - text.length))}`);
      this.lastLen = text.length;
    } else if (f.step % this.printFreq === 0 || f.step === f.steps) {
      this.out.write(`${line}\n`);
    }
  }

  /** Ends the current line (TTY) and prints a message on its own line. */
  log(message: string): void {
    if (!this.enabled) return;
    if (this.tty && this.lastLen) this.out.write("\n");
    this.lastLen = 0;
    this.out.write(`${message}\n`);
  }
}

function bar20(frac: number): string {
  const n = Math.round(Math.min(1, Math.max(0, frac)) * 20);
  return `[${"#".repeat(n)}${".".repeat(20 - n)}]`;
}
