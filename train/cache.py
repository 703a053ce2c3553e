"""Decoded, cropped, resized photos cached as one uint8 memmap, so epochs are not bound by JPEG decoding.

The cache key covers every file's path, size and mtime, its box, and the preprocessing spec, so a
changed photo or setting builds a new cache. Unreadable photos are skipped, counted and named.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from edgehound.runtime.errors import ImageError
from edgehound.runtime.preprocess import PreprocessSpec, load_image, prepare
from edgehound.runtime.datasets import Sample
from edgehound.util import atomic_write_text, remove_leftovers


def default_cache_dir() -> Path:
    return Path(os.environ.get("EDGEHOUND_CACHE", Path.home() / ".cache" / "edgehound"))


@dataclass
class ImageCache:
    images: np.ndarray  # uint8 N x S x S x 3, rows of skipped photos are zeros
    ok: np.ndarray  # bool N: False where the photo could not be read
    skipped: list[str]  # "path: reason" for each unreadable photo


def _key(samples: list[Sample], spec: PreprocessSpec) -> str:
    h = hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True).encode())
    for s in samples:
        st = s.path.stat()
        h.update(f"{s.path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{s.box}\n".encode())
    return h.hexdigest()[:24]


def load_cached(
    samples: list[Sample], spec: PreprocessSpec, cache_dir: Path | None = None, progress: bool = True
) -> ImageCache:
    cache_dir = Path(cache_dir or default_cache_dir())
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = _key(samples, spec)
    data_path, meta_path = cache_dir / f"{key}.npy", cache_dir / f"{key}.json"
    if meta_path.is_file() and data_path.is_file():  # the meta file is written last: it marks a complete cache
        cached = _read(data_path, meta_path, (len(samples), spec.size, spec.size, 3))
        if cached is not None:
            return cached
        print(f"note: {data_path}: the cache is damaged (cut short or not this one's shape); decoding the photos again")

    remove_leftovers(cache_dir, f"{key}.tmp*.npy")  # a build of this cache that was killed
    tmp_path = data_path.with_suffix(f".tmp{os.getpid()}.npy")
    try:
        images, ok, skipped = _build(samples, spec, tmp_path, progress)
        os.replace(tmp_path, data_path)  # renaming a file that is still mapped is fine on POSIX
    except BaseException:  # Ctrl-C or an error: no half-written cache file stays behind
        tmp_path.unlink(missing_ok=True)
        raise
    atomic_write_text(meta_path, json.dumps({"ok": ok.tolist(), "skipped": sorted(skipped)}))
    return ImageCache(np.load(data_path, mmap_mode="r"), ok, sorted(skipped))


def _read(data_path: Path, meta_path: Path, shape: tuple) -> ImageCache | None:
    """A complete cache, or None when its files are damaged (a disk that filled up, a copy cut short):
    the cache is derived data, so it is decoded again rather than trusted or failed on."""
    try:
        meta = json.loads(meta_path.read_text())
        images = np.load(data_path, mmap_mode="r")
        ok, skipped = np.array(meta["ok"], bool), list(meta["skipped"])
    except (OSError, ValueError, KeyError, TypeError):  # json's and NumPy's errors for a bad file are ValueErrors
        return None
    if images.shape != shape or images.dtype != np.uint8 or ok.shape != shape[:1]:
        return None
    return ImageCache(images, ok, skipped)


def _build(samples: list[Sample], spec: PreprocessSpec, tmp_path: Path, progress: bool):
    images = np.lib.format.open_memmap(tmp_path, mode="w+", dtype=np.uint8, shape=(len(samples), spec.size, spec.size, 3))
    ok = np.zeros(len(samples), bool)
    skipped: list[str] = []

    def work(i: int):
        try:
            images[i] = prepare(load_image(samples[i].path), spec, samples[i].box)
            ok[i] = True
        except ImageError as e:
            skipped.append(str(e))

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:  # OpenCV releases the GIL
        list(tqdm(pool.map(work, range(len(samples))), total=len(samples), desc="decoding photos",
                  unit="img", disable=not progress, leave=False))
    images.flush()
    return images, ok, skipped
