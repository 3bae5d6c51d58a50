"""PyTorch reference for bench/data.bench.ts: the SSL two-view pipeline per image, as DataLoader workers run it.

torchvision is not importable here, so each step is torchvision's tensor-path formula in torch ops:
RandomResizedCrop (get_params + crop + antialiased interpolate), RandomApply(ColorJitter(0.4, 0.4, 0.4, 0.1),
p=0.8) in a random order, RandomGrayscale(0.2), for 224 px RandomApply(GaussianBlur(sigma U[0.1, 2]), 0.5) as a
separable Gaussian conv (kernel 2 ceil(3 sigma) + 1), RandomHorizontalFlip, ToTensor, Normalize, and two views
per image. `workers` processes with one torch thread each stand for DataLoader(num_workers=workers).
Prints one JSON line per (size, workers): {"size", "workers", "images_per_s", "cpu_us_per_image"}.
Usage: python bench/data_reference.py SIZE:N[,SIZE:N] WORKERS[,WORKERS] ROUNDS [tensor|pil]
("pil": the original's PIL path instead, bench/data_reference_pil.py, when Pillow is installed.)
"""

import json
import math
import multiprocessing as mp
import random
import resource
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)


def rrc_params(h, w, scale=(0.2, 1.0), ratio=(3 / 4, 4 / 3)):
    area = h * w
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target = area * random.uniform(*scale)
        ar = math.exp(random.uniform(*log_ratio))
        cw, ch = int(round(math.sqrt(target * ar))), int(round(math.sqrt(target / ar)))
        if 0 < cw <= w and 0 < ch <= h:
            return random.randint(0, h - ch), random.randint(0, w - cw), ch, cw
    return 0, 0, h, w


def gray(x):
    return (0.2989 * x[0] + 0.587 * x[1] + 0.114 * x[2]).unsqueeze(0)


def blend(a, b, r):
    return (r * a + (1 - r) * b).clamp(0, 1)


def hue(x, f):
    r, g, b = x.unbind(0)
    maxc, minc = x.max(0).values, x.min(0).values
    eqc = maxc == minc
    cr = maxc - minc
    ones = torch.ones_like(maxc)
    s = cr / torch.where(eqc, ones, maxc)
    crd = torch.where(eqc, ones, cr)
    rc, gc, bc = (maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd
    h = (maxc == r) * (bc - gc) + ((maxc == g) & (maxc != r)) * (2.0 + rc - bc) + ((maxc != g) & (maxc != r)) * (4.0 + gc - rc)
    h = torch.fmod(h / 6.0 + 1.0, 1.0)
    h = (h + f) % 1.0
    i = torch.floor(h * 6.0)
    fr = h * 6.0 - i
    i = i.to(torch.int32) % 6
    v = maxc
    p = (v * (1 - s)).clamp(0, 1)
    q = (v * (1 - s * fr)).clamp(0, 1)
    t = (v * (1 - s * (1 - fr))).clamp(0, 1)
    mask = i.unsqueeze(0) == torch.arange(6).view(-1, 1, 1)
    a4 = torch.stack((torch.stack((v, q, p, p, t, v)), torch.stack((t, v, v, q, p, p)), torch.stack((p, p, t, v, v, q))))
    return torch.einsum("ijk,xijk->xjk", mask.to(x.dtype), a4)


def blur(x, sigma):
    k = 2 * math.ceil(3 * sigma) + 1
    t = torch.arange(k, dtype=torch.float32) - k // 2
    w = torch.exp(-0.5 * (t / sigma) ** 2)
    w = w / w.sum()
    x = F.pad(x[None], (k // 2, k // 2, k // 2, k // 2), mode="reflect")
    x = F.conv2d(x, w.view(1, 1, 1, k).expand(3, 1, 1, k), groups=3)
    return F.conv2d(x, w.view(1, 1, k, 1).expand(3, 1, k, 1), groups=3)[0]


def view(img, size):
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)
    top, left, h, w = rrc_params(x.shape[1], x.shape[2])
    x = F.interpolate(x[None, :, top:top + h, left:left + w], size=(size, size), mode="bilinear", align_corners=False, antialias=True)[0]
    if random.random() < 0.8:
        b, c, s, hf = (random.uniform(0.6, 1.4), random.uniform(0.6, 1.4), random.uniform(0.6, 1.4), random.uniform(-0.1, 0.1))
        for fn in torch.randperm(4).tolist():
            if fn == 0:
                x = blend(x, torch.zeros_like(x), b)
            elif fn == 1:
                x = blend(x, gray(x).mean(), c)
            elif fn == 2:
                x = blend(x, gray(x), s)
            else:
                x = hue(x, hf)
    if random.random() < 0.2:
        x = gray(x).expand(3, -1, -1)
    if size > 32 and random.random() < 0.5:
        x = blur(x, random.uniform(0.1, 2.0))
    if random.random() < 0.5:
        x = x.flip(-1)
    return (x - MEAN) / STD


def work(args):
    images, size, mode = args
    torch.set_num_threads(1)
    if mode == "pil":
        from data_reference_pil import view_pil as fn
    else:
        fn = view
    for img in images:
        fn(img, size), fn(img, size)
    return len(images)


def main():
    sizes = [tuple(map(int, s.split(":"))) for s in sys.argv[1].split(",")]
    workers = [int(w) for w in sys.argv[2].split(",")]
    rounds = int(sys.argv[3])
    mode = sys.argv[4] if len(sys.argv) > 4 else "tensor"
    rng = np.random.default_rng(0)
    for size, n in sizes:
        images = [rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8) for _ in range(n)]
        for nw in workers:
            chunks = [(images[i::nw], size, mode) for i in range(nw)]
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            pool = mp.get_context("fork").Pool(nw)
            pool.map(work, [(c[0][:2], size, mode) for c in chunks])  # warm up
            best = math.inf
            for _ in range(rounds):
                t = time.perf_counter()
                pool.map(work, chunks)
                best = min(best, time.perf_counter() - t)
            pool.close()
            pool.join()
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            done = rounds * n + 2 * nw
            print(json.dumps({"size": size, "workers": nw, "images_per_s": n / best, "cpu_us_per_image": 1e6 * cpu / done}), flush=True)


if __name__ == "__main__":
    main()
