"""The one preprocessing path, shared by training, export checks and the on-device runtime.

decode (OpenCV, BGR->RGB, greyscale->3 channels) -> crop (to the dog's box plus a margin when a
box is known; otherwise the fallback named by `crop`) -> resize to size x size -> normalise.

Fallback without a box, `crop`:
- "center": the largest centred square (default; keeps the usual centred subject undistorted),
- "none": the whole frame squeezed to a square (keeps everything, distorts the aspect ratio).

Training caches the uint8 output of `prepare` and normalises batches itself with `normalize`;
the runtime calls `preprocess`. Both end in the same two functions, so the tensors are identical.
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np

from edgehound.runtime.errors import EdgehoundError, ImageError
from edgehound.util import is_number

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CROPS = ("center", "none")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
# A decoded image costs width x height x 3 bytes and more in OpenCV's buffers: a 30000x30000 PNG of
# 875 KB would take gigabytes. 50 megapixels covers the largest phone photos (48-50 MP).
MAX_PIXELS = int(os.environ.get("EDGEHOUND_MAX_PIXELS", 50_000_000))
MIN_SIDE = 32  # smaller images hold no dog to classify (a 1x1 image is not a photo)


@dataclass(frozen=True)
class PreprocessSpec:
    size: int = 300
    crop: str = "center"  # fallback when no box is known: "center" or "none"
    use_boxes: bool = False  # crop to the dog's bounding box when the photo has one
    box_margin: float = 0.1  # fraction of the box's width/height added on each side
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    channel_order: str = "RGB"
    layout: str = "NCHW"

    def __post_init__(self):
        """Every field's type and range, whoever builds the spec (a config, a manifest, a checkpoint):
        a wrong one would fail deep inside OpenCV or NumPy on the first photo, or classify NaNs."""

        def three(x, ok=is_number):
            return isinstance(x, (list, tuple)) and len(x) == 3 and all(map(ok, x))

        usable = {
            "size": isinstance(self.size, int) and not isinstance(self.size, bool) and 0 < self.size <= 4096,
            "crop": self.crop in CROPS, "use_boxes": isinstance(self.use_boxes, bool),
            "box_margin": is_number(self.box_margin) and 0 <= self.box_margin <= 1,
            "mean": three(self.mean), "std": three(self.std, lambda x: is_number(x) and x > 0),
            "channel_order": self.channel_order == "RGB",  # the only order the decoder produces
            "layout": self.layout in ("NCHW", "NHWC")}
        bad = [k for k, ok in usable.items() if not ok]
        if bad:
            raise ValueError(f"preprocess field {bad[0]!r} has an unusable value {getattr(self, bad[0])!r}")
        object.__setattr__(self, "mean", tuple(self.mean))  # JSON gives lists; the spec stays hashable
        object.__setattr__(self, "std", tuple(self.std))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d

    @classmethod
    def from_dict(cls, d: dict, where: str = "preprocess") -> "PreprocessSpec":
        """A spec from a record in a file (manifest, checkpoint); a bad record is an error naming `where`."""
        if not isinstance(d, dict):
            raise EdgehoundError(f"{where}: the preprocess record is missing or not an object")
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise EdgehoundError(f"{where}: unknown preprocess field(s) {', '.join(sorted(unknown))}")
        try:
            return cls(**d)
        except ValueError as e:
            raise EdgehoundError(f"{where}: {e}") from None


def image_size(buf: np.ndarray) -> tuple[int, int] | None:
    """(width, height) from the image's header, without decoding its pixels (None: not a format Pillow
    knows). Pillow's own bomb limit is far above ours; past it, the size comes from its message."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(buf.tobytes())) as im:
                return im.size
    except Image.DecompressionBombError as e:
        pixels = re.search(r"\((\d+) pixels\)", str(e))
        return (int(pixels.group(1)), 1) if pixels else (1 << 32, 1)
    except (UnidentifiedImageError, OSError, ValueError):
        return None


def decode_image(data: bytes | np.ndarray, name: str = "<bytes>") -> np.ndarray:
    """Encoded image bytes -> RGB uint8 HxWx3. Greyscale and alpha images become 3-channel RGB.

    Refused with an ImageError naming the file: more than MAX_PIXELS (checked from the header,
    before any pixel is decoded), a side under MIN_SIDE pixels, a JPEG cut short."""
    buf = np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray)) else data
    is_jpeg = buf[:2].tobytes() == b"\xff\xd8"
    if is_jpeg and b"\xff\xd9" not in buf[-4096:].tobytes():
        # libjpeg decodes a truncated JPEG with a grey bottom and only a warning: refuse it instead
        raise ImageError(f"{name}: truncated JPEG (no end-of-image marker)")
    size = image_size(buf) if buf.size else None
    if size is not None:
        width, height = size
        if width * height > MAX_PIXELS:
            raise ImageError(f"{name}: {width * height / 1e6:.0f} megapixels, over the limit of "
                             f"{MAX_PIXELS / 1e6:.0f} (EDGEHOUND_MAX_PIXELS); not decoded")
        if min(width, height) < MIN_SIDE:
            raise ImageError(f"{name}: {width}x{height} is too small to classify (under {MIN_SIDE} px a side)")
    img = cv2.imdecode(buf, cv2.IMREAD_COLOR) if buf.size else None
    if img is None or img.size == 0:
        raise ImageError(f"{name}: not a readable image (corrupt, truncated or not an image format)")
    if is_jpeg and _grey_filled_bottom(img):
        raise ImageError(f"{name}: truncated JPEG (its last rows are the decoder's grey fill: the data ends early)")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def _grey_filled_bottom(bgr: np.ndarray, rows: int = 8) -> bool:
    """libjpeg fills the blocks of a baseline JPEG whose data ran out with exact mid-grey (128, 128, 128).
    A bottom band of exact 128 under a picture that is not itself flat grey is that fill, not a photo."""
    if bgr.shape[0] < 2 * rows:
        return False
    return bool((bgr[-rows:] == 128).all() and not (bgr[:rows] == 128).all())


def load_image(path: str | Path) -> np.ndarray:
    """Read and decode an image file -> RGB uint8 HxWx3, or ImageError naming the file."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ImageError(f"{path}: cannot read ({e.strerror or e})") from None
    return decode_image(data, str(path))


def crop_region(height: int, width: int, spec: PreprocessSpec, box=None) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the region to keep: the box plus margin (if the spec uses boxes), or the fallback crop."""
    if box is not None and spec.use_boxes:
        x0, y0, x1, y1 = box
        mx, my = (x1 - x0) * spec.box_margin, (y1 - y0) * spec.box_margin
        x0, y0 = max(0, int(round(x0 - mx))), max(0, int(round(y0 - my)))
        x1, y1 = min(width, int(round(x1 + mx))), min(height, int(round(y1 + my)))
        if x1 - x0 >= 2 and y1 - y0 >= 2:
            return x0, y0, x1, y1
    if spec.crop == "center":
        side = min(height, width)
        x0, y0 = (width - side) // 2, (height - side) // 2
        return x0, y0, x0 + side, y0 + side
    return 0, 0, width, height


def prepare(rgb: np.ndarray, spec: PreprocessSpec, box=None) -> np.ndarray:
    """RGB uint8 image -> cropped, resized RGB uint8 size x size x 3 (what training caches)."""
    if rgb.ndim == 2:
        rgb = cv2.cvtColor(rgb, cv2.COLOR_GRAY2RGB)
    x0, y0, x1, y1 = crop_region(rgb.shape[0], rgb.shape[1], spec, box)
    region = rgb[y0:y1, x0:x1]
    shrinking = region.shape[0] >= spec.size and region.shape[1] >= spec.size
    interp = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(region, (spec.size, spec.size), interpolation=interp))


def normalize(images: np.ndarray, spec: PreprocessSpec, quantization: dict | None = None) -> np.ndarray:
    """uint8 images NxHxWx3 (or one HxWx3) -> normalised model input in the spec's layout: float32, or,
    for a model that takes quantized input (quantization: dtype, scale, zero_point), its integers.

    One table lookup per pixel (cv2.LUT, pixel_table): the same numbers as computing
    (x - mean) / std in float32 and then quantizing, at a tenth of the time."""
    batch = images[None] if images.ndim == 3 else images
    n, h, w, c = batch.shape
    table = pixel_table(spec.mean, spec.std, **(quantization or {}))
    out = cv2.LUT(np.ascontiguousarray(batch).reshape(n * h, w, c), table).reshape(n, h, w, c)
    if spec.layout == "NCHW":
        out = np.ascontiguousarray(out.transpose(0, 3, 1, 2))
    return out[0] if images.ndim == 3 else out


@functools.lru_cache(maxsize=8)
def pixel_table(mean: tuple, std: tuple, dtype: str = "float32", scale: float = 1.0, zero_point: int = 0) -> np.ndarray:
    """256 x 1 x 3: each channel's model input for each 8-bit value, (v - mean*255) / (std*255) in
    float32, quantized with the model's scale and zero point when it takes integers."""
    values = np.arange(256, dtype=np.float32)[:, None, None]
    table = (values - np.asarray(mean, np.float32) * 255.0) * (1.0 / (np.asarray(std, np.float32) * 255.0))
    if dtype != "float32":  # as onnxruntime and LiteRT quantize a float input: round half to even, clip
        info = np.iinfo(dtype)
        table = np.clip(np.round(table / np.float32(scale)) + zero_point, info.min, info.max).astype(dtype)
    return table.reshape(256, 1, 3)


def preprocess(image: np.ndarray | str | Path, spec: PreprocessSpec, box=None) -> np.ndarray:
    """A file path or RGB uint8 image -> one float32 model input (CxHxW for NCHW)."""
    rgb = load_image(image) if isinstance(image, (str, Path)) else image
    return normalize(prepare(rgb, spec, box), spec)
