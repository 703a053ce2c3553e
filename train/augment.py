"""Training augmentation with OpenCV: one affine warp and colour jitter.

The warp is either zoom, shift, rotation and flip (the study's), or, with `crop_scale`, a
random-resized crop (a part of 25-100% of the area, say, at an aspect of 3/4-4/3, stretched to the
whole frame) and flip: the small-data recipe.

Every random draw comes from the generator passed in, seeded per (run seed, epoch, photo), so an
interrupted training that resumes sees exactly the augmented photos it would have seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.8, 1.2)  # zoom range (>1 crops in, <1 pads with reflected border)
    shift: float = 0.1  # max translation as a fraction of the side
    rotate: float = 15.0  # max rotation in degrees
    flip: bool = True  # horizontal flip with p=0.5
    brightness: float = 0.2  # +-fraction
    contrast: float = 0.2  # +-fraction
    saturation: float = 0.2  # +-fraction
    crop_scale: tuple[float, ...] = ()  # (min, max) area of a random-resized crop; () = zoom/shift/rotate
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)  # aspect range of that crop (drawn log-uniformly)


def augment(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """uint8 HxWx3 RGB -> an augmented copy of the same shape."""
    h, w = img.shape[:2]
    if cfg.crop_scale:
        area = rng.uniform(*cfg.crop_scale) * w * h
        ratio = math.exp(rng.uniform(*np.log(cfg.crop_ratio)))
        cw, ch = min(math.sqrt(area * ratio), w), min(math.sqrt(area / ratio), h)
        x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
        m = np.array([[w / cw, 0, -x0 * w / cw], [0, h / ch, -y0 * h / ch]])  # the crop onto the whole frame
    else:
        angle = rng.uniform(-cfg.rotate, cfg.rotate)
        scale = rng.uniform(*cfg.scale)
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, scale)
        m[:, 2] += rng.uniform(-cfg.shift, cfg.shift, 2) * (w, h)
    if cfg.flip and rng.random() < 0.5:
        m[0] = -m[0]  # mirror the output x: x' = w - 1 - x
        m[0, 2] += w - 1
    out = cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    saturation = 1 + rng.uniform(-cfg.saturation, cfg.saturation)
    contrast = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
    brightness = 1 + rng.uniform(-cfg.brightness, cfg.brightness)
    return cv2.transform(out, colour_matrix(cv2.mean(out)[:3], saturation, contrast, brightness))


GREY = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights


def colour_matrix(means, saturation: float, contrast: float, brightness: float) -> np.ndarray:
    """The colour jitter as one 3x4 matrix for cv2.transform (uint8 in, rounded and clipped uint8 out).

    Each step is linear in the pixel: saturation blends it with its grey (x' = s*x + (1-s)*grey), contrast
    scales it about the image's mean (x'' = mean + c*(x' - mean)), brightness scales it (b*x''). Composed,
    that is one matrix and an offset; in float per pixel it was 34x slower and most of an augmented
    photo's cost, which CUDA training's worker processes must keep up with."""
    sat = saturation * np.eye(3) + (1 - saturation) * np.tile(GREY, (3, 1))
    mean = float((sat @ np.asarray(means, dtype=np.float64)).mean())  # the saturated image's mean over all channels
    return np.hstack([brightness * contrast * sat, np.full((3, 1), brightness * (1 - contrast) * mean)])
