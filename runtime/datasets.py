"""Readers for the three dataset layouts, chosen automatically, and deterministic splits.

They live in the runtime because a device scores a folder of photos with them (`evaluate`);
training imports them from here.

- Stanford Dogs: ROOT/Images/<wnid>-<name>/*.jpg, boxes in ROOT/Annotation/<same folder>/<image id>
  (Pascal VOC XML, no extension) when that folder exists.
- Kaggle dog-breed: ROOT/labels.csv (id,breed) with images in ROOT/train/<id>.jpg.
- Folder per breed: ROOT/<wnid | stanford folder | breed name>/*.jpg (ImageNet / ImageFolder).
"""

from __future__ import annotations

import csv
import hashlib
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgehound.runtime.breeds import Breed, breed_for_folder, resolve_breed
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.preprocess import IMAGE_SUFFIXES

@dataclass(frozen=True)
class Sample:
    path: Path
    wnid: str
    box: tuple[int, int, int, int] | None = None  # x0, y0, x1, y1 in pixels of the original image

    def to_dict(self) -> dict:
        """JSON form, for handing photo lists to worker processes."""
        return {"path": str(self.path), "wnid": self.wnid, "box": self.box}

    @classmethod
    def from_dict(cls, d: dict) -> "Sample":
        return cls(Path(d["path"]), d["wnid"], tuple(d["box"]) if d["box"] else None)


@dataclass
class Dataset:
    root: Path
    layout: str
    classes: list[Breed]  # index = label
    samples: list[Sample]
    notes: list[str] = field(default_factory=list)  # e.g. unreadable box files

    def labels(self) -> np.ndarray:
        index = {b.wnid: i for i, b in enumerate(self.classes)}
        return np.array([index[s.wnid] for s in self.samples], dtype=np.int64)

    def counts(self) -> dict[str, int]:
        return dict(Counter(s.wnid for s in self.samples))


def detect_layout(root: Path) -> str:
    if (root / "Images").is_dir():
        return "stanford"
    if (root / "labels.csv").is_file():
        return "kaggle"
    if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
        return "folders"
    raise EdgehoundError(
        f"{root}: not a dataset folder: expected Images/ (Stanford Dogs), labels.csv (Kaggle) "
        f"or one sub-folder per breed"
    )


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_voc_box(path: Path) -> tuple[int, int, int, int]:
    """The largest <object><bndbox> of a Pascal VOC annotation file."""
    boxes = []
    for obj in ET.parse(path).getroot().iter("object"):
        bb = obj.find("bndbox")
        if bb is not None:
            x0, y0, x1, y1 = (int(float(bb.findtext(k))) for k in ("xmin", "ymin", "xmax", "ymax"))
            boxes.append((x0, y0, x1, y1))
    if not boxes:
        raise ValueError("no <object><bndbox>")
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


def _read_stanford(root: Path, notes: list[str]) -> list[Sample]:
    samples = []
    for folder in _subdirs(root / "Images"):
        breed = breed_for_folder(folder.name)
        ann_dir = root / "Annotation" / folder.name
        for img in _images_in(folder):
            box = None
            ann = ann_dir / img.stem
            if ann.is_file():
                try:
                    box = read_voc_box(ann)
                except (ET.ParseError, ValueError, TypeError, OverflowError) as e:  # OverflowError: a box at "inf"
                    notes.append(f"{ann}: box ignored ({e})")
            samples.append(Sample(img, breed.wnid, box))
    return samples


def _read_kaggle(root: Path, notes: list[str]) -> list[Sample]:
    samples = []
    labels = root / "labels.csv"
    try:
        with open(labels, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not {"id", "breed"} <= set(reader.fieldnames or ()):
                raise EdgehoundError(f"{labels}: expected columns id,breed, got {reader.fieldnames}")
            for line, row in enumerate(reader, start=2):
                image_id, breed = row.get("id"), row.get("breed")
                # an id is a file name in train/: one that climbs out of it (../, /) is not read
                if not image_id or not breed or "/" in image_id or "\\" in image_id or image_id.startswith("."):
                    notes.append(f"{labels}:{line}: not an image id and a breed ({image_id!r}, {breed!r}); skipped")
                    continue
                path = root / "train" / f"{image_id}.jpg"
                if not path.is_file():
                    notes.append(f"{path}: listed in labels.csv but missing")
                    continue
                samples.append(Sample(path, breed_for_folder(breed).wnid))
    except (UnicodeDecodeError, csv.Error) as e:
        raise EdgehoundError(f"{labels}: not a readable CSV file ({e})") from None
    return samples


def _read_folders(root: Path, notes: list[str]) -> list[Sample]:
    samples = []
    for folder in _subdirs(root):
        images = _images_in(folder)
        if images:
            wnid = breed_for_folder(folder.name).wnid
            samples.extend(Sample(p, wnid) for p in images)
    return samples


_READERS = {"stanford": _read_stanford, "kaggle": _read_kaggle, "folders": _read_folders}


def read_dataset(
    root: str | Path,
    breeds: list[str] | None = None,
    exclude: list[str | Path] = (),
) -> Dataset:
    """Read a dataset in any of the three layouts.

    breeds: the classes to keep, in label order (any spelling); None keeps every class found.
    exclude: folders whose image file names are left out (e.g. the committed sample photos).
    """
    root = Path(root)
    if not root.exists():
        raise EdgehoundError(f"{root}: no such dataset folder")
    layout = detect_layout(root)
    notes: list[str] = []
    if layout == "folders" and (root / "train").is_dir() and not any(_images_in(p) for p in _subdirs(root)):
        root = root / "train"  # an ImageNet-style root (train/<wnid>/...), as in imagewoof
        notes.append(f"reading {root}")
    samples = _READERS[layout](root, notes)
    excluded = {p.name for d in exclude for p in Path(d).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
    left_out = 0
    if excluded:
        kept = [s for s in samples if s.path.name not in excluded]
        left_out = len(samples) - len(kept)
        notes.append(f"{left_out} photos left out (--exclude)")
        samples = kept
    found = {s.wnid: breed_for_folder(s.wnid) for s in samples}
    if breeds:
        classes = [found.get(b) or resolve_breed(b) for b in breeds]  # a custom folder name, or a breed
        twice = sorted({b.name for b in classes if sum(c.wnid == b.wnid for c in classes) > 1})
        if twice:
            raise EdgehoundError(f"--breeds names {', '.join(twice)} more than once (spellings of one breed)")
        missing = [b.name for b in classes if b.wnid not in found]
        if missing:
            raise EdgehoundError(f"{root}: no photos of {', '.join(missing)} (found: {_names(found) or 'none'}"
                                 + (f"; {left_out} left out as excluded)" if left_out else ")"))
    else:
        classes = [found[w] for w in sorted(found)]
    wanted = {b.wnid for b in classes}
    samples = [s for s in samples if s.wnid in wanted]
    if not samples:
        raise EdgehoundError(f"{root}: no images found ({layout} layout"
                             + (f"; {left_out} left out as excluded)" if left_out else ")"))
    return Dataset(root, layout, classes, samples, notes)


def _names(found: dict[str, Breed]) -> str:
    return ", ".join(sorted(b.name for b in found.values()))


HOLDOUTS = ("seeded", "fixed")


def photo_key(sample: Sample) -> str:
    """What names a photo for the fixed holdout: its breed and file name, not where the folder lies."""
    return f"{sample.wnid}/{sample.path.name}"


def _unit_hash(key: str) -> float:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64


@dataclass
class Split:
    train: np.ndarray  # indices into Dataset.samples
    val: np.ndarray
    test: np.ndarray


def split_indices(
    labels: np.ndarray,
    seed: int = 0,
    test_frac: float = 0.5,
    val_frac: float = 0.1,
    per_class: int | None = None,
    folds: int | None = None,
    fold: int = 0,
    holdout: str = "seeded",
    keys: list[str] | None = None,
) -> Split:
    """Stratified, seeded split: test_frac of each class is test; the rest is the training pool.

    holdout "seeded" (the study's protocol): the test part is drawn with the run's seed.
    holdout "fixed" (shipped models): a photo is test when the hash of its key (`photo_key`) falls
    below test_frac, whatever the seed, the breeds trained on or the other photos present, so
    every shipped model, pair or multi-breed, is scored on the same unseen photos.
    per_class caps the training pool of each class (the small-data setting; the test part is
    unchanged). Validation is val_frac of the pool, or with folds=K the fold-th of K folds
    (k-fold cross-validation over the pool, the test part held out throughout).
    """
    if holdout not in HOLDOUTS:
        raise EdgehoundError(f"holdout must be one of {', '.join(HOLDOUTS)}, got {holdout!r}")
    if holdout == "fixed" and (keys is None or len(keys) != len(labels)):
        raise EdgehoundError("a fixed holdout needs one key per photo")
    rng = np.random.default_rng(seed)
    train, val, test = [], [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        if holdout == "fixed":
            is_test = np.array([_unit_hash(keys[i]) < test_frac for i in idx], bool)
            test.append(np.sort(idx[is_test]))
            rest = idx[~is_test]
        else:
            n_test = int(round(len(idx) * test_frac))
            test.append(idx[:n_test])
            rest = idx[n_test:]
        pool = rest[:per_class] if per_class else rest
        if folds:
            if not 0 <= fold < folds:
                raise EdgehoundError(f"fold must be in 0..{folds - 1}, got {fold}")
            parts = np.array_split(pool, folds)
            val.append(parts[fold])
            train.append(np.concatenate([p for i, p in enumerate(parts) if i != fold]))
        else:
            n_val = int(round(len(pool) * val_frac))
            val.append(pool[:n_val])
            train.append(pool[n_val:])
    return Split(*(np.sort(np.concatenate(parts)) for parts in (train, val, test)))


# The fields of a recorded split (checkpoint meta "split", manifest model.split): types, and their name in errors.
SPLIT_FIELDS = {"data": ((str,), "a path"), "exclude": ((list,), "a list"), "seed": ((int,), "an integer"),
                "test_frac": ((int, float), "a number"), "val_frac": ((int, float), "a number"),
                "per_class": ((int,), "an integer"), "folds": ((int, type(None)), "an integer or null"),
                "fold": ((int,), "an integer")}


def check_split(split, where: str) -> dict:
    """A recorded split from a file (checkpoint or manifest), once its fields have the types a split has."""
    if not isinstance(split, dict):
        raise EdgehoundError(f"{where}: the split record is not an object")
    for key, (kinds, name) in SPLIT_FIELDS.items():
        value = split.get(key)
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise EdgehoundError(f"{where}: split record field {key!r} is missing or not {name}")
    wnids = split.get("wnids", [])
    if not isinstance(wnids, list) or not all(isinstance(w, str) for w in wnids):
        raise EdgehoundError(f"{where}: split record field 'wnids' is not a list of breed ids")
    return split


def split_parts(ds: Dataset, split: dict) -> Split:
    """A recorded split (checkpoint meta "split") of ds, as indices into ds.samples.

    A split drawn over more breeds than ds holds (split["wnids"]: a model narrowed from a multi-breed
    one, or a run initialised from one) is drawn over all of those first, from the same folder, and
    then kept to ds's photos: a seeded split draws breed by breed, so the same settings over fewer
    breeds are another split.
    """
    wide = split.get("wnids")
    source = read_dataset(ds.root, wide, split["exclude"]) if wide and set(wide) != {b.wnid for b in ds.classes} else ds
    parts = split_indices(source.labels(), split["seed"], split["test_frac"], split["val_frac"],
                          split["per_class"] or None, split["folds"], split["fold"],
                          split.get("holdout", "seeded"), [photo_key(s) for s in source.samples])
    if source is ds:
        return parts
    index = {s.path: i for i, s in enumerate(ds.samples)}
    return Split(*(np.array(sorted(index[source.samples[j].path] for j in getattr(parts, part)
                                   if source.samples[j].path in index), np.int64)
                   for part in ("train", "val", "test")))


def seen_photos(split: dict, wnids: list[str], data: str | Path) -> set[str]:
    """The photo keys a run trained on or chose its epochs by (its train and val parts). They are drawn over
    the folder it trained on where that is here: drawn over `data`, a sample of that folder, the same
    settings would give another split. Elsewhere, over `data`. Photos of breeds the run never had are unseen."""
    wnids = [w for w in wnids if w in split.get("wnids", wnids)]
    if not wnids:
        return set()
    ds = read_dataset(split["data"] if Path(split["data"]).is_dir() else data, wnids, split["exclude"])
    parts = split_parts(ds, split)
    return {photo_key(ds.samples[i]) for i in (*parts.train, *parts.val)}


def trained_photos(split: dict | None, wnids: list[str], where: str) -> set[str] | None:
    """The photo keys a run trained on (its train part, of the breeds `wnids`), drawn over the folder it
    trained on. None where that cannot be known here: it records no split, or its folder is not here.
    where: the file the split record came from, named if the record is malformed."""
    if split is None:
        return None
    check_split(split, where)
    if not Path(split["data"]).is_dir():
        return None
    return {photo_key(s) for s in split_samples(split, wnids, "train")}


def split_samples(split: dict, wnids: list[str], part: str = "test", data: str | Path | None = None) -> list[Sample]:
    """The photos of one part ("train", "val", "test") of a training run's recorded split, of the breeds
    `wnids`. split: the run's split settings (checkpoint meta "split"); data: the same dataset elsewhere."""
    ds = read_dataset(data or split["data"], wnids, split["exclude"])
    return [ds.samples[i] for i in getattr(split_parts(ds, split), part)]
