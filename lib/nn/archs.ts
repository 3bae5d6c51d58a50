/**
 * The ResNets by MODEL.ARCH name: the CIFAR variant (3x3 stride-1 stem, no max-pool, models/cifar_resnet.py) and the
 * torchvision-style ImageNet variant (7x7 stride-2 stem and max-pool). Plain data, free of native imports, so that
 * lib/config can check MODEL.ARCH against it.
 */
export interface ResNetSpec {
  block: "basic" | "bottleneck";
  layers: [number, number, number, number];
  stem: "cifar" | "imagenet";
}

export const ARCHS: Record<string, ResNetSpec> = {
  cifar_resnet18: { block: "basic", layers: [2, 2, 2, 2], stem: "cifar" },
  cifar_resnet34: { block: "basic", layers: [3, 4, 6, 3], stem: "cifar" },
  cifar_resnet50: { block: "bottleneck", layers: [3, 4, 6, 3], stem: "cifar" },
  cifar_resnet101: { block: "bottleneck", layers: [3, 4, 23, 3], stem: "cifar" },
  cifar_resnet152: { block: "bottleneck", layers: [3, 8, 36, 3], stem: "cifar" },
  resnet18: { block: "basic", layers: [2, 2, 2, 2], stem: "imagenet" },
  resnet34: { block: "basic", layers: [3, 4, 6, 3], stem: "imagenet" },
  resnet50: { block: "bottleneck", layers: [3, 4, 6, 3], stem: "imagenet" },
  resnet101: { block: "bottleneck", layers: [3, 4, 23, 3], stem: "imagenet" },
};
