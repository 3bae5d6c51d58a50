"""The original's SSL two-view pipeline on PIL images (torchvision's PIL path, which the original's DataLoader workers
run): RandomResizedCrop as crop + Image.resize(BILINEAR) (Pillow's resize antialiases), ColorJitter through
ImageEnhance.Brightness/Contrast/Color and the HSV hue shift of torchvision's F_pil.adjust_hue, RandomGrayscale as
convert("L") stacked three times, the original's GaussianBlur (ImageFilter.GaussianBlur(radius=sigma)) at 224 px,
transpose(FLIP_LEFT_RIGHT), ToTensor, Normalize. Each op rounds to uint8, as PIL does.
Selected by `python bench/data_reference.py ... pil`.
"""
import random

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageFilter

from data_reference import MEAN, STD, rrc_params


def adjust_hue(img, f):
    h, s, v = img.convert("HSV").split()
    np_h = np.array(h, dtype=np.uint8)
    with np.errstate(over="ignore", invalid="ignore"):
        np_h += np.array(f * 255).astype(np.uint8)  # torchvision F_pil.adjust_hue, wrapping
    return Image.merge("HSV", (Image.fromarray(np_h, "L"), s, v)).convert("RGB")


def view_pil(arr, size):
    img = Image.fromarray(arr)
    top, left, h, w = rrc_params(img.height, img.width)
    img = img.crop((left, top, left + w, top + h)).resize((size, size), Image.BILINEAR)
    if random.random() < 0.8:
        b, c, s, hf = (random.uniform(0.6, 1.4), random.uniform(0.6, 1.4), random.uniform(0.6, 1.4), random.uniform(-0.1, 0.1))
        for fn in torch.randperm(4).tolist():
            if fn == 0:
                img = ImageEnhance.Brightness(img).enhance(b)
            elif fn == 1:
                img = ImageEnhance.Contrast(img).enhance(c)
            elif fn == 2:
                img = ImageEnhance.Color(img).enhance(s)
            else:
                img = adjust_hue(img, hf)
    if random.random() < 0.2:
        g = np.array(img.convert("L"))
        img = Image.fromarray(np.dstack([g, g, g]), "RGB")
    if size > 32 and random.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=random.uniform(0.1, 2.0)))
    if random.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    x = torch.from_numpy(np.asarray(img, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
    return (x - MEAN) / STD
