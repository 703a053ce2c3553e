"""Score any predictor on labelled photos, with the runtime's own preprocessing.

Used by `edgehound evaluate` and `edgehound export` for checkpoints and every artifact, so all
are measured the same way: photos of the breeds the model knows, decoded and preprocessed by
`runtime.preprocess`, unreadable photos skipped, counted and named.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from edgehound.runtime.breeds import resolve_breed
from edgehound.runtime.classifier import softmax
from edgehound.runtime.errors import EdgehoundError, ImageError
from edgehound.runtime.metrics import classification_report, log_loss
from edgehound.runtime.preprocess import PreprocessSpec, preprocess
from edgehound.runtime.datasets import Sample, photo_key, read_dataset, seen_photos, split_samples
from edgehound.util import read_json_object


def member_mismatch(classes: list[dict], spec: PreprocessSpec, split: dict | None, first_classes: list[dict],
                    first_spec: PreprocessSpec, first_split: dict | None, same_split: bool = True) -> str | None:
    """Why a model cannot be averaged with an ensemble's first member, or None: the logits must mean the same
    breeds in the same order, one prepared photo must suit both, and (`same_split`) the two must have left out
    the same validation and test photos."""
    if [c["wnid"] for c in classes] != [c["wnid"] for c in first_classes]:
        return (f"it answers among {', '.join(c['name'] for c in classes)}, the first member among "
                f"{', '.join(c['name'] for c in first_classes)} (in that order)")
    if spec != first_spec:
        return f"it prepares photos otherwise ({spec} against {first_spec})"
    if same_split and _drawn(split) != _drawn(first_split):
        return "it trained on another split, so its validation and test photos are others"
    return None


def _drawn(split: dict | None) -> dict | None:
    """What draws a split's parts. The photos' digest is left out: it covers the run's own breeds, so a pair head
    and the eight-breed model it was narrowed from differ in it while their parts are the same (manifests
    leave it out too)."""
    return {k: v for k, v in split.items() if k != "photos_digest"} if split else split


def evaluate_samples(
    predict: Callable[[np.ndarray], np.ndarray],
    classes: list[dict],
    spec: PreprocessSpec,
    samples: list[Sample],
    batch_size: int = 32,
    progress: bool = True,
) -> dict:
    """predict: float32 batch in the spec's layout -> scores (N x classes). classes: [{wnid, name}]."""
    index = {c["wnid"]: i for i, c in enumerate(classes)}

    def load(sample):
        try:
            return preprocess(sample.path, spec, sample.box), None
        except ImageError as e:
            return None, str(e)

    y_true, y_pred, skipped, photos, probs = [], [], [], [], []
    bar = tqdm(total=len(samples), desc="evaluating", unit="img", disable=not progress, leave=False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            loaded = list(pool.map(load, chunk))
            good = [(s, x) for s, (x, err) in zip(chunk, loaded) if x is not None]
            skipped += [err for _, err in loaded if err is not None]
            if good:
                scores = np.asarray(predict(np.stack([x for _, x in good])))
                y_pred += scores.argmax(1).tolist()
                probs += softmax(scores.astype(np.float64)).tolist()
                y_true += [index[s.wnid] for s, _ in good]
                photos += [photo_key(s) for s, _ in good]
            bar.update(len(chunk))
    bar.close()
    names = [c["name"] for c in classes]
    report = classification_report(np.array(y_true, int), np.array(y_pred, int), names)
    # Each photo's answer and probabilities, so that two models scored on the same photos can be compared photo
    # by photo, and by how sure they were (the log loss tells apart models that get the same photos right).
    report.update(skipped=len(skipped), skipped_files=skipped,
                  photos=[{"photo": key, "true": names[t], "pred": names[p],
                           "p": {name: round(q, 6) for name, q in zip(names, ps)}}
                          for key, t, p, ps in zip(photos, y_true, y_pred, probs)])
    report["log_loss"] = log_loss(report["photos"])
    return report


def keep_photos(report: dict, keys: set[str]) -> dict:
    """A report of `evaluate_samples` kept to some of its photos, every figure counted again from their answers
    (a report scored in another environment, narrowed here)."""
    return {**report, **count_photos(report["classes"], [p for p in report["photos"] if p["photo"] in keys])}


def count_photos(names: list[str], photos: list[dict]) -> dict:
    """Every figure of a report counted from its photos' answers (`photos`: {photo, true, pred[, p]} by breed name)."""
    index = {name: i for i, name in enumerate(names)}
    counted = classification_report(np.array([index[p["true"]] for p in photos], int),
                                    np.array([index[p["pred"]] for p in photos], int), names)
    return {**counted, "photos": photos, "log_loss": log_loss(photos)}


def read_report(path: str | Path) -> dict:
    """A saved report (`evaluate --json`, a cross-validation's cv.json) from outside, once its photos' answers
    are checked: each names a photo once and a true and a predicted breed among the report's classes, with
    probabilities (if any) for every class. Every figure is then counted again from those answers."""
    doc = read_json_object(path, "report of evaluate --json or of train --folds (cv.json)")
    names, photos = doc.get("classes"), doc.get("photos")
    if not (isinstance(names, list) and len(names) >= 2 and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names)):
        raise EdgehoundError(f"{path}: field 'classes' is not a list of two or more distinct breed names")
    if not isinstance(photos, list) or not photos:
        raise EdgehoundError(f"{path}: field 'photos' is not a non-empty list of answers (a report written before "
                             "evaluate kept each photo's answer cannot be compared)")
    seen = set()
    for i, q in enumerate(photos):
        problem = _answer_problem(q, names)
        if problem is None and q["photo"] in seen:
            problem = f"photo {q['photo']!r} is answered twice"
        if problem:
            raise EdgehoundError(f"{path}: photos[{i}]: {problem}")
        seen.add(q["photo"])
    return {**doc, **count_photos(names, photos)}


def _answer_problem(q, names: list[str]) -> str | None:
    if not isinstance(q, dict) or not isinstance(q.get("photo"), str):
        return "not an answer with a photo name"
    for field in ("true", "pred"):
        if q.get(field) not in names:
            return f"{field!r} is {q.get(field)!r}, not one of the report's classes ({', '.join(names)})"
    p = q.get("p")
    if p is not None and not (isinstance(p, dict) and set(p) == set(names) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in p.values())):
        return "'p' does not give each class a probability between 0 and 1"
    return None


def select_samples(classes: list[dict], data: str | Path, breeds: list[str] | None = None,
                   split: dict | None = None, unseen_by: list[dict] = (), part: str = "test") -> list[Sample]:
    """The photos of `data` to score: those of the model's breeds (or the chosen subset of them).

    split: the training run's split settings (checkpoint meta); when given, only the photos of
    that run's `part`: "test", photos the model never trained on, or "val", those that chose its epochs.
    unseen_by: other runs' split settings (with "wnids", the breeds each split was drawn over): only photos
    none of them trained on or chose epochs by, so models trained on different splits are compared fairly.
    """
    model_wnids = [c["wnid"] for c in classes]
    wanted = set(model_wnids)
    if breeds:
        chosen = [resolve_breed(b) for b in breeds]
        unknown = [b.name for b in chosen if b.wnid not in wanted]
        if unknown:
            raise EdgehoundError(f"--breeds: the model does not know {', '.join(unknown)}; it knows "
                                 f"{', '.join(c['name'] for c in classes)}")
        wanted = {b.wnid for b in chosen}
    if split is not None:
        samples = [s for s in split_samples(split, model_wnids, part, data) if s.wnid in wanted]
    else:
        samples = [s for s in read_dataset(data).samples if s.wnid in wanted]
    for other in unseen_by:
        seen = seen_photos(other, model_wnids, data)
        samples = [s for s in samples if photo_key(s) not in seen]
    if not samples:
        raise EdgehoundError(f"{data}: no photos of the model's breeds ({', '.join(c['name'] for c in classes)})"
                             + (" that no --unseen-by model trained on or chose epochs by" if unseen_by else ""))
    return samples


def evaluate_folder(predict, classes: list[dict], spec: PreprocessSpec, data: str | Path,
                    breeds: list[str] | None = None, progress: bool = True, split: dict | None = None,
                    unseen_by: list[dict] = (), part: str = "test", only: set[str] | None = None) -> dict:
    """Score the model on `data`'s photos of its breeds. With two or more of them chosen (`breeds`), the
    model answers among those alone: a multi-breed model scored on a pair uses only the pair's outputs.
    only: photo keys (`photo_key`) to keep, e.g. the photos another model was scored on."""
    samples = select_samples(classes, data, breeds, split, unseen_by, part)
    if only is not None:
        samples = [s for s in samples if photo_key(s) in only]
        if not samples:
            raise EdgehoundError(f"{data}: none of the photos to compare on are photos of this model's breeds")
    if breeds and len(breeds) >= 2 and len(breeds) < len(classes):
        columns = sorted({[c["wnid"] for c in classes].index(resolve_breed(b).wnid) for b in breeds})
        full_predict, classes = predict, [classes[i] for i in columns]
        predict = lambda batch: np.asarray(full_predict(batch))[:, columns]  # noqa: E731
    report = evaluate_samples(predict, classes, spec, samples, progress=progress)
    report["data"] = str(data)
    return report
