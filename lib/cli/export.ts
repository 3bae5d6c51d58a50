import { parseArgs } from "node:util";
import { loadConfig } from "../config";
import { exportModel } from "../export/export";

const usage = `usage: node lib/main.js export --from DIR --output FILE [--bits B] [--config FILE]

Exports a trained model, format by the output's extension:
  .onnx         the backbone (+ the classifier of a linear/ptq setting) as ONNX: BN folded into the convolutions,
                at a quantized setting QuantizeLinear/DequantizeLinear with the saved scales and zero points
  .safetensors  the float state dict under torchvision ResNet names (conv1.weight, layer1.0.bn1.running_mean, fc.*)
  .pth          the same, as torch.save writes it (torch.load(weights_only=True) reads it)

  --from DIR     a linear/ptq setting folder (<output>/<bits>/), an ssl run folder or checkpoint.json, or a
                 PyTorch checkpoint such as the original's checkpoint.pth.tar
  --bits B       the bit setting to export (fp, 8w8f, 4w4f, 2w4f); must be the one the source holds
  --config FILE  for checkpoints that do not record them: MODEL.ARCH, TRAIN.DATASET, MODEL.INPUTSHAPE`;

/** `export --from DIR --output FILE [--bits B] [--config FILE]` */
export async function exportCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { from: { type: "string" }, output: { type: "string" }, bits: { type: "string" }, config: { type: "string" }, help: { type: "boolean", short: "h" } },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return 0;
  }
  if (!values.from || !values.output) {
    console.error(`export: ${!values.from ? "--from" : "--output"} is required\n\n${usage}`);
    return 2;
  }
  const cfg = values.config ? loadConfig(values.config) : undefined;
  const r = await exportModel({ from: values.from, output: values.output, bits: values.bits, cfg });
  const what = r.source.classifier ? `${r.source.arch} classifier` : `${r.source.arch} backbone (features)`;
  console.log(`exported the ${what} at ${r.bits} from ${r.source.from} to ${r.output} (${r.format}, ${r.bytes} bytes)`);
  return 0;
}
