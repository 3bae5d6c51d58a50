import type { ResNet } from "../nn/resnet";
import { createResNet } from "../nn/resnet";
import { parseBitSetting } from "../quant/bits";
import type { QuantizedEncoder } from "../quant/quant_model";
import { Generator } from "../tensor/ops/random";
import { calibrate, calibrationBatches, quantizeClassifier, type CalibrationResult } from "./calibrate";
import type { ClassifierData } from "./classifier_data";
import { moveToDevice } from "./device_placement";
import { describeLoad, loadIntoModel, type LoadedStateDict } from "./pretrained";
import type { Run } from "./run";

/** A classifier at one bit setting: the model, its quantizers (null at "fp") and how they were calibrated. */
export interface ClassifierAtBits {
  readonly bits: string;
  readonly w: number;
  readonly a: number;
  readonly model: ResNet;
  readonly quant: QuantizedEncoder | null;
  readonly calibration: CalibrationResult | null;
  dispose(): void;
}

export interface ClassifierOptions {
  /** "fresh": a new fc with the default init (linear evaluation); "required": fc comes from `state` too. */
  classifier: "fresh" | "required";
  /** Only fc trains (TRAIN.LINEAR_EVAL): the backbone's parameters need no gradient. */
  frozenBackbone?: boolean;
  /** Runs on the loaded model before calibration (ptq: QUANT.FOLD_BN folds BN here). */
  prepare?: (model: ResNet) => Promise<void>;
}

/**
 * MODEL.ARCH with MODEL.NUM_CLASSES outputs (built from SEED, so every setting starts alike), `state` loaded with
 * every key accounted for, on the run's device; at a quantized setting its quantizers are calibrated on the first
 * training batches (ranges merged over the run's ranks), with the classifier itself in full precision.
 */
export async function classifierAtBits(run: Run, data: ClassifierData, state: LoadedStateDict, bits: string, o: ClassifierOptions): Promise<ClassifierAtBits> {
  const { cfg } = run;
  const { w, a } = parseBitSetting(bits);
  const model = createResNet(cfg.MODEL.ARCH, new Generator(cfg.SEED ?? 0), { numClasses: cfg.MODEL.NUM_CLASSES });
  let quant: QuantizedEncoder | null = null;
  const dispose = () => {
    quant?.dispose();
    model.dispose();
  };
  try {
    const report = loadIntoModel(model, state, "cpu", o.classifier);
    run.progress.log(`[${bits}] ${describeLoad(report, state.file)}`);
    moveToDevice(model, run.device);
    await o.prepare?.(model);
    if (o.frozenBackbone) for (const [n, p] of model.namedParameters()) if (!n.startsWith("fc.")) p.requiresGrad = false;
    // Scales come from the loaded weights before any training, so a resumed run recalibrates to the same ones.
    let calibration: CalibrationResult | null = null;
    if (w !== 0 || a !== 0) {
      quant = quantizeClassifier(model, cfg);
      calibration = await calibrate(model, quant, data.trainLoader, calibrationBatches(cfg, data.trainLoader.length), { w, a }, run.group);
    }
    return { bits, w, a, model, quant, calibration, dispose };
  } catch (e) {
    dispose();
    throw e;
  }
}
