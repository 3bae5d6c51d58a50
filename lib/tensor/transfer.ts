import { record } from "./autograd";
import { opsFor, type Device } from "./binding";
import { Tensor } from "./tensor";

/**
 * A copy of `t` on `device` (t itself when it is already there, as torch's .to()). CPU and CUDA tensors meet
 * in host memory: the source is read back (waiting for its queued work), then uploaded. Differentiable: the
 * gradient travels back to t's device.
 */
export function toDevice(t: Tensor, device: Device): Tensor {
  if (t.device === device) return t;
  const out = new Tensor(opsFor(device).fromArray(t.toArraySync(), t.shape), device, t.shape);
  return record("toDevice", out, [t], [], (g) => [toDevice(g, t.device)]);
}

/** As toDevice, but the read-back waits without blocking the event loop. */
export async function toDeviceAsync(t: Tensor, device: Device): Promise<Tensor> {
  if (t.device === device) return t;
  const data = await t.toArray();
  const out = new Tensor(opsFor(device).fromArray(data, t.shape), device, t.shape);
  return record("toDevice", out, [t], [], (g) => [toDevice(g, t.device)]);
}
