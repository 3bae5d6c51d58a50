/** TRAIN.DATASET values: the original's nine, plus the built-in Fashion-MNIST. Free of native imports (lib/config reads it). */
export const DATASET_NAMES = ["cifar10", "cifar100", "imagenet", "aircraft", "caltech101", "dtd", "flowers", "food101", "pets", "fmnist"] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

export function isDatasetName(name: string): name is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(name);
}
