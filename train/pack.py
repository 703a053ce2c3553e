"""A compact copy of a dataset, to carry to a machine that cannot read ../shared (a lent GPU).

`edgehound data pack SRC --out DIR --size 160` writes each photo as the trainer's cache would hold it
for a config with `crop = "none"` (the whole photo squeezed to size x size, the dog's box first where
the photo has one) and re-encodes it as JPEG. Training on DIR at that input size then sees the same
pixels but for the JPEG step, and the same split: the layout `train/<wnid>/<file name>` keeps each
photo's breed and name, which is what the fixed holdout hashes and `--exclude` matches.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edgehound.runtime.datasets import read_dataset
from edgehound.runtime.errors import EdgehoundError, ImageError
from edgehound.runtime.preprocess import PreprocessSpec, load_image, prepare
from edgehound.util import atomic_write_bytes, atomic_write_json, read_json_object

PACK_RECORD = "pack.json"  # what a pack was made from and how: a folder holding one may be packed into again


def pack_dataset(src: str | Path, out: str | Path, size: int = 160, quality: int = 85, breeds: list[str] | None = None,
                 exclude: tuple = (), per_breed: int = 0, progress: bool = True) -> dict:
    """Write the compact copy; returns its record (counts, bytes). Photos already packed (a killed run)
    are kept; unreadable ones are skipped and named, as training would skip them."""
    ds = read_dataset(src, breeds, exclude)
    out = Path(out)
    if Path(src).resolve() in (out.resolve(), *out.resolve().parents):
        raise EdgehoundError(f"{out}: inside the dataset it would copy ({src}); give a folder outside it")
    if out.exists() and any(out.iterdir()) and not (out / PACK_RECORD).is_file():
        raise EdgehoundError(f"{out}: a folder with other files in it; give a new folder (or an earlier pack)")
    record = {"source": str(src), "size": size, "quality": quality, "crop": "none", "use_boxes": True,
              "exclude": [str(e) for e in exclude], "per_breed": per_breed}
    if (out / PACK_RECORD).is_file():
        try:
            earlier = read_json_object(out / PACK_RECORD, "pack record")
        except EdgehoundError as e:
            raise EdgehoundError(f"{e}; give a new folder") from None
        differ = [k for k in ("size", "quality", "crop", "use_boxes") if earlier.get(k) != record[k]]
        if differ:
            raise EdgehoundError(f"{out}: an earlier pack with other {', '.join(differ)}; give a new folder")
    spec = PreprocessSpec(size=size, crop="none", use_boxes=True)
    samples = ds.samples
    if per_breed:  # the first N of each breed in file order: a small pack to check a plan on the CPU
        seen: dict[str, int] = {}
        kept = []
        for s in samples:
            seen[s.wnid] = seen.get(s.wnid, 0) + 1
            if seen[s.wnid] <= per_breed:
                kept.append(s)
        samples = kept
    skipped, written = [], 0
    for s in tqdm(samples, desc="packing", unit="photo", disable=not progress):
        dest = out / "train" / s.wnid / s.path.name
        if dest.is_file():
            continue
        try:
            rgb = prepare(load_image(s.path), spec, s.box)
        except ImageError as e:
            skipped.append(str(e))  # it names the file
            continue
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
        if not ok:
            raise EdgehoundError(f"{s.path}: OpenCV could not encode it as JPEG")
        atomic_write_bytes(dest, buf.tobytes())  # a killed pack leaves whole photos only
        written += 1
    files = list((out / "train").rglob("*"))
    record.update(photos=sum(f.is_file() for f in files), bytes=sum(f.stat().st_size for f in files if f.is_file()),
                  breeds={b.wnid: b.name for b in ds.classes}, skipped=skipped)
    atomic_write_json(out / PACK_RECORD, record)
    record["written"] = written
    return record
