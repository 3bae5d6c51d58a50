import { type HostTensor, type HostTensors, isHostTensor, setOwn } from "./host_tensor";

/**
 * Maps an SSL checkpoint's state-dict keys onto a backbone's own keys, choosing the mapping from
 * the keys themselves (never from the file's name, which is how the original silently evaluated a
 * random backbone when a path lacked a capital Q).
 *
 * Layouts handled:
 *  - a wrapper prefix: module.encoder_q., module.encoder., encoder_q., encoder., module., backbone. (solo-learn,
 *    lightly; in a Lightning .ckpt under "state_dict"), model.backbone., module.backbone. or none
 *    (DDP's "module.", SimSiam's "encoder", SSQL/MoCo/BYOL's "encoder_q");
 *  - a torchvision ResNet flattened into a Sequential (lightly): `0.` conv1, `1.` bn1, `4.`..`7.` layer1..4;
 *  - the original QuantModel's extra "model." level;
 *  - the QuantModel's module rewriting (quant_tools/quant_model.py and blocks/*resnet.py), undone by
 *    `plainKey`: a BatchNorm that followed a conv or linear layer lives in that layer's `bn_function`,
 *    so in ResNets `convK.bn_function.*` is the plain `bnK.*` (the stem's conv1 → bn1 and a block's
 *    conv1/2/3 → bn1/2/3), a block's `downsample` (a QuantConv2d replacing Sequential(conv, BN)) holds
 *    `downsample.0`'s weight directly and `downsample.1` as `downsample.bn_function`, and in a
 *    Sequential (the projector) `N.bn_function.*` is `(N+1).*`. ReLUs moved into `act_function` hold no
 *    state. Quantizer state (`weight_quantizer.weight`, a second registration of the layer's weight, and
 *    the observers' `min_val`/`max_val`) is dropped.
 * The projector (the backbone's `fc`, replaced by the SSL head), the predictor, momentum encoders and
 * queues are not backbone weights and are dropped.
 */
export const WRAPPER_PREFIXES = ["module.encoder_q.", "module.encoder.", "encoder_q.", "encoder.", "module.", "backbone.", "model.backbone.", "module.backbone."] as const;

/**
 * A torchvision ResNet's children as a Sequential (lightly's `nn.Sequential(*list(resnet.children())[:-1])`):
 * index → module name; 2 (relu), 3 (maxpool) and 8 (avgpool) hold no state.
 */
const RESNET_CHILDREN: Readonly<Record<string, string>> = { 0: "conv1", 1: "bn1", 4: "layer1", 5: "layer2", 6: "layer3", 7: "layer4" };

export interface BackboneKeyOptions {
  /** Key prefix of the backbone's classifier, which an SSL checkpoint replaces with its projector. Default "fc.". */
  classifier?: string;
  /** Also take the classifier's weights from the checkpoint (a linear-eval checkpoint being fine-tuned). Default false. */
  keepClassifier?: boolean;
}

export interface BackboneKeyPlan {
  /** The wrapper prefix that was stripped ("" for none), "model." included for a QuantModel. */
  prefix: string;
  /** "quant-model" when the keys have the original QuantModel's bn_function/quantizer layout. */
  layout: "plain" | "quant-model";
  /** Backbone key → the checkpoint key it is loaded from. */
  sources: Record<string, string>;
  /** Backbone keys with no source, the classifier's and num_batches_tracked counters excluded: an error. */
  missing: string[];
  /** Classifier keys with no source: expected for an SSL checkpoint, the classifier is trained afterwards. */
  missingClassifier: string[];
  /** num_batches_tracked counters with no source; PyTorch leaves these at 0 too. */
  missingOptional: string[];
  /** Checkpoint keys inside the backbone's namespace that match nothing the backbone expects. */
  unexpected: string[];
  /** Checkpoint keys dropped on purpose: other branches, heads, quantizer state. */
  ignored: string[];
}

const QUANTIZER = /\.(weight_quantizer|output_quantizer)\./;

/** The plain-model name of an original QuantModel key (see the module comment); null for quantizer state. */
export function plainKey(key: string): string | null {
  if (QUANTIZER.test(`.${key}`)) return null;
  const child = /^(\d+)\.(.*)$/.exec(key);
  if (child && !key.includes(".bn_function.") && RESNET_CHILDREN[child[1]!]) return `${RESNET_CHILDREN[child[1]!]}.${child[2]}`;
  const bn = key.indexOf(".bn_function.");
  if (bn >= 0) {
    const owner = key.slice(0, bn);
    const rest = key.slice(bn + ".bn_function.".length);
    const dot = owner.lastIndexOf(".");
    const parent = owner.slice(0, dot + 1);
    const last = owner.slice(dot + 1);
    const conv = /^conv(\d+)$/.exec(last);
    if (last === "downsample") return `${owner}.1.${rest}`;
    if (conv) return `${parent}bn${conv[1]}.${rest}`;
    if (/^\d+$/.test(last)) return `${parent}${Number(last) + 1}.${rest}`;
    return key;
  }
  const ds = /^(.*\.)?downsample\.(weight|bias)$/.exec(key);
  if (ds) return `${ds[1] ?? ""}downsample.0.${ds[2]}`;
  return key;
}

function isCounter(key: string): boolean {
  return key.endsWith(".num_batches_tracked") || key === "num_batches_tracked";
}

function planFor(keys: readonly string[], expected: ReadonlySet<string>, prefix: string, opts: Required<BackboneKeyOptions>): BackboneKeyPlan {
  const sources: Record<string, string> = {};
  const unexpected: string[] = [];
  const ignored: string[] = [];
  let quant = false;
  for (const key of keys) {
    if (!key.startsWith(prefix)) {
      ignored.push(key);
      continue;
    }
    const inner = key.slice(prefix.length);
    const plain = expected.has(inner) ? inner : plainKey(inner);
    if (inner.includes(".bn_function.") || QUANTIZER.test(`.${inner}`)) quant = true;
    const isHead = (k: string) => k.startsWith(opts.classifier);
    if (plain === null || ((isHead(inner) || isHead(plain)) && !opts.keepClassifier)) {
      ignored.push(key);
    } else if (expected.has(plain)) {
      if (Object.hasOwn(sources, plain)) throw new Error(`checkpoint keys '${sources[plain]}' and '${key}' both map to '${plain}'`);
      setOwn(sources, plain, key);
    } else if (isCounter(plain)) {
      ignored.push(key);
    } else {
      unexpected.push(key);
    }
  }
  const missing: string[] = [];
  const missingClassifier: string[] = [];
  const missingOptional: string[] = [];
  for (const k of expected) {
    if (Object.hasOwn(sources, k)) continue;
    if (k.startsWith(opts.classifier)) missingClassifier.push(k);
    else if (isCounter(k)) missingOptional.push(k);
    else missing.push(k);
  }
  return { prefix, layout: quant ? "quant-model" : "plain", sources, missing, missingClassifier, missingOptional, unexpected, ignored };
}

/**
 * Chooses the prefix (and QuantModel "model." level) under which the most backbone keys are found,
 * preferring the earlier prefix on a tie, and returns that plan.
 */
export function planBackboneKeys(checkpointKeys: readonly string[], expectedKeys: readonly string[], options: BackboneKeyOptions = {}): BackboneKeyPlan {
  const opts = { classifier: options.classifier ?? "fc.", keepClassifier: options.keepClassifier ?? false };
  const expected = new Set(expectedKeys);
  let best: BackboneKeyPlan | undefined;
  let bestFound = -1;
  for (const wrapper of [...WRAPPER_PREFIXES, ""]) {
    for (const level of ["", "model."]) {
      const prefix = wrapper + level;
      if (prefix !== "" && !checkpointKeys.some((k) => k.startsWith(prefix))) continue;
      const plan = planFor(checkpointKeys, expected, prefix, opts);
      const found = Object.keys(plan.sources).length;
      if (found > bestFound) {
        best = plan;
        bestFound = found;
      }
    }
  }
  return best!;
}

export interface BackboneMapping extends BackboneKeyPlan {
  /** Backbone key → tensor from the checkpoint. */
  mapped: HostTensors;
  /** Backbone keys whose checkpoint tensor has another shape than the backbone's. */
  mismatched: { key: string; source: string; expected: number[]; actual: number[] }[];
}

/**
 * Applies `planBackboneKeys` to a state dict. `expected` is the backbone's key list, or its keys with
 * shapes (then shapes are checked too).
 */
export function mapBackboneState(
  stateDict: Readonly<Record<string, HostTensor>>,
  expected: readonly string[] | Readonly<Record<string, readonly number[]>>,
  options: BackboneKeyOptions = {},
): BackboneMapping {
  const shapes = Array.isArray(expected) ? undefined : (expected as Readonly<Record<string, readonly number[]>>);
  const keys = shapes ? Object.keys(shapes) : (expected as readonly string[]);
  const plan = planBackboneKeys(Object.keys(stateDict), keys, options);
  const mapped: HostTensors = {};
  const mismatched: BackboneMapping["mismatched"] = [];
  for (const [key, source] of Object.entries(plan.sources)) {
    const t = stateDict[source];
    const want = shapes?.[key];
    if (want && (want.length !== t.shape.length || want.some((d, i) => d !== t.shape[i]))) {
      mismatched.push({ key, source, expected: [...want], actual: [...t.shape] });
    }
    setOwn(mapped, key, t);
  }
  return { ...plan, mapped, mismatched };
}

/** Throws an error that lists every missing backbone key (and shape mismatches, and unexpected keys unless allowed). */
export function assertBackboneComplete(mapping: BackboneMapping, file: string, { allowUnexpected = false } = {}): void {
  const problems: string[] = [];
  const list = (keys: string[]) => keys.slice(0, 50).join(", ") + (keys.length > 50 ? `, ... (${keys.length - 50} more)` : "");
  if (mapping.missing.length) problems.push(`${mapping.missing.length} backbone keys are missing: ${list(mapping.missing)}`);
  if (mapping.mismatched.length) {
    problems.push(
      `${mapping.mismatched.length} shapes differ: ` +
        list(mapping.mismatched.map((m) => `${m.key} (checkpoint ${m.source} [${m.actual}] vs backbone [${m.expected}])`)),
    );
  }
  if (!allowUnexpected && mapping.unexpected.length) problems.push(`${mapping.unexpected.length} checkpoint keys match nothing: ${list(mapping.unexpected)}`);
  if (problems.length) {
    const how = `keys read with prefix '${mapping.prefix}' (${mapping.layout} layout)`;
    const tried =
      `Layouts tried: the prefixes ${WRAPPER_PREFIXES.map((p) => `'${p}'`).join(", ")} and none, each with and without the ` +
      "original QuantModel's 'model.' level and its bn_function/downsample renaming, and a torchvision ResNet as a " +
      "Sequential ('0.' conv1 ... '7.' layer4); the best fit is reported";
    const instead =
      "Pass an ssl run folder or its checkpoint.json (or the .safetensors beside it), an original checkpoint.pth.tar, " +
      "or a state dict whose keys are the backbone's own (conv1.weight, bn1.weight, layer1.0.conv1.weight, ...) under one " +
      "of those prefixes, and check that MODEL.ARCH is the checkpoint's backbone";
    throw new Error(`${file}: the checkpoint does not fit the backbone; ${how}. ${problems.join("; ")}. ${tried}. ${instead}`);
  }
}

/**
 * The tensors of a loaded checkpoint's state dict: `obj.state_dict` (the original's
 * {"epoch", "state_dict", "optimizer"}), `obj.model`, or `obj` itself when it is a raw state dict.
 */
export function stateDictOf(obj: unknown, file: string): HostTensors {
  const asDict = (x: unknown) => (typeof x === "object" && x !== null && !Array.isArray(x) && !isHostTensor(x) ? (x as Record<string, unknown>) : undefined);
  const root = asDict(obj);
  if (!root) throw new Error(`${file}: the checkpoint is not a dictionary`);
  const candidates = [asDict(root.state_dict), asDict(root.model), root];
  for (const c of candidates) {
    if (!c) continue;
    const tensors: HostTensors = {};
    for (const [k, v] of Object.entries(c)) if (isHostTensor(v)) setOwn(tensors, k, v);
    if (Object.keys(tensors).length > 0) return tensors;
  }
  throw new Error(`${file}: no state dict found (top-level keys: ${Object.keys(root).join(", ")})`);
}
