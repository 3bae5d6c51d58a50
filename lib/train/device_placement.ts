import type { Batch } from "../data/loader";
import type { Module } from "../nn/module";
import { env } from "../env";
import type { Device } from "../tensor/binding";
import { toDeviceAsync } from "../tensor/transfer";

/** Moves every parameter and buffer of `m` to `device` (no-op on the CPU). */
export function moveToDevice(m: Module, device: Device): void {
  if (device !== "cpu") m.to(device);
}

/** Where the loaders augment batches for a model on `device`: on the GPU itself unless SSQL_AUGMENT=cpu. */
export function augmentDevice(device: Device): Device {
  return device === "cuda" && env.augment === "device" ? "cuda" : "cpu";
}

/**
 * The data loader's upload hook: batches built on the CPU are copied to the GPU ahead of the step (views already
 * augmented there stay as they are).
 */
export function uploader(device: Device): ((b: Batch) => Promise<Batch>) | undefined {
  if (device === "cpu") return undefined;
  return async (b) => {
    const views = await Promise.all(b.views.map((v) => toDeviceAsync(v, device)));
    const labels = await toDeviceAsync(b.labels, device);
    const cpu = b;
    return {
      images: views[0],
      views,
      labels,
      size: b.size,
      index: b.index,
      skipped: b.skipped,
      dispose() {
        for (const v of views) v.dispose();
        labels.dispose();
        cpu.dispose();
      },
    };
  };
}
