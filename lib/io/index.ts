export * from "./backbone_keys";
export * from "./checkpoint";
export * from "./errors";
export * from "./host_tensor";
export * from "./safetensors";
export * from "./sniff";
export { loadTorchCheckpoint, parseTorchCheckpoint } from "./torch_pickle";
export { unpickle, type PickleGlobal, type UnpickleOptions } from "./pickle";
export { ZipReader, type ZipEntry } from "./zip";
