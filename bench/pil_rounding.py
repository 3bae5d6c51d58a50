"""How far the original's PIL pipeline, which rounds to uint8 after every op, lands from the float formulas our
augmentation computes (torchvision's tensor formulas; test/data checks ours against them within 5e-6), op by op with
the same parameters, on smooth synthetic colour images (a natural image's rounding behaviour; uniform noise would
exaggerate the resampling differences). Prints the mean and max |difference| in units of 1/255 per op and for
the whole ColorJitter + grayscale chain. Blur is left out: ours runs PIL's own extended box blur, in float.

python bench/pil_rounding.py [images]   (needs torch and Pillow: sh scripts/setup.sh --python)
"""
import math
import random
import sys

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageEnhance

from data_reference import blend, gray, hue, rrc_params
from data_reference_pil import adjust_hue


def smooth_image(rng, size):
    y, x = np.mgrid[0:size, 0:size] / size
    chans = []
    for _ in range(3):
        v = np.zeros((size, size))
        for _ in range(4):
            fx, fy, ph = rng.uniform(0.5, 4), rng.uniform(0.5, 4), rng.uniform(0, 2 * math.pi)
            v += rng.uniform(0.2, 1) * np.sin(2 * math.pi * (fx * x + fy * y) + ph)
        chans.append((v - v.min()) / (v.max() - v.min() + 1e-9))
    return (np.stack(chans, -1) * 255).round().astype(np.uint8)


def to_float(img):
    return torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    rng = np.random.default_rng(0)
    random.seed(0)
    torch.manual_seed(0)
    diffs = {k: [] for k in ("crop+resize 224->32 bilinear", "brightness", "contrast", "saturation", "hue", "grayscale", "jitter chain + grayscale")}

    def record(name, pil_img, x):
        diffs[name].append((to_float(pil_img) - x).abs().flatten() * 255)

    for _ in range(n):
        arr = smooth_image(rng, 224)
        img = Image.fromarray(arr)
        xf = to_float(img)
        top, left, h, w = rrc_params(224, 224)
        record("crop+resize 224->32 bilinear", img.crop((left, top, left + w, top + h)).resize((32, 32), Image.BILINEAR),
               F.interpolate(xf[None, :, top:top + h, left:left + w], size=(32, 32), mode="bilinear", align_corners=False, antialias=True)[0].clamp(0, 1))
        b, c, s, hf = (random.uniform(0.6, 1.4), random.uniform(0.6, 1.4), random.uniform(0.6, 1.4), random.uniform(-0.1, 0.1))
        record("brightness", ImageEnhance.Brightness(img).enhance(b), blend(xf, torch.zeros_like(xf), b))
        record("contrast", ImageEnhance.Contrast(img).enhance(c), blend(xf, gray(xf).mean(), c))
        record("saturation", ImageEnhance.Color(img).enhance(s), blend(xf, gray(xf), s))
        record("hue", adjust_hue(img, hf), hue(xf, hf))
        g = np.array(img.convert("L"))
        record("grayscale", Image.fromarray(np.dstack([g, g, g]), "RGB"), gray(xf).expand(3, -1, -1))
        pil, x = img, xf
        for fn in torch.randperm(4).tolist():
            if fn == 0:
                pil, x = ImageEnhance.Brightness(pil).enhance(b), blend(x, torch.zeros_like(x), b)
            elif fn == 1:
                pil, x = ImageEnhance.Contrast(pil).enhance(c), blend(x, gray(x).mean(), c)
            elif fn == 2:
                pil, x = ImageEnhance.Color(pil).enhance(s), blend(x, gray(x), s)
            else:
                pil, x = adjust_hue(pil, hf), hue(x, hf)
        g = np.array(pil.convert("L"))
        record("jitter chain + grayscale", Image.fromarray(np.dstack([g, g, g]), "RGB"), gray(x).expand(3, -1, -1))

    print(f"the original's PIL (uint8) ops against the float formulas, {n} smooth 224 px images; |difference| in 1/255:")
    print(f"  {'op':30} {'mean':>6} {'p99':>6} {'max':>6}")
    for name, d in diffs.items():
        d = torch.cat(d)
        print(f"  {name:30} {d.mean().item():6.2f} {d.quantile(0.99).item() if d.numel() <= 16_000_000 else float('nan'):6.2f} {d.max().item():6.2f}")


if __name__ == "__main__":
    main()
