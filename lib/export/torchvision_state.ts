import type { HostTensors } from "../io/host_tensor";

/**
 * A ResNet state dict as torchvision's resnet*() holds it: our keys are already torchvision's (conv1.weight,
 * bn1.running_mean, layer1.0.downsample.0.weight, fc.weight); each BatchNorm gains its num_batches_tracked counter
 * (int64 0) after running_var, as torchvision's BatchNorm2d has one and load_state_dict(strict=True) asks for it.
 */
export function torchvisionStateDict(tensors: HostTensors): HostTensors {
  const out: HostTensors = {};
  for (const [k, t] of Object.entries(tensors)) {
    out[k] = t;
    if (k.endsWith(".running_var")) out[`${k.slice(0, -".running_var".length)}.num_batches_tracked`] = { dtype: "int64", shape: [], data: BigInt64Array.of(0n) };
  }
  return out;
}
