"""K-fold cross-validation of one training recipe (`edgehound train --folds K`, no `--fold`).

A choice between recipes made on one validation part of 113 or 141 photos cannot see a difference of a
photo or two, and the model that won on those photos carries their luck. Here each of K runs validates on
one fold of the training pool and trains on the others, and every pool photo is answered once, by the fold
model that never trained on it (its out-of-fold answer). Two recipes' cv.json files compared photo by photo
(`edgehound compare`) are compared on the whole pool: K times the photos of one validation part.

OUT/fold-I/ is the I-th run (best.pt, last.pt, metrics.jsonl, summary.json, resumable as any run);
OUT/cv.json is the out-of-fold report, in evaluate's report format. The test part stays outside every fold.

A pipeline is cross-validated fold by fold: --init and --teacher may name another cross-validation's folder
(a multi-breed backbone's, `--breeds all --folds K`), and fold I then starts from and learns from that folder's
fold-I model, which never trained on fold I's photos. A pair head's answers are then out of sample although
its backbone trained on the pair's photos; the count of answered photos any start or teacher trained on
(seen_by_init, seen_by_teacher) says whether that held.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgehound.runtime.datasets import trained_photos
from edgehound.runtime.errors import EdgehoundError
from edgehound.train import checkpoint
from edgehound.train.config import Config
from edgehound.train.trainer import RunOptions, train
from edgehound.util import atomic_write_json


def cross_validate(cfg: Config, opts: RunOptions, folds: int) -> dict:
    from edgehound.runtime.commands import out_of_fold

    out = Path(opts.out)
    runs = [fold_options(opts, folds, fold) for fold in range(folds)]  # a missing fold model refused before any training
    for fold, run in enumerate(runs):
        run = replace(run, out=out / f"fold-{fold}")
        print(f"fold {fold + 1} of {folds}: {run.out}", flush=True)
        train(cfg, run)  # with --resume, a finished fold only scores its test part again (a few seconds)
    # best.pt is the epoch the config keeps; its own split's validation part is its fold
    pooled, keys = out_of_fold(out, str(opts.data), opts.breeds, opts.progress, folds)
    # each start or teacher model's training photos, drawn once (a single --init serves every fold)
    trained = {model: _trained_by(model) for run in runs for model in ([run.init] if run.init else []) + list(run.teacher)}
    seen = {}
    for what, models in (("init", lambda run: [run.init] if run.init else []), ("teacher", lambda run: run.teacher)):
        per_fold = [[trained[model] for model in models(run)] for run in runs]
        seen[what] = (None if any(None in sets for sets in per_fold)  # a start or teacher whose split is not here
                      else sum(len(fold_keys & set().union(*sets)) for fold_keys, sets in zip(keys, per_fold)))
    pooled["cross_validation"] |= {"config": cfg.to_dict(), "keep": cfg.train.keep,
                                   "init": str(opts.init) if opts.init else None,
                                   "teacher": [str(t) for t in opts.teacher],
                                   "seen_by_init": seen["init"], "seen_by_teacher": seen["teacher"]}
    atomic_write_json(out / "cv.json", pooled)
    return pooled


def fold_options(opts: RunOptions, folds: int, fold: int) -> RunOptions:
    """The options of fold I's run: a cross-validation folder given as --init or --teacher stands for its
    fold-I model, which must have been trained on the same folds with fold I left out."""
    def resolve(path: Path, what: str) -> Path:
        if not path.is_dir():
            return path
        model = path / f"fold-{fold}" / "best.pt"
        if not model.is_file():
            raise EdgehoundError(f"{what} {path}: a folder must be a cross-validation of {folds} folds "
                                 f"(`edgehound train --folds {folds}`); {model} is missing")
        checkpoint.check_fold_model(model, folds, fold)
        return model

    return replace(opts, folds=folds, fold=fold, init=resolve(Path(opts.init), "--init") if opts.init else None,
                   teacher=tuple(resolve(Path(t), "--teacher") for t in opts.teacher))


def _trained_by(model: Path) -> set[str] | None:
    """The photos `model` (a fold's start or teacher) trained on: answers of those are not out of sample (a pair
    head on a backbone that trained on the pair's pool). None: its split cannot be drawn here."""
    meta = checkpoint.read_meta(model, checkpoint.load(model))
    return trained_photos(meta.get("split"), [c["wnid"] for c in meta["classes"]], str(model))
