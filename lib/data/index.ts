/** The data capability: datasets, augmentation pipelines, samplers and the prefetching loader. */
export { augment, sampleBatchParams, setDataThreads } from "./augment";
export { CIFAR_FOLDERS, readCifar, type CifarLayout, type CifarVariant } from "./cifar";
export { InMemoryDataset, type ImageDataset, type Mode, type SourceBatch } from "./dataset";
export { DATASET_NAMES, isDatasetName, type DatasetName } from "./dataset_names";
export { FMNIST_SYSTEM_DIR, MODES, openDataset, resolveDataRoot, type DataLocation, type DataRootOptions, type OpenDatasetOptions } from "./datasets";
export { FMNIST_CLASSES, FMNIST_MEAN, FMNIST_STD, readFashionMnist } from "./fmnist";
export { DECODED_EXTENSIONS, IMG_EXTENSIONS, ImageFolderDataset, type OnCorrupt } from "./image_folder";
export { DataLoader, type Batch, type LoaderOptions } from "./loader";
export { NdArray, Tuple, dictGet, unpickleNumpy, type PyValue } from "./numpy_pickle";
export { Rng, type RngState } from "../tensor/prng";
export { DistributedEvalSampler, DistributedSampler, batchIndices, type EvalSamplerOptions, type Sampler, type SamplerOptions } from "./sampler";
export {
  CIFAR_MEAN,
  CIFAR_STD,
  IMAGENET_MEAN,
  IMAGENET_STD,
  colorJitter,
  describePipeline,
  evalPipeline,
  jitterRange,
  linearEvalPipelines,
  outputSize,
  parsePair,
  randomResizedCropParams,
  resizedSize,
  roundHalfEven,
  sampleRecord,
  sslPipeline,
  trainPipeline,
  type AugmentSpec,
  type AugTrainConfig,
  type AugEvalConfig,
  type ColorJitterSpec,
  type CropBox,
  type DataConfig,
  type Geometry,
  type Pipeline,
} from "./transforms";
