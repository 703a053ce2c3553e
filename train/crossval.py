"""K-fold cross-validation of one training recipe (`edgehound train --folds K`, no `--fold`).

A choice between recipes made on one validation part of 113 or 141 photos cannot see a difference of a
photo or two, and the model that won on those photos carries their luck. Here each of K runs validates on
one fold of the training pool and trains on the others, and every pool photo is answered once, by the fold
model that never trained on it (its out-of-fold answer). Two recipes' cv.json files compared photo by photo
(`edgehound compare`) are compared on the whole pool: K times the photos of one validation part.

OUT/fold-I/ is the I-th run (best.pt, last.pt, metrics.jsonl, summary.json, resumable as any run);
OUT/cv.json is the out-of-fold report, in evaluate's report format. The test part stays outside every fold.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgehound.runtime.datasets import trained_photos
from edgehound.runtime.evaluation import count_photos
from edgehound.train import checkpoint
from edgehound.train.config import Config
from edgehound.train.trainer import RunOptions, train
from edgehound.util import atomic_write_json


def cross_validate(cfg: Config, opts: RunOptions, folds: int) -> dict:
    from edgehound.runtime.commands import evaluate_model

    out = Path(opts.out)
    photos, per_fold, names = [], [], None
    for fold in range(folds):
        run = replace(opts, out=out / f"fold-{fold}", folds=folds, fold=fold)
        print(f"fold {fold + 1} of {folds}: {run.out}", flush=True)
        train(cfg, run)  # with --resume, a finished fold only scores its test part again (a few seconds)
        # best.pt is the epoch the config keeps; its own split's validation part is this fold
        report = evaluate_model(str(run.out / "best.pt"), str(opts.data), opts.breeds, "val", opts.progress)
        names = report["classes"]
        photos += report["photos"]
        per_fold.append({"fold": fold, "run": str(run.out), "n": report["n"], "accuracy": report["accuracy"],
                         "log_loss": report["log_loss"], "skipped": report["skipped"]})
    pooled = {**count_photos(names, photos), "model": str(out), "artifact": f"out-of-fold answers of {folds} runs",
              "split": "val", "skipped": sum(f["skipped"] for f in per_fold),
              "cross_validation": {"folds": folds, "config": cfg.to_dict(), "keep": cfg.train.keep, "per_fold": per_fold,
                                   "init": str(opts.init) if opts.init else None,
                                   "seen_by_init": _seen_by_init(opts.init, {p["photo"] for p in photos})}}
    atomic_write_json(out / "cv.json", pooled)
    return pooled


def _seen_by_init(init: Path | None, keys: set[str]) -> int | None:
    """How many of the answered photos the --init model trained on: every fold starts from its weights, so their
    answers are not out of sample (a pair head on a backbone that trained on the pair's pool). None: its split
    cannot be drawn here."""
    if init is None:
        return 0
    meta = checkpoint.read_meta(init, checkpoint.load(init))
    trained = trained_photos(meta.get("split"), [c["wnid"] for c in meta["classes"]], str(init))
    return None if trained is None else len(keys & trained)
