"""Training augmentation: one affine warp and colour jitter, drawn once and applied by OpenCV (per photo,
in the worker processes) or by torch (a whole batch on the GPU).

The warp is either zoom, shift, rotation and flip (the study's), or, with `crop_scale`, a
random-resized crop (a part of 25-100% of the area, say, at an aspect of 3/4-4/3, stretched to the
whole frame) and flip: the small-data recipe.

Every random draw comes from the generator passed in, seeded per (run seed, epoch, photo), so an
interrupted training that resumes sees exactly the augmented photos it would have seen, and both
appliers get the same draws.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F


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


@dataclass(frozen=True)
class Draw:
    """One photo's augmentation: where each output pixel comes from, and the colour jitter's factors."""
    warp: np.ndarray  # 2 x 3, input pixel -> output pixel (cv2.warpAffine's matrix)
    saturation: float
    contrast: float
    brightness: float


def photo_rng(aug_seed: tuple, photo: int) -> np.random.Generator:
    """The generator of one photo's draws: seeded by (run seed, epoch) and the photo's index, so every
    applier, process and resumed run draws the same for it."""
    return np.random.default_rng([*aug_seed, int(photo)])


def draw(h: int, w: int, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> Draw:
    """The random part of augmenting an h x w photo."""
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
    saturation = 1 + rng.uniform(-cfg.saturation, cfg.saturation)
    contrast = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
    brightness = 1 + rng.uniform(-cfg.brightness, cfg.brightness)
    return Draw(m, saturation, contrast, brightness)


def augment(img: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig = AugmentConfig()) -> np.ndarray:
    """uint8 HxWx3 RGB -> an augmented copy of the same shape."""
    h, w = img.shape[:2]
    d = draw(h, w, rng, cfg)
    out = cv2.warpAffine(img, d.warp, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return cv2.transform(out, colour_matrix(cv2.mean(out)[:3], d.saturation, d.contrast, d.brightness))


def batch_params(draws: list[Draw], h: int, w: int) -> torch.Tensor:
    """The draws of a batch as one float32 N x 9 tensor for `augment_batch`: each output pixel's source (the
    inverse warp, in grid_sample's [-1, 1] coordinates: with align_corners, -1 and 1 are the edge pixels'
    centres, as OpenCV's integer coordinates are) and the three colour factors."""
    full = np.zeros((len(draws), 3, 3))
    full[:, :2] = [d.warp for d in draws]
    full[:, 2, 2] = 1
    to_norm = np.array([[2 / (w - 1), 0, -1], [0, 2 / (h - 1), -1]])
    from_norm = np.array([[(w - 1) / 2, 0, (w - 1) / 2], [0, (h - 1) / 2, (h - 1) / 2], [0, 0, 1]])
    theta = to_norm @ np.linalg.inv(full) @ from_norm  # output [-1, 1] -> input [-1, 1]
    factors = [[d.saturation, d.contrast, d.brightness] for d in draws]
    return torch.from_numpy(np.hstack([theta.reshape(-1, 6), factors])).float()


def augment_batch(images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
    """`augment` of a whole uint8 N x H x W x 3 batch where it lies (the GPU), given `batch_params` there.

    The same warp (bilinear; the border mirrored about its edge pixels, as BORDER_REFLECT_101) and the same
    colour matrix, each rounded to uint8 as OpenCV does. OpenCV interpolates in fixed point, so a pixel may
    differ from `augment`'s by a level or two. Nothing is read back to the host: no wait for the GPU."""
    n, h, w, _ = images.shape
    grid = F.affine_grid(params[:, :6].view(n, 2, 3), [n, 3, h, w], align_corners=True)
    x = F.grid_sample(images.permute(0, 3, 1, 2).float(), grid, mode="bilinear", padding_mode="reflection",
                      align_corners=True).round()
    saturation, contrast, brightness = params[:, 6:].T[..., None, None]  # each N x 1 x 1
    # colour_matrix, batched: saturation towards each pixel's grey, contrast about the saturated photo's mean
    eye, grey = _colour_constants(x.device)
    sat = saturation * eye + (1 - saturation) * grey
    mean = (sat @ x.mean((2, 3))[..., None]).mean((1, 2))  # N
    x = torch.einsum("nij,njhw->nihw", brightness * contrast * sat, x)
    x = x + (brightness[:, 0, 0] * (1 - contrast[:, 0, 0]) * mean)[:, None, None, None]
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)


GREY = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma weights


@functools.lru_cache(maxsize=4)
def _colour_constants(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # made once per device: a copy from the host each batch would wait for the GPU's queued work
    return torch.eye(3, device=device), torch.from_numpy(GREY).float().to(device)


def colour_matrix(means, saturation: float, contrast: float, brightness: float) -> np.ndarray:
    """The colour jitter as one 3x4 matrix for cv2.transform (uint8 in, rounded and clipped uint8 out).

    Each step is linear in the pixel: saturation blends it with its grey (x' = s*x + (1-s)*grey), contrast
    scales it about the image's mean (x'' = mean + c*(x' - mean)), brightness scales it (b*x''). Composed,
    that is one matrix and an offset; in float per pixel it was 34x slower and most of an augmented
    photo's cost, which CUDA training's worker processes must keep up with."""
    sat = saturation * np.eye(3) + (1 - saturation) * np.tile(GREY, (3, 1))
    mean = float((sat @ np.asarray(means, dtype=np.float64)).mean())  # the saturated image's mean over all channels
    return np.hstack([brightness * contrast * sat, np.full((3, 1), brightness * (1 - contrast) * mean)])
