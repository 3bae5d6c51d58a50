import * as fs from "node:fs";
import * as path from "node:path";
import { writeFileAtomic } from "../../io/atomic";
import { fullPrecision, type QuantHooks } from "../../nn/hooks";
import type { ResNet } from "../../nn/resnet";
import { Adam } from "../../optim/adam";
import { backward, noGrad } from "../../tensor/autograd";
import { Rng } from "../../tensor/prng";
import { tidy } from "../../tensor/scope";
import { tensor, type Tensor } from "../../tensor/tensor";
import type { QParams } from "../fake_quant";
import { AdaRoundWeight } from "./adaround";
import { HostRows, resnetPieces, type Granularity, type Piece } from "./block_data";
import { reconstructionLoss, type RoundSchedule } from "./loss";

export interface ReconstructOptions {
  granularity: Granularity;
  /** QUANT.FINETUNE.ITERS_W: Adam steps per piece. */
  iters: number;
  /** QUANT.FINETUNE.BATCHSIZE: samples per step, drawn from the calibration set. */
  batchSize: number;
  warmup: number;
  bStart: number;
  bEnd: number;
  lr: number;
  /** Seeds the mini-batch draws. */
  seed: number;
  /** Record the losses every this many iterations (1 for parity tests); 0: every 500 and the last (as the original prints). */
  recordEvery?: number;
  log?: (line: string) => void;
  /** Return each layer's rounding mask (1 = rounds up) in the report (tests). */
  keepMasks?: boolean;
  /** Folder for per-piece state: a piece found there with the same fingerprint is loaded instead of trained. */
  stateDir?: string | null;
  fingerprint?: string;
}

export interface LossPoint {
  iter: number;
  rec: number;
  round: number;
  b: number;
}

export interface PieceReport {
  name: string;
  units: { name: string; upFraction: number; mask?: Float32Array }[];
  losses: LossPoint[];
  seconds: number;
  resumed: boolean;
}

/**
 * AdaRound / BRECQ weight reconstruction of a ResNet (the original's finetune/brecq with QUANT.W.QUANTIZER adaRound,
 * act_quant off, asym on, opt_mode mse): piece by piece in forward order, the input comes from the model with every
 * weight quantized (pieces done so far hard-rounded, the rest at nearest), the target is the full-precision output;
 * the rounding variables of the piece's layers train with Adam against the L2 reconstruction loss plus the annealed
 * rounding regularizer. BN stays in eval mode (the original left the model in train mode here; see README).
 * At the end each quantized weight parameter holds its hard-rounded, dequantized value (on the quantizer's grid), so
 * the unchanged weight quantizers reproduce it exactly. `qparams`: the frozen weight quantizers' parameters by unit
 * name; units without an entry stay full precision. `calibration`: image batches of QUANT.FINETUNE.BATCHSIZE.
 */
export async function reconstructWeights(
  model: ResNet, qparams: ReadonlyMap<string, QParams>, calibration: readonly Tensor[], o: ReconstructOptions,
): Promise<PieceReport[]> {
  const pieces = resnetPieces(model, o.granularity).filter((p) => p.units.some((u) => qparams.has(u.name)));
  const states = new Map<string, AdaRoundWeight>();
  const grads = model.parameters().map((p) => [p, p.requiresGrad] as const);
  const wasTraining = model.training;
  model.eval();
  for (const [p] of grads) p.requiresGrad = false;
  const reports: PieceReport[] = [];
  try {
    for (const piece of pieces) for (const u of piece.units) {
      const qp = qparams.get(u.name);
      if (qp) states.set(u.name, new AdaRoundWeight(u.name, u.conv.weight, qp));
    }
    const quantized: QuantHooks = { weight: (n, w) => states.get(n)?.hardWeight() ?? w, output: (_n, y) => y };
    for (const piece of pieces) reports.push(await reconstructPiece(model, piece, states, quantized, calibration, o));
    for (const piece of pieces) for (const u of piece.units) {
      const s = states.get(u.name);
      if (!s) continue;
      const hard = s.hardWeight();
      u.conv.weight.ops.copy_(u.conv.weight.handle, hard.handle);
      hard.dispose();
    }
  } finally {
    for (const s of states.values()) s.dispose();
    for (const [p, r] of grads) p.requiresGrad = r;
    model.slot.hooks = fullPrecision;
    model.train(wasTraining);
  }
  return reports;
}

async function reconstructPiece(
  model: ResNet, piece: Piece, states: Map<string, AdaRoundWeight>, quantized: QuantHooks, calibration: readonly Tensor[], o: ReconstructOptions,
): Promise<PieceReport> {
  const t0 = Date.now();
  const own = piece.units.map((u) => states.get(u.name)).filter((s): s is AdaRoundWeight => !!s);
  const resumed = await loadPiece(piece, own, o);
  const losses: LossPoint[] = [];
  if (!resumed) {
    const inputs = new HostRows();
    const targets = new HostRows();
    for (const images of calibration) {
      model.slot.hooks = fullPrecision;
      const y = noGrad(() => tidy(() => piece.run(piece.prefix(images))));
      await targets.append(y);
      y.dispose();
      model.slot.hooks = quantized;
      const x = noGrad(() => tidy(() => piece.prefix(images)));
      await inputs.append(x);
      if (x !== images) x.dispose();
    }
    const n = inputs.length;
    if (n < o.batchSize) throw new Error(`reconstruction of ${piece.name}: ${n} calibration samples, fewer than QUANT.FINETUNE.BATCHSIZE (${o.batchSize})`);
    const sched: RoundSchedule = { iters: o.iters, warmup: o.warmup, bStart: o.bStart, bEnd: o.bEnd, weight: piece.isBlock ? 1e-2 : 1e-3, p: 2 };
    const adam = new Adam(own.map((s) => s.alpha), { lr: o.lr });
    const byName = new Map(own.map((s) => [s.name, s]));
    const optimizing: QuantHooks = {
      weight: (name, w) => byName.get(name)?.softWeight() ?? states.get(name)?.hardWeight() ?? w,
      output: (_n, y) => y,
    };
    const rng = Rng.fromSeed(o.seed, hashName(piece.name));
    const every = o.recordEvery ?? 0;
    const device = calibration[0].device;
    try {
      model.slot.hooks = optimizing;
      for (let it = 1; it <= o.iters; it++) {
        const idx = n === o.batchSize ? identity(n) : rng.permutation(n).subarray(0, o.batchSize);
        const record = every > 0 ? it % every === 0 || it === 1 : it === 1 || it % 500 === 0 || it === o.iters;
        const point = tidy(() => {
          const x = inputs.gather(idx, device);
          const t = targets.gather(idx, device);
          const out = piece.run(x);
          const l = reconstructionLoss(out, t, () => own.map((s) => s.softTargets()), it, sched);
          adam.zeroGrad();
          backward(l.total);
          adam.step();
          return record ? { iter: it, rec: l.rec.itemSync(), round: l.round ? l.round.itemSync() : 0, b: l.b } : null;
        });
        if (point) losses.push(point);
      }
    } finally {
      adam.zeroGrad();
      adam.dispose();
      model.slot.hooks = fullPrecision;
    }
    await savePiece(piece, own, o);
  }
  const units: PieceReport["units"] = [];
  for (const s of own) {
    const up = s.roundsUp();
    const mask = (await up.toArray()) as Float32Array;
    up.dispose();
    units.push({ name: s.name, upFraction: mask.reduce((a, b) => a + b, 0) / mask.length, ...(o.keepMasks ? { mask } : {}) });
  }
  const seconds = (Date.now() - t0) / 1000;
  const first = losses[0], last = losses[losses.length - 1];
  const lossText = resumed ? "resumed from saved state" : `${o.iters} iterations, rec loss ${first?.rec.toFixed(4)} -> ${last?.rec.toFixed(4)}`;
  o.log?.(`reconstruct ${piece.name} (${own.length} layer${own.length === 1 ? "" : "s"}): ${lossText}, rounded up ${units.map((u) => `${(100 * u.upFraction).toFixed(1)}%`).join("/")} in ${seconds.toFixed(1)} s`);
  return { name: piece.name, units, losses, seconds, resumed };
}

function identity(n: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i);
}

function hashName(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) >>> 0;
  return h;
}

function stateFiles(piece: Piece, dir: string): { meta: string; data: string } {
  return { meta: path.join(dir, `${piece.name}.json`), data: path.join(dir, `${piece.name}.alpha.f32`) };
}

async function savePiece(piece: Piece, own: AdaRoundWeight[], o: ReconstructOptions): Promise<void> {
  if (!o.stateDir) return;
  fs.mkdirSync(o.stateDir, { recursive: true });
  const f = stateFiles(piece, o.stateDir);
  const arrays = [];
  for (const s of own) arrays.push(Buffer.from(((await s.alpha.toArray()) as Float32Array).buffer.slice(0)));
  await writeFileAtomic(f.data, arrays);
  const meta = { piece: piece.name, fingerprint: o.fingerprint ?? "", units: own.map((s) => ({ name: s.name, shape: s.alpha.shape })) };
  await writeFileAtomic(f.meta, [Buffer.from(JSON.stringify(meta, null, 2) + "\n", "utf-8")]);
}

async function loadPiece(piece: Piece, own: AdaRoundWeight[], o: ReconstructOptions): Promise<boolean> {
  if (!o.stateDir) return false;
  const f = stateFiles(piece, o.stateDir);
  if (!fs.existsSync(f.meta) || !fs.existsSync(f.data)) return false;
  const meta = JSON.parse(fs.readFileSync(f.meta, "utf-8")) as { fingerprint: string; units: { name: string; shape: number[] }[] };
  if (meta.fingerprint !== (o.fingerprint ?? "")) {
    o.log?.(`reconstruct ${piece.name}: saved state in ${o.stateDir} is from other settings; reconstructing again`);
    return false;
  }
  const bytes = fs.readFileSync(f.data);
  const all = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  let at = 0;
  for (const s of own) {
    const n = s.alpha.numel;
    if (at + n > all.length) throw new Error(`${f.data}: truncated (reconstruction state of ${piece.name}); delete it to reconstruct again`);
    const t = tensor(all.slice(at, at + n), s.alpha.shape, s.alpha.device);
    s.alpha.ops.copy_(s.alpha.handle, t.handle);
    t.dispose();
    at += n;
  }
  return true;
}
