import { ConfigError } from "../config/errors";
import type { SslType } from "../config/schema";

/**
 * TRAIN.LOSS.CRITERION.NAME: the original imports losses/criterions/<NAME> and applies it to what the SSL model
 * returns, so a criterion works only with the methods whose outputs it unpacks. Each SSL.TYPE lists the criteria
 * this trainer computes for it, all with the original's formulas (test/parity/criteria.test.ts runs the original's
 * criterion classes): the method computes the loss, the name picks which one.
 * - CosineSimilarity: −½(cos(p1, sg z2) + cos(p2, sg z1)), averaged over the FP and quantized branches for SSQL;
 * - CosineSimilarityv2 (BYOL family): mean[(2 − 2 cos(p1, sg z2)) + (2 − 2 cos(p2, sg z1))];
 * - CrossEntropy (MoCo family): cross entropy of the logits against the positive at index 0;
 * - InfoNCEv2 and InfoNCE (SimCLR): NT-Xent over the 2B normalised embeddings; the original's InfoNCE (the
 *   supervised-contrastive loss without labels) is the same function of its inputs as InfoNCEv2.
 * LpLoss and DispLoss compare a prediction tensor with a target tensor (regression, stereo disparity); no SSL
 * method produces that pair, and the original failed on them too, so they stop the run by name.
 */
export const CRITERION_NAMES = ["CosineSimilarity", "CosineSimilarityv2", "CrossEntropy", "InfoNCE", "InfoNCEv2", "LpLoss", "DispLoss"] as const;

export const SSL_CRITERIA: Record<SslType, readonly string[]> = {
  SimSiam: ["CosineSimilarity"],
  SSQL_SimSiam: ["CosineSimilarity"],
  BYOL: ["CosineSimilarity", "CosineSimilarityv2"],
  SSQL_BYOL: ["CosineSimilarity", "CosineSimilarityv2"],
  MoCo: ["CrossEntropy"],
  SSQL_MoCo: ["CrossEntropy"],
  SimCLR: ["InfoNCEv2", "InfoNCE"],
};

/** The criterion `ssl` computes for `type`: the configured one when supported, the method's own when empty. */
export function sslCriterion(type: SslType, name: string): string {
  const allowed = SSL_CRITERIA[type];
  if (name === "") return allowed[0]!;
  if (allowed.includes(name)) return name;
  const known = (CRITERION_NAMES as readonly string[]).includes(name);
  throw new ConfigError(
    `TRAIN.LOSS.CRITERION.NAME: ${known ? `'${name}' does not apply to SSL.TYPE ${type}` : `unknown criterion '${name}'`}; ` +
      `supported for ${type}: ${allowed.join(", ")}`,
    undefined,
    "TRAIN.LOSS.CRITERION.NAME",
  );
}

/** `linear` trains the classifier with cross entropy, as the original's linear worker (which ignored the name). */
export function linearCriterion(name: string): "CrossEntropy" {
  if (name === "" || name === "CrossEntropy") return "CrossEntropy";
  throw new ConfigError(
    `TRAIN.LOSS.CRITERION.NAME: '${name}' is not supported by linear; supported: CrossEntropy (the original's linear worker always used it)`,
    undefined,
    "TRAIN.LOSS.CRITERION.NAME",
  );
}
