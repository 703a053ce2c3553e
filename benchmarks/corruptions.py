"""Camera conditions, ImageNet-C style: each a function of (uint8 RGB image, severity 1..5, rng).

Applied to the image the model sees (after crop and resize, as ImageNet-C applies them at 224 px),
with strengths relative to the image's side so a 160 px and a 300 px model get the same scene.
Each is a few OpenCV calls; noise and motion direction come from the rng, so a seeded run repeats.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

SEVERITIES = (1, 2, 3, 4, 5)


def gaussian_blur(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    sigma = (0.004, 0.008, 0.012, 0.018, 0.025)[severity - 1] * img.shape[0]  # an out-of-focus lens
    return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)


def motion_blur(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A line kernel in a random direction: the camera or the dog moved during the exposure."""
    length = max(3, int(round((0.03, 0.05, 0.08, 0.11, 0.15)[severity - 1] * img.shape[0])))
    kernel = np.zeros((length, length), np.float32)
    kernel[length // 2, :] = 1.0 / length
    angle = float(rng.uniform(0, 180))
    rot = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(img, -1, kernel, borderType=cv2.BORDER_REFLECT)


def gaussian_noise(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    std = (0.04, 0.07, 0.10, 0.14, 0.19)[severity - 1] * 255  # sensor noise of a dim scene
    return np.clip(img + rng.normal(0, std, img.shape), 0, 255).astype(np.uint8)


def darker(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    factor = (0.7, 0.5, 0.35, 0.22, 0.12)[severity - 1]  # under-exposed, before the sensor's 8 bits
    return np.round(img * factor).astype(np.uint8)


def brighter(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    factor = (1.3, 1.6, 2.0, 2.5, 3.2)[severity - 1]  # over-exposed: highlights clip to white
    return np.clip(np.round(img * factor), 0, 255).astype(np.uint8)


def jpeg(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    quality = (40, 25, 15, 10, 5)[severity - 1]  # a congested video stream
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def rotation(img: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A tilted camera: the picture turned by the angle, either way, its corners filled by reflection."""
    angle = (5, 10, 15, 22, 30)[severity - 1] * float(rng.choice([-1, 1]))
    h, w = img.shape[:2]
    rot = cv2.getRotationMatrix2D(((w - 1) / 2, (h - 1) / 2), angle, 1.0)
    return cv2.warpAffine(img, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


CORRUPTIONS: dict[str, Callable[[np.ndarray, int, np.random.Generator], np.ndarray]] = {
    "gaussian_blur": gaussian_blur,
    "motion_blur": motion_blur,
    "gaussian_noise": gaussian_noise,
    "darker": darker,
    "brighter": brighter,
    "jpeg": jpeg,
    "rotation": rotation,
}


def corrupt(images: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """N x H x W x 3 uint8 -> the same images under one condition. Image i draws from its own
    generator (seed, i), so a photo gets the same noise whichever others share its run."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r} (known: {', '.join(CORRUPTIONS)})")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    fn = CORRUPTIONS[name]
    return np.stack([fn(img, severity, np.random.default_rng([seed, i])) for i, img in enumerate(images)])
