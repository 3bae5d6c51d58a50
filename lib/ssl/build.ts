import type { Config } from "../config";
import { sslCriterion } from "../losses/criteria";
import type { QuantUnit } from "../nn/hooks";
import type { Layer } from "../nn/module";
import { createResNet, type ResNet } from "../nn/resnet";
import { LinearUnit, type UnitSequential } from "../nn/units";
import { quantSideSpec } from "../quant/config";
import { QuantizedEncoder } from "../quant/quant_model";
import type { ProcessGroup } from "../distributed/process_group";
import { BitSampler } from "../quant/sampling";
import type { Generator as RandomGenerator } from "../tensor/ops/random";
import { BYOL, SSQLBYOL, type ByolCriterion } from "./byol";
import { byolProjector, mlpHead, predictor, simsiamProjector } from "./heads";
import type { SslMethod } from "./method";
import { MoCo, SSQLMoCo } from "./moco";
import { SimCLR } from "./simclr";
import { SimSiam, SSQLSimSiam } from "./simsiam";
import { Linear } from "../nn/layers";

export interface BuiltMethod {
  method: SslMethod;
  /** The quantizer of the online encoder (SSQL methods only). */
  quant?: QuantizedEncoder;
  /** The per-step bit sampler (SSQL methods only); its state is part of method.state(). */
  sampler?: BitSampler;
}

/** Every quantization unit of an encoder whose head is a UnitSequential (or a plain Linear named fc). */
export function encoderUnits(encoder: ResNet): QuantUnit[] {
  const head = encoder.fc as Layer;
  const headUnits: QuantUnit[] =
    head instanceof Linear
      ? [{ name: "fc", hasWeight: true, channels: head.outFeatures }]
      : (head as UnitSequential).unitNames().map((u) => ({ name: u.name, hasWeight: true, channels: u.channels }));
  return [...encoder.backboneUnits(), ...headUnits];
}

export function quantizeEncoder(encoder: ResNet, cfg: Config): QuantizedEncoder {
  const w = quantSideSpec(cfg.QUANT.W, "QUANT.W");
  const a = quantSideSpec(cfg.QUANT.A, "QUANT.A");
  return new QuantizedEncoder(encoder, encoderUnits(encoder), w, a, cfg.QUANT.BIT_CONFIG, cfg.QUANT.ROUNDING);
}

/**
 * The method of SSL.TYPE with the original's heads and widths (§4): the encoder is MODEL.ARCH with its fc
 * replaced by the projector; SSQL variants wrap the online encoder in a QuantizedEncoder.
 */
export function buildSslMethod(cfg: Config, gen: RandomGenerator, opts: { group?: ProcessGroup | null } = {}): BuiltMethod {
  const type = cfg.SSL.TYPE;
  if (!type) throw new Error("SSL.TYPE is not set; choose one of SimSiam, SSQL_SimSiam, BYOL, SSQL_BYOL, MoCo, SSQL_MoCo, SimCLR");
  const s = cfg.SSL.SETTING;
  const arch = cfg.MODEL.ARCH;
  // The original passes zero_init_residual=True for the SimSiam family and SSQL_BYOL (a no-op on CIFAR ResNets).
  const zeroInitResidual = type === "SimSiam" || type === "SSQL_SimSiam" || type === "SSQL_BYOL";
  const makeEncoder = () => createResNet(arch, gen, { numClasses: s.DIM, zeroInitResidual });
  const encoder = makeEncoder();
  const F = encoder.featureDim;
  const ssql = type.startsWith("SSQL_");
  const wRange = cfg.QUANT.W.BIT_RANGE as [number, number];
  const aRange = cfg.QUANT.A.BIT_RANGE as [number, number];
  const sampler = ssql ? new BitSampler(cfg.SEED ?? 0, wRange, aRange) : undefined;
  const group = opts.group ?? null;
  const criterion = sslCriterion(type, cfg.TRAIN.LOSS.CRITERION.NAME) as ByolCriterion;

  switch (type) {
    case "SimSiam":
    case "SSQL_SimSiam": {
      const hidden = s.PROJECTOR_HIDDEN === "release" ? s.HIDDEN_DIM : Math.max(F, s.DIM);
      encoder.setHead(simsiamProjector(encoder.slot, F, hidden, s.DIM, gen));
      const pred = predictor(s.DIM, s.HIDDEN_DIM, gen);
      if (type === "SimSiam") return { method: new SimSiam(encoder, pred) };
      const quant = quantizeEncoder(encoder, cfg);
      return { method: new SSQLSimSiam(encoder, pred, quant, sampler!), quant, sampler };
    }
    case "BYOL":
    case "SSQL_BYOL": {
      const finalBn = type === "SSQL_BYOL";
      encoder.setHead(byolProjector(encoder.slot, F, s.HIDDEN_DIM, s.DIM, gen, finalBn));
      const target = makeEncoder();
      target.setHead(byolProjector(target.slot, F, s.HIDDEN_DIM, s.DIM, gen, finalBn));
      const pred = predictor(s.DIM, s.HIDDEN_DIM, gen);
      if (type === "BYOL") return { method: new BYOL(encoder, target, pred, s.MOMENTUM, criterion) };
      const quant = quantizeEncoder(encoder, cfg);
      return { method: new SSQLBYOL(encoder, target, pred, s.MOMENTUM, criterion, quant, sampler!), quant, sampler };
    }
    case "MoCo":
    case "SSQL_MoCo": {
      const head = (e: ResNet) => (s.MLP ? mlpHead(e.slot, F, s.HIDDEN_DIM, s.DIM, gen) : new LinearUnit(e.slot, "fc", F, s.DIM, gen));
      encoder.setHead(head(encoder));
      const keyEncoder = makeEncoder();
      keyEncoder.setHead(head(keyEncoder));
      if (type === "MoCo") return { method: new MoCo(encoder, keyEncoder, s.DIM, s.MOCO_K, s.MOMENTUM, s.T, gen, group) };
      const quant = quantizeEncoder(encoder, cfg);
      return { method: new SSQLMoCo(encoder, keyEncoder, s.DIM, s.MOCO_K, s.MOMENTUM, s.T, gen, quant, sampler!, group), quant, sampler };
    }
    case "SimCLR":
      encoder.setHead(s.MLP ? mlpHead(encoder.slot, F, s.HIDDEN_DIM, s.DIM, gen) : new LinearUnit(encoder.slot, "fc", F, s.DIM, gen));
      return { method: new SimCLR(encoder, s.T) };
  }
  throw new Error(`unknown SSL.TYPE '${String(type)}'`);
}
