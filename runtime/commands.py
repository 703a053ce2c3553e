"""The runtime's commands: score, classify and watch with any artifact; look at a dataset folder.

They import only what the runtime installs (numpy, OpenCV, the chosen backend), so they work on a
device without torch. Each command's arguments sit beside the code that runs it; cli.py registers them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgehound.runtime.errors import EdgehoundError
from edgehound.util import at_least, output_file


def cmd_data_info(args) -> int:
    from edgehound.runtime.datasets import read_dataset

    ds = read_dataset(args.root, args.breeds, args.exclude)
    counts = ds.counts()
    boxes = sum(s.box is not None for s in ds.samples)
    print(f"{ds.root}: {ds.layout} layout, {len(ds.samples)} photos, {len(ds.classes)} breeds, {boxes} with a bounding box")
    for b in ds.classes:
        print(f"  {b.wnid}  {b.name:<30} {counts.get(b.wnid, 0):>6}")
    for note in ds.notes:
        print(f"note: {note}")
    return 0


def cmd_data_breeds(args) -> int:
    from edgehound.runtime.breeds import all_breeds

    for b in all_breeds().values():
        print(f"{b.wnid}\t{b.folder}\t{b.name}")
    return 0


def cmd_evaluate(args) -> int:
    from edgehound.runtime.metrics import format_comparison, format_report
    from edgehound.util import atomic_write_json

    if is_cross_validation(args.model):
        return _evaluate_out_of_fold(args)
    report = evaluate_model(args.model, args.data, args.breeds, args.split, not args.no_progress, args.artifact,
                            args.flip, args.unseen_by, args.ensemble, args.input_size)
    print((f"at {args.input_size} px: " if args.input_size else "")
          + (f"ensemble of {1 + len(args.ensemble)} models (their mean logits): " if args.ensemble else "")
          + (f"{args.split} part of its training split: " if args.split else "") + format_report(report))
    for name in report["skipped_files"]:
        print(f"skipped: {name}")
    if args.against:
        report["against"] = _compare(args.against, report, args.data, args.breeds, not args.no_progress, args.flip)
        names = [Path(args.model).name, Path(args.against).name]
        if names[0] == names[1]:  # two runs' best.pt: only their paths tell them apart
            names = [str(args.model), str(args.against)]
        if args.ensemble:
            names[0] = f"ensemble of {names[0]} and {len(args.ensemble)} more"
        if args.input_size:  # OTHER answers at its own size: the same file at two sizes is a fair pair
            names[0] = f"{names[0]} at {args.input_size} px"
        print(format_comparison(report["against"], f"{names[0]} ({report['artifact']})",
                                f"{names[1]} ({report['against']['artifact']})"))
    if args.json:
        atomic_write_json(args.json, report)
    return 0


def is_cross_validation(model: str | Path) -> bool:
    """A folder of fold-I/best.pt runs (`train --folds K`) rather than a model or an export."""
    return Path(model).is_dir() and (Path(model) / "fold-0" / "best.pt").is_file()


def out_of_fold(folder: str | Path, data: str, breeds: list[str] | None = None, progress: bool = True,
                folds: int | None = None, input_size: int | None = None, flip: bool = False) -> tuple[dict, list[set[str]]]:
    """A cross-validation folder's out-of-fold report: fold-I/best.pt answers its own validation fold, the photos
    it never trained on, and the folds' answers are pooled into one report (evaluate's format). With `breeds`,
    each fold model answers among those alone: a multi-breed backbone's folds scored as the narrowed recipe. With
    `flip`, each answers with the mean of its logits on the photo and on its mirror image (test-time flip).
    Also each fold's photo names (what a start or teacher model must not have trained on)."""
    from edgehound.runtime.evaluation import count_photos
    from edgehound.train import checkpoint

    folder = Path(folder)
    folds = folds or len(list(folder.glob("fold-*/best.pt")))
    photos, per_fold, keys, names = [], [], [], None
    for fold in range(folds):
        model = folder / f"fold-{fold}" / "best.pt"
        if not model.is_file():
            raise EdgehoundError(f"{folder}: a cross-validation folder holds fold-0 to fold-{folds - 1}; {model} is missing")
        checkpoint.check_fold_model(model, folds, fold)
        report = evaluate_model(str(model), data, breeds, "val", progress, flip=flip, input_size=input_size)
        if names is not None and report["classes"] != names:
            raise EdgehoundError(f"{model}: answers among {', '.join(report['classes'])}, fold 0 among "
                                 f"{', '.join(names)}; the folds of one cross-validation answer alike")
        names = report["classes"]
        photos += report["photos"]
        keys.append({p["photo"] for p in report["photos"]})
        per_fold.append({"fold": fold, "run": str(model.parent), "n": report["n"], "accuracy": report["accuracy"],
                         "log_loss": report["log_loss"], "skipped": report["skipped"]})
    # the folds sit where train --folds's cv.json keeps them, which adds how the folds were trained
    pooled = {**count_photos(names, photos), "model": str(folder), "artifact": f"out-of-fold answers of {folds} runs",
              "split": "val", "skipped": sum(f["skipped"] for f in per_fold), "input_size": report["input_size"],
              "flip": flip, "cross_validation": {"folds": folds, "per_fold": per_fold}}
    return pooled, keys


def print_out_of_fold(report: dict, input_size: int | None = None) -> None:
    """Each fold's figure, then the pooled report (evaluate FOLDER and train --folds alike); input_size: the size
    asked for, named where it overrides the models' own."""
    from edgehound.runtime.metrics import format_report

    per_fold = report["cross_validation"]["per_fold"]
    for f in per_fold:
        print(f"fold {f['fold'] + 1}: {f['accuracy']:.2%} of {f['n']} validation photos ({f['run']})")
    print(f"out of fold, {len(per_fold)} folds" + (f", at {input_size} px" if input_size else "")
          + (", with test-time flip" if report.get("flip") else "") + ": " + format_report(report))


def _evaluate_out_of_fold(args) -> int:
    from edgehound.util import atomic_write_json

    given = [flag for flag, value in (("--artifact", args.artifact), ("--unseen-by", args.unseen_by),
                                      ("--against", args.against), ("--ensemble", args.ensemble)) if value]
    if given or args.split != "val":
        raise EdgehoundError(f"{args.model}: a cross-validation folder is scored out of fold, each fold model on its "
                             f"own validation fold: give --split val"
                             + (f", without {', '.join(given)}" if given else "")
                             + " (then compare reports with edgehound compare)")
    report, _ = out_of_fold(args.model, args.data, args.breeds, not args.no_progress, input_size=args.input_size,
                            flip=args.flip)
    print_out_of_fold(report, args.input_size)
    if args.json:
        atomic_write_json(args.json, report)
    return 0


def cmd_compare(args) -> int:
    """Two saved reports compared photo by photo, without scoring anything again."""
    from edgehound.runtime.evaluation import read_report
    from edgehound.runtime.metrics import format_comparison, paired_comparison

    a, b = read_report(args.a), read_report(args.b)
    if set(a["classes"]) != set(b["classes"]):
        raise EdgehoundError(f"{args.b}: answers among {', '.join(b['classes'])}, {args.a} among "
                             f"{', '.join(a['classes'])}; compare reports of the same breeds")
    keys_a, keys_b = {p["photo"] for p in a["photos"]}, {p["photo"] for p in b["photos"]}
    if not keys_a & keys_b:
        raise EdgehoundError(f"{args.a} and {args.b}: no photo is in both reports; there is nothing to compare on")
    for path, keys, other in ((args.a, keys_a, keys_b), (args.b, keys_b, keys_a)):
        if keys - other:
            print(f"note: {len(keys - other)} of the {len(keys)} photos of {path} are not in the other report: left out")
    names = [str(Path(path).parent.name if Path(path).name == "cv.json" else path) for path in (args.a, args.b)]
    if names[0] == names[1]:
        names = [str(args.a), str(args.b)]
    print(format_comparison(paired_comparison(a, b), names[0], names[1]))
    return 0


def _load_model(model: str, artifact: str | None, flip: bool, input_size: int | None = None):
    """The Classifier of a model file or any artifact, and the training split it records (None if none).
    input_size: a model file answers at this size instead of the one it trained at."""
    from edgehound.runtime.classifier import Classifier
    from edgehound.runtime.manifest import read_manifest

    if Path(model).suffix == ".pt":  # a model file: the "pytorch" backend, with its training split at hand
        from edgehound.train.checkpoint import checkpoint_artifact

        clf = Classifier(checkpoint_artifact(model, input_size), flip=flip)
        own_split = clf.artifact.entry.get("split")
    else:  # an export: its manifest's model section keeps the checkpoint's split
        clf = Classifier.load(model, artifact, flip=flip)
        model_section = read_manifest(model)[0].get("model")
        own_split = model_section.get("split") if isinstance(model_section, dict) else None
    return clf, own_split


def evaluate_model(model: str, data: str, breeds: list[str] | None = None, split: str | None = None,
                   progress: bool = True, artifact: str | None = None, flip: bool = False,
                   unseen_by: list[str] = (), ensemble: list[str] = (), input_size: int | None = None) -> dict:
    """Score a model file or any artifact, through the runtime's Classifier, on a folder of photos. A TVM
    artifact that this Python cannot run is scored in TVM's environment (`.venv-tvm`), the rest here.
    ensemble: other models (default artifacts) whose logits are averaged with the model's.
    input_size: a model file (and its ensemble's) answers at this size instead of the one it trained at."""
    from edgehound.runtime.datasets import check_split, seen_photos
    from edgehound.runtime.evaluation import evaluate_folder, keep_photos

    for one in (model, *ensemble) if input_size else ():
        if Path(one).suffix != ".pt":
            raise EdgehoundError(f"--input-size: {one} is an export, whose files take the size they were built for; "
                                 "give its model file (.pt), or export it again with --input-size")
    elsewhere = _tvm_elsewhere(model, artifact)
    if elsewhere and ensemble:
        raise EdgehoundError(f"--ensemble: {model} runs only in TVM's environment; ensemble model files or "
                             "artifacts that this Python runs")
    if elsewhere:  # --unseen-by's model files need torch, which TVM's environment lacks: they are read here
        python, artifact = elsewhere
        report = _evaluate_in(python, model, data, artifact=artifact, breeds=breeds, split=split, flip=flip)
        if unseen_by:
            wnids = [c["wnid"] for c in _describe(model, artifact)[1]]
            seen = set().union(*(seen_photos(_training_split(m), wnids, data) for m in unseen_by))
            report = keep_photos(report, {p["photo"] for p in report["photos"]} - seen)
            if not report["n"]:
                raise EdgehoundError(f"{data}: no photos of the model's breeds that no --unseen-by model trained on "
                                     "or chose epochs by")
        return report
    clf, own_split = _load_model(model, artifact, flip, input_size)
    if split and own_split is None:
        raise EdgehoundError(f"{model}: --split {split} needs a model file (.pt) or an export whose manifest records "
                             "its training split; score a folder of held-out photos instead")
    if split:
        check_split(own_split, str(model))
    predict = _ensemble(model, clf, own_split, ensemble, flip, split, input_size) if ensemble else clf.predict
    report = evaluate_folder(predict, clf.classes, clf.spec, data, breeds, progress=progress,
                             split=own_split if split else None, unseen_by=[_training_split(m) for m in unseen_by],
                             part=split or "test")
    report.update(model=str(model), artifact=clf.artifact.name, flip=flip, split=split, ensemble=list(ensemble),
                  input_size=clf.spec.size)
    return report


def _ensemble(model: str, clf, own_split: dict | None, others: list[str], flip: bool, split: str | None,
              input_size: int | None = None):
    """The mean of the logits of `clf` and the other models: members must answer among the same breeds in the
    same order and prepare photos alike (each photo is prepared once); with --split, share the training split."""
    import numpy as np

    from edgehound.runtime.evaluation import member_mismatch

    members = [clf.predict]
    for other in others:
        member, member_split = _load_model(other, None, flip, input_size)
        problem = member_mismatch(member.classes, member.spec, member_split, clf.classes, clf.spec, own_split,
                                  same_split=bool(split))
        if problem:
            raise EdgehoundError(f"--ensemble {other}: cannot be averaged with {model}: {problem}")
        members.append(member.predict)
    return lambda batch: np.mean([predict(batch) for predict in members], axis=0)


def _compare(other: str, report: dict, data: str, breeds, progress: bool, flip: bool) -> dict:
    """Score OTHER on the photos `report` was scored on, leaving out those OTHER trained on, and compare
    the two photo by photo (--against)."""
    from edgehound.runtime.datasets import trained_photos
    from edgehound.runtime.evaluation import evaluate_folder, keep_photos
    from edgehound.runtime.metrics import paired_comparison

    other_name, other_classes, other_split = _describe(other)
    unknown = set(report["classes"]) - {c["name"] for c in other_classes}
    if unknown:
        raise EdgehoundError(f"--against {other}: it does not know {', '.join(sorted(unknown))}, which the model "
                             "was scored on; choose breeds both know with --breeds")
    keys = {p["photo"] for p in report["photos"]}
    # Its training part is drawn over the folder it trained on, not over --data (which may be a sample of it).
    other_trained = trained_photos(other_split, [c["wnid"] for c in other_classes], str(other))
    if other_trained is None:
        print(f"note: nothing here shows that {other} never trained on these photos "
              + ("(it records no training split)" if other_split is None else f"({other_split['data']} is not here)"))
    trained = keys & (other_trained or set())
    if trained:
        print(f"note: {len(trained)} of the {len(keys)} photos left out of the comparison: {other} trained on them")
    if not keys - trained:
        raise EdgehoundError(f"--against {other}: it trained on all {len(keys)} photos; there is nothing to compare on")
    elsewhere = _tvm_elsewhere(other, None)
    if elsewhere:  # scored on the whole folder there, then kept to the same photos
        python, artifact = elsewhere
        other_report = keep_photos(_evaluate_in(python, other, data, artifact=artifact, breeds=breeds, flip=flip),
                                   keys - trained)
    else:
        clf, _ = _load_model(other, None, flip)
        other_report = evaluate_folder(clf.predict, clf.classes, clf.spec, data, breeds, progress=progress,
                                       only=keys - trained)
    if set(other_report["classes"]) != set(report["classes"]):  # photos are matched by breed name, not by column
        raise EdgehoundError(f"--against {other}: it answers among {', '.join(other_report['classes'])}, the model "
                             f"among {', '.join(report['classes'])}; choose the same breeds with --breeds")
    return {"model": str(other), "artifact": other_name, "left_out": len(trained),
            **paired_comparison(report, other_report)}


def _evaluate_in(python: str, model: str, data: str, **options) -> dict:
    """`evaluate_model` run by another Python (TVM's environment), as a job (runtime/jobs.py)."""
    from edgehound.runtime.jobs import run_job

    return run_job(python, "edgehound.runtime.commands:evaluate_model",
                   {"model": str(model), "data": str(data), "progress": False, **options},
                   what=f"scoring {model} in TVM's environment")


def _describe(model: str, artifact: str | None = None) -> tuple[str, list[dict], dict | None]:
    """A model's artifact name (default: the manifest's pick), breeds and training split, read from its file
    or manifest without loading a backend (which may live in another environment)."""
    from edgehound.runtime.manifest import read_manifest, select_artifact

    if Path(model).suffix == ".pt":
        from edgehound.train.checkpoint import checkpoint_entry

        entry = checkpoint_entry(model)
        return entry["name"], entry["classes"], entry.get("split")
    entry = select_artifact(model, artifact).entry
    model_section = read_manifest(model)[0].get("model")
    return entry["name"], entry["classes"], model_section.get("split") if isinstance(model_section, dict) else None


def _training_split(model: str) -> dict:
    """The split record of a model file (--unseen-by), with the breeds it was drawn over: a seeded split
    draws breed by breed, so the same record over other breeds is another split."""
    from edgehound.train.checkpoint import load, read_meta

    meta = read_meta(model, load(model))  # its split record checked as --split's is
    if not meta.get("split"):
        raise EdgehoundError(f"{model}: --unseen-by needs a model file (best.pt) that records its training split")
    return {"wnids": [c["wnid"] for c in meta["classes"]], **meta["split"]}  # a narrowed model's own record wins


def _in_tvm_env(args) -> None:
    """TVM artifacts run in TVM's environment, as bench and export run them: when this Python lacks TVM
    (the laptop's .venv, which cannot hold it beside the export tools) and .venv-tvm or
    $EDGEHOUND_TVM_PYTHON has it, the same command re-runs there. On a device with the runtime-tvm
    extra, TVM is here and nothing happens."""
    import os

    elsewhere = _tvm_elsewhere(args.model, args.artifact)
    if not elsewhere:
        return
    python, artifact = elsewhere
    os.environ["EDGEHOUND_IN_TVM_ENV"] = "1"  # once: never re-run again from there
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, "-m", "edgehound.cli", *args.argv, *([] if args.artifact else ["--artifact", artifact])])


def _tvm_elsewhere(model: str, artifact: str | None) -> tuple[str, str] | None:
    """The Python of TVM's environment and the TVM artifact to run there, when `model`'s artifact (the one
    named, or the one chosen here) is a TVM one that this Python cannot run and another can; else None (it
    runs here, or nowhere, and then the backend's error says how to install TVM). The artifact goes there by
    name: that environment has other backends, and would choose among them otherwise."""
    import importlib.util
    import os

    from edgehound.runtime.manifest import select_artifact

    if Path(model).suffix == ".pt" or os.environ.get("EDGEHOUND_IN_TVM_ENV"):
        return None
    chosen = select_artifact(model, artifact)
    if chosen.backend != "tvm" or importlib.util.find_spec("tvm"):
        return None
    from edgehound.export.tvm_env import tvm_python

    try:
        python = tvm_python()
    except EdgehoundError:
        return None
    if chosen.note:
        print(f"note: {chosen.note}", file=sys.stderr)
    return python, chosen.name


def _backend_options(args) -> dict:
    options = {"threads": args.threads}
    if getattr(args, "delegate", None):
        options["delegate"] = args.delegate
    if getattr(args, "device", None):
        options["device"] = args.device
    return options


def cmd_classify(args) -> int:
    import time

    from edgehound.runtime.classifier import Classifier
    from edgehound.runtime.errors import ImageError
    from edgehound.runtime.preprocess import IMAGE_SUFFIXES

    _in_tvm_env(args)
    clf = Classifier.load(args.model, args.artifact, flip=args.flip, **_backend_options(args))
    paths = []
    for item in map(Path, args.paths):
        if item.is_dir():
            files = sorted(p for p in item.rglob("*") if p.is_file() and not p.name.startswith("."))
            if not files:
                print(f"{item}: no files in this folder", file=sys.stderr)
            paths += [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
            for p in files:  # said, not silently dropped: a folder of GIFs must not look like an empty one
                if p.suffix.lower() not in IMAGE_SUFFIXES:
                    print(f"{p}: skipped: not a supported image type ({', '.join(sorted(IMAGE_SUFFIXES))})",
                          file=sys.stderr)
        else:
            paths.append(item)
    classified = failed = 0
    for path in paths:
        t0 = time.perf_counter()
        try:
            prediction = clf.classify(path)
        except ImageError as e:
            failed += 1
            line = {"path": str(path), "error": str(e)}
            print(json.dumps(line) if args.json else f"{path}: unreadable: {e}", flush=True)
            continue
        ms = (time.perf_counter() - t0) * 1000
        classified += 1
        if args.json:
            print(json.dumps({"path": str(path), "label": prediction.label, "confidence": round(prediction.confidence, 4),
                              "ms": round(ms, 2),
                              "scores": dict(zip(clf.labels, (round(float(v), 4) for v in prediction.scores))),
                              "logits": [float(v) for v in prediction.logits]}), flush=True)
        else:
            print(f"{path}\t{prediction.label}\t{prediction.confidence * 100:.1f}%\t{ms:.1f} ms", flush=True)
    print(f"{classified} classified, {failed} unreadable, with {clf.artifact.name} ({clf.artifact.backend})",
          file=sys.stderr)
    return 0 if classified else 1


def cmd_camera(args) -> int:
    import signal

    from edgehound.runtime.camera import run_camera
    from edgehound.runtime.classifier import Classifier

    def stop(signum, frame):  # `systemctl stop` sends SIGTERM: end like Ctrl-C, with the summary
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)

    _in_tvm_env(args)
    clf = Classifier.load(args.model, args.artifact, flip=args.flip, **_backend_options(args))
    print(f"classifying {args.source} with {clf.artifact.name} ({clf.artifact.backend}); Ctrl-C to stop", file=sys.stderr)
    summary = run_camera(clf, args.source, headless=args.headless, record=args.record, every=args.every,
                         smooth_s=args.smooth, takeover=args.takeover, capture_size=_capture_size(args.capture_size, clf),
                         max_frames=args.max_frames, max_reconnects=args.reconnects)
    print(json.dumps({"summary": summary}) if args.headless else _summary_text(summary), flush=True)
    if summary["error"]:
        print(f"edgehound: error: {summary['error']}", file=sys.stderr)
        return 1
    return 0


def _capture_size(text: str, clf) -> tuple[int, int] | None:
    from edgehound.runtime.camera import capture_size_for

    if text == "full":
        return None
    if text == "auto":
        return capture_size_for(clf.spec.size)
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 32 and int(height) >= 32):
        raise EdgehoundError(f"--capture-size: expected WIDTHxHEIGHT (e.g. 320x240), auto or full, got {text!r}")
    return int(width), int(height)


def _summary_text(s: dict) -> str:
    lat = s["latency_ms"]
    return (f"{s['frames_classified']} frames classified ({s['frames_read']} read, {s['reconnects']} reconnects) in "
            f"{s['seconds']} s: {s['fps']} FPS; frame time p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms; "
            f"share: {s['share_of_frame_time']}")


SHIPPED_MODEL = Path(__file__).resolve().parent / "models" / "edge"  # what `camera` runs when given no model


def _add_runtime_args(p: argparse.ArgumentParser, optional_model: bool = False) -> None:
    if optional_model:
        p.add_argument("model", nargs="?", default=str(SHIPPED_MODEL),
                       help="export folder, manifest.json or artifact file (default: the shipped edge model)")
    else:
        p.add_argument("model", help="export folder, manifest.json or artifact file")
    p.add_argument("--artifact", help="which artifact of the manifest (default: its pick)")
    p.add_argument("--threads", type=at_least(1), help="CPU threads for the backend")
    p.add_argument("--delegate", help="LiteRT external delegate library (e.g. an NPU's), by path")
    p.add_argument("--device", choices=["cpu", "cuda"], help="TVM device (default cpu)")
    p.add_argument("--flip", action="store_true", help="test-time flip: average each frame's scores with its mirror "
                   "image's (twice the inference per frame; off by default)")


def _number_in(low: float, high: float, what: str):
    """argparse type: a number in [low, high]."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:  # also refuses nan
            raise argparse.ArgumentTypeError(f"{what} must be in [{low:g}, {high:g}], got {text}")
        return value

    return parse


_seconds = _number_in(0, 3600, "seconds")


_probability = _number_in(0, 1, "a probability")


def add_commands(sub, data) -> None:
    """`data info`, `data breeds`, `evaluate`, `compare`, `classify`, `camera`: what a device with only the runtime runs."""
    info = data.add_parser("info", help="layout, breeds and photo counts of a dataset folder",
                           description="Show a dataset's layout, breeds and photo counts.")
    info.add_argument("root")
    info.add_argument("--breeds", nargs="+", help="only these breeds (WordNet id, Stanford folder or name)")
    info.add_argument("--exclude", nargs="*", default=[], help="folders whose photos to leave out")
    info.set_defaults(func=cmd_data_info)
    breeds = data.add_parser("breeds", help="list the 120 Stanford Dogs breeds", description="List the 120 breeds: WordNet id, Stanford folder, name.")
    breeds.set_defaults(func=cmd_data_breeds)

    ev = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a model",
                        description="Score MODEL (a training checkpoint, or any artifact through the runtime) on a "
                        "folder of labelled photos, only on the breeds the model knows.")
    ev.add_argument("model", help="checkpoint (.pt), export folder, manifest.json or artifact file, or a "
                    "cross-validation folder (train --folds K) with --split val: its out-of-fold answers, pooled")
    ev.add_argument("--artifact", help="which artifact of the manifest (default: its pick)")
    ev.add_argument("--data", required=True, help="folder of photos (any supported layout)")
    ev.add_argument("--breeds", nargs="+", help="score only these of the model's breeds (two or more: the model "
                    "answers among them alone, e.g. a multi-breed model on a pair)")
    ev.add_argument("--flip", action="store_true", help="test-time flip: average each photo's logits with its mirror image's")
    ev.add_argument("--unseen-by", nargs="+", default=[], metavar="MODEL.pt",
                    help="only photos in these models' test parts too (compare models trained on different splits)")
    ev.add_argument("--json", type=output_file, help="also write the report as JSON here")
    ev.add_argument("--split", choices=["test", "val"], help="score only a part of the model's own training split "
                    "of --data: test, the photos it never trained on; val, those that chose its epochs (to compare "
                    "settings without touching the test part)")
    ev.add_argument("--against", metavar="OTHER", help="score OTHER (any model form, default artifact) on the same "
                    "photos too, leaving out those it trained on, and test whether the two differ (exact McNemar "
                    "test on the photos one gets right and the other wrong)")
    ev.add_argument("--ensemble", nargs="+", default=[], metavar="OTHER",
                    help="score the mean of the logits of MODEL and these (the same breeds and preprocessing; with "
                    "--split, the same training split): e.g. the teachers a student distils from")
    ev.add_argument("--input-size", type=at_least(32, 1024), metavar="PX",
                    help="a model file answers at this size instead of the one it trained at (test-time resolution; "
                    "its MACs grow with the square); an export keeps the size it was built for")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

    co = sub.add_parser("compare", help="two saved reports compared photo by photo (exact McNemar test)",
                        description="Compare two saved reports (evaluate --json, or the cv.json of train --folds: every "
                        "photo of a training pool answered by the fold model that never trained on it) on the photos "
                        "both answered, without scoring again: each one's accuracy and log loss, the photos only one "
                        "got right, and the exact McNemar test.")
    co.add_argument("a", metavar="A.json")
    co.add_argument("b", metavar="B.json")
    co.set_defaults(func=cmd_compare)

    cl = sub.add_parser("classify", help="classify image files or folders with any artifact",
                        description="Classify images with an exported artifact: one line per image (label, "
                        "confidence, time). Unreadable images are reported and skipped.")
    _add_runtime_args(cl)
    cl.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders")
    cl.add_argument("--json", action="store_true", help="one JSON object per line")
    cl.set_defaults(func=cmd_classify)

    cam = sub.add_parser("camera", help="live classifier for a webcam, video, stream, folder or picamera2",
                         description="Classify camera frames live. SRC: a webcam index (0), a video file, an rtsp:// "
                         "or http:// URL, a folder of images, or picamera2. Shows the frame with label, confidence and "
                         "FPS, or prints JSON lines with --headless. Reconnects when the source drops; Ctrl-C stops "
                         "with a summary.")
    _add_runtime_args(cam, optional_model=True)
    cam.add_argument("--source", required=True, metavar="SRC")
    cam.add_argument("--headless", action="store_true", help="no window: JSON lines on stdout")
    cam.add_argument("--record", metavar="OUT.mp4", help="save the annotated video")
    cam.add_argument("--every", type=at_least(1), default=1, metavar="N", help="classify every Nth frame")
    cam.add_argument("--smooth", type=_seconds, default=0.3, metavar="SECONDS",
                     help="average the scores over the last SECONDS of frames (a video's own frame times; a folder "
                     "is one photo per second; 0: no smoothing)")
    cam.add_argument("--takeover", type=_probability, default=0.6, metavar="P",
                     help="a frame that names another breed with a confidence above P replaces the average at once (1: never)")
    cam.add_argument("--capture-size", default="auto", metavar="WxH|auto|full",
                     help="the frame size to ask a webcam or picamera2 for (auto: the smallest 4:3 mode at least the "
                     "model's input size, e.g. 320x240 for a 160 px model; full: the camera's default)")
    cam.add_argument("--max-frames", type=at_least(1), help="stop after N classified frames")
    cam.add_argument("--reconnects", type=at_least(0), default=5, help="reconnect attempts when the source drops")
    cam.set_defaults(func=cmd_camera)
