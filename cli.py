"""The `edgehound` command: one CLI, a subcommand per stage.

Heavy imports (torch, onnx, ...) happen inside each command, so `edgehound --help` and the
runtime commands start fast and work with only the runtime installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgehound.runtime.breeds import DEFAULT_PAIR
from edgehound.runtime.errors import EdgehoundError
from edgehound.util import at_least


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


def cmd_data_download(args) -> int:
    from edgehound.train.download import download_stanford

    bad = [item for item in args.sha256 if "=" not in item or not all(item.split("=", 1))]
    if bad:
        raise EdgehoundError(f"--sha256 {bad[0]!r}: expected NAME=HEX, e.g. images.tar=<64 hex digits>")
    checksums = dict(item.split("=", 1) for item in args.sha256)
    root = download_stanford(args.root, args.base_url, checksums, keep_archives=not args.remove_archives)
    print(f"Stanford Dogs ready in {root} (edgehound data info {root})")
    return 0


def cmd_train(args) -> int:
    from edgehound.runtime.metrics import format_report
    from edgehound.train.config import load_config
    from edgehound.train.trainer import RunOptions, train

    cfg = load_config(args.config, args.set)
    breeds = None if [b.lower() for b in args.breeds] == ["all"] else args.breeds
    opts = RunOptions(data=Path(args.data), out=Path(args.out), breeds=breeds, exclude=tuple(args.exclude),
                      resume=args.resume, save_every=args.save_every, folds=args.folds, fold=args.fold,
                      progress=not args.no_progress, threads=args.threads, device=args.device,
                      workers=args.workers, teacher=args.teacher, init=args.init)
    summary = train(cfg, opts)
    print(f"best checkpoint: {Path(args.out) / 'best.pt'} (val acc {summary['best_val_acc']:.3f})")
    print("test split: " + format_report(summary["test"]))
    print(f"test split, averaged with the mirror image: accuracy {summary['test_flip']['accuracy']:.2%}")
    print(f"{summary['seconds_per_epoch']:.1f} s/epoch, {summary['images_per_s']:.1f} img/s, "
          f"{summary['total_train_seconds'] / 60:.1f} min training")
    return 0


def cmd_models(args) -> int:
    from edgehound.train.model import model_table

    rows = model_table(args.size, args.classes)
    print(f"{'config':<16} {'family':<10} {'input':>6} {'params':>10} {'MMACs':>10}")
    for r in rows:
        print(f"{r['name']:<16} {r['family']:<10} {r['input_size']:>6} {r['params'] / 1e6:>9.2f}M {r['macs'] / 1e6:>10.1f}")
    return 0


def cmd_study(args) -> int:
    from edgehound.train.study import load_study, parse_shard, run_study, write_report

    study = load_study(args.plan)
    if args.action == "run":
        failed = run_study(study, Path(args.data), Path(args.out), tuple(args.exclude), parse_shard(args.shard),
                           args.threads, args.only)
        print(f"study: {len(failed)} failed cell(s): {', '.join(failed)}" if failed else "study: all cells of this shard done")
        return 1 if failed else 0
    rows = write_report(study, Path(args.out), Path(args.report), args.data, args.plan)
    print(f"{args.report}: {sum(r['n'] for r in rows)} of {len(study.cells())} cells")
    return 0


def cmd_evaluate(args) -> int:
    from edgehound.runtime.metrics import format_report
    from edgehound.util import atomic_write_json

    _in_tvm_env(args)
    report = _evaluate(args.model, args.data, args.breeds, args.split, not args.no_progress, args.artifact,
                       args.flip, args.unseen_by)
    print(format_report(report))
    for name in report["skipped_files"]:
        print(f"skipped: {name}")
    if args.json:
        atomic_write_json(args.json, report)
    return 0


def _evaluate(model: str, data: str, breeds, split: str | None, progress: bool, artifact: str | None = None,
              flip: bool = False, unseen_by: list[str] = ()) -> dict:
    """Score a model file or any artifact, through the runtime's Classifier, on a folder of photos."""
    from edgehound.runtime.classifier import Classifier
    from edgehound.runtime.evaluation import evaluate_folder

    if Path(model).suffix == ".pt":  # a model file: the "pytorch" backend, with its training split at hand
        from edgehound.train.checkpoint import checkpoint_artifact

        clf = Classifier(checkpoint_artifact(model), flip=flip)
    else:
        clf = Classifier.load(model, artifact, flip=flip)
    own_split = clf.artifact.entry.get("split")
    if split and not own_split:
        raise EdgehoundError(f"{model}: --split test needs a model file (.pt) that records its training split; "
                             "score a folder of held-out photos instead")
    report = evaluate_folder(clf.predict, clf.classes, clf.spec, data, breeds, progress=progress,
                             split=own_split if split else None, unseen_by=[_training_split(m) for m in unseen_by])
    report.update(model=str(model), artifact=clf.artifact.name, flip=flip)
    return report


def _training_split(model: str) -> dict:
    """The split record of a model file (--unseen-by)."""
    from edgehound.train.checkpoint import load

    meta = load(model).get("meta")
    split = json.loads(meta).get("split") if isinstance(meta, str) else None
    if not split:
        raise EdgehoundError(f"{model}: --unseen-by needs a model file (best.pt) that records its training split")
    return split


def _in_tvm_env(args) -> None:
    """TVM artifacts run in TVM's environment, as bench and export run them: when this Python lacks TVM
    (the laptop's .venv, which cannot hold it beside the export tools) and .venv-tvm or
    $EDGEHOUND_TVM_PYTHON has it, the same command re-runs there. On a device with the runtime-tvm
    extra, TVM is here and nothing happens."""
    import importlib.util
    import os

    from edgehound.runtime.manifest import select_artifact

    if Path(args.model).suffix == ".pt" or os.environ.get("EDGEHOUND_IN_TVM_ENV") \
            or select_artifact(args.model, args.artifact).backend != "tvm" or importlib.util.find_spec("tvm"):
        return
    from edgehound.export.tvm_env import tvm_python

    try:
        python = tvm_python()
    except EdgehoundError:
        return  # no TVM environment anywhere: the backend's error says how to install one
    os.environ["EDGEHOUND_IN_TVM_ENV"] = "1"  # once: never re-run again from there
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(python, [python, "-m", "edgehound.cli", *args.argv])


def cmd_export(args) -> int:
    from edgehound.export.exporter import ExportOptions, export
    from edgehound.export.formats import DEFAULT_TARGETS

    opts = ExportOptions(targets=args.targets or list(DEFAULT_TARGETS), out=Path(args.out),
                         eval_data=Path(args.eval_data) if args.eval_data else None,
                         calib_data=Path(args.calib_data) if args.calib_data else None, calib_photos=args.calib_photos,
                         calibration=args.calibration, max_drop=args.max_drop, eval_limit=args.eval_limit,
                         tune_trials=args.tune_trials, progress=not args.no_progress,
                         tuning_dir=Path(args.tuning_dir) if args.tuning_dir else None,
                         skip_missing_tools=not args.targets and not args.device)
    if args.device:
        from edgehound.devices.profiles import get_profile

        profile = opts.device = get_profile(args.device)  # its TVM target and compiler for the TVM formats it runs
        opts.targets = args.targets or list(profile["formats"])
        print(f"{args.device}: building {', '.join(opts.targets)}")
    manifest = export(args.checkpoint, opts)
    failed = manifest["failures"]
    print(f"manifest: {Path(args.out) / 'manifest.json'} ({len(manifest['artifacts']) - len(failed)} built, "
          f"{len(failed)} failed)")
    for entry in failed:
        print(f"failed: {entry['name']}: {entry['reason']}")
    for entry in manifest.get("skipped", []):
        print(f"skipped: {entry['name']}: {entry['reason']} (name it in --targets to make this an error)")
    return 1 if failed else 0


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


def cmd_bench(args) -> int:
    from edgehound.benchmarks.bench import BenchOptions, bench
    from edgehound.benchmarks.report import print_table

    opts = BenchOptions(source=Path(args.source[0]), also=[Path(a) for a in args.source[1:]], out=Path(args.out),
                        artifacts=args.artifacts,
                        data=Path(args.data) if args.data else None,
                        threads=args.threads,
                        warmup=args.warmup, runs=args.runs, duration=args.duration, profile=args.profile,
                        compare=Path(args.compare) if args.compare else None, pick=args.pick, max_drop=args.max_drop,
                        device=args.device, merge=[Path(m) for m in args.merge],
                        progress=not args.no_progress, sequential=args.sequential, rounds=args.rounds,
                        baseline=args.baseline)
    results = bench(opts)
    print_table(results)
    print(f"peak {results['peak_gflops']:.1f} GFLOP/s (numpy matmul)"
          + (f"; roofline {results['roofline_ms']:.3f} ms/image" if results.get("roofline_ms") else ""))
    for item in results.get("compare", []):
        flags = [f"{k} x{v['ratio']:.2f}" + (" (!)" if v["flag"] else "") for k, v in item.items() if isinstance(v, dict) and "ratio" in v]
        if item.get("ratio"):
            r = item["ratio"]
            flags.append(f"vs {r['to']} {r['old']:.2f}x -> {r['new']:.2f}x" + (" (!)" if r["flag"] else ""))
        print(f"compare {item['name']}: " + ", ".join(flags))
    if results.get("pick"):
        p = results["pick"]
        print(f"picked {p['artifact']} (p50 {p['p50_ms']:.2f} ms, drop {p['drop_pp']:+.2f} pp) as the manifest's default")
        if p.get("runner_up") and not p["runner_up"]["told_apart"]:
            print(f"note: {p['artifact']} and {p['runner_up']['artifact']} cannot be told apart (paired ratio "
                  f"{p['runner_up']['ratio']:.2f}, 95% interval {p['runner_up']['ci95'][0]:.2f}-"
                  f"{p['runner_up']['ci95'][1]:.2f})")
    print(f"results: {Path(args.out) / 'results.json'}, report: {Path(args.out) / 'report.html'}")
    return 0


def cmd_gate(args) -> int:
    from edgehound.benchmarks import gates

    if args.write:
        if not (args.manifest and args.data):
            raise EdgehoundError("--write needs --manifest and --data")
        doc = gates.write_baseline(Path(args.baseline), Path(args.manifest), Path(args.data), args.breeds,
                                   args.tolerance)
        for name, f in doc["artifacts"].items():
            acc = "-" if f["accuracy"] is None else f"{f['accuracy'] * 100:.2f}% (n={f['n']})"
            print(f"{name}: {f['size_bytes']} bytes, accuracy {acc}")
        print(f"baseline written: {args.baseline}")
        return 0
    failures = gates.check(Path(args.baseline), Path(args.manifest) if args.manifest else None)
    for f in failures:
        print(f"GATE FAILED: {f}")
    print("gate passed" if not failures else f"{len(failures)} gate failure(s)")
    return 1 if failures else 0


def cmd_devices(args) -> int:
    from edgehound.devices.profiles import all_profiles, detect, get_profile

    if args.devices_command == "list":
        for name, p in all_profiles().items():
            print(f"{name:<18} {p['arch']:<10} {', '.join(p['formats']):<55} {p['reach']['kind']:<6} {p['description']}")
    elif args.devices_command == "show":
        print(json.dumps(get_profile(args.name), indent=2))
    else:
        print(json.dumps(detect(), indent=2))
    return 0


def _summary_text(s: dict) -> str:
    lat = s["latency_ms"]
    return (f"{s['frames_classified']} frames classified ({s['frames_read']} read, {s['reconnects']} reconnects) in "
            f"{s['seconds']} s: {s['fps']} FPS; frame time p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms; "
            f"share: {s['share_of_frame_time']}")


SHIPPED_MODEL = Path(__file__).resolve().parent / "runtime" / "models" / "efficient"


def _add_runtime_args(p: argparse.ArgumentParser, optional_model: bool = False) -> None:
    if optional_model:
        p.add_argument("model", nargs="?", default=str(SHIPPED_MODEL),
                       help="export folder, manifest.json or artifact file (default: the shipped efficient model)")
    else:
        p.add_argument("model", help="export folder, manifest.json or artifact file")
    p.add_argument("--artifact", help="which artifact of the manifest (default: its pick)")
    p.add_argument("--threads", type=int, help="CPU threads for the backend")
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


def build_parser() -> argparse.ArgumentParser:
    from edgehound.benchmarks import analyze  # light: its commands import their libraries when run

    p = argparse.ArgumentParser(prog="edgehound", description="Train a dog-breed CNN, compile it for edge devices, "
                                "and measure every artifact.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="inspect datasets, list breeds, download Stanford Dogs",
                          description="Dataset tools. Layouts are detected: Stanford Dogs (Images/ + Annotation/), "
                          "the Kaggle csv (labels.csv + train/), or one folder per breed.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    info = dsub.add_parser("info", help="layout, breeds and photo counts of a dataset folder",
                           description="Show a dataset's layout, breeds and photo counts.")
    info.add_argument("root")
    info.add_argument("--breeds", nargs="+", help="only these breeds (WordNet id, Stanford folder or name)")
    info.add_argument("--exclude", nargs="*", default=[], help="folders whose photos to leave out")
    info.set_defaults(func=cmd_data_info)
    analyze.add_data_composite(dsub)
    breeds = dsub.add_parser("breeds", help="list the 120 Stanford Dogs breeds", description="List the 120 breeds: WordNet id, Stanford folder, name.")
    breeds.set_defaults(func=cmd_data_breeds)
    dl = dsub.add_parser("download", help="download Stanford Dogs images and boxes (resumable)",
                         description="Download and extract Stanford Dogs (images.tar, annotation.tar) into ROOT; "
                         "a partial download resumes.")
    dl.add_argument("--root", required=True, help="where to put Images/ and Annotation/")
    from edgehound.train.download import STANFORD_BASE_URL
    dl.add_argument("--base-url", default=STANFORD_BASE_URL, help="mirror to download from")
    dl.add_argument("--sha256", nargs="*", default=[], metavar="NAME=HEX", help="expected checksum of an archive")
    dl.add_argument("--remove-archives", action="store_true", help="delete the .tar files after extracting")
    dl.set_defaults(func=cmd_data_download)

    tr = sub.add_parser("train", help="train a model (seed CNN or an improved config)",
                        description="Train on a dataset folder with a seeded, stratified split (50%% train / 50%% test "
                        "by default, validation carved from train). Keeps best.pt by validation accuracy, writes "
                        "metrics.jsonl per epoch, and resumes a killed run exactly with --resume.")
    tr.add_argument("--data", required=True, help="dataset folder (any supported layout)")
    tr.add_argument("--out", required=True, help="run folder for checkpoints and metrics")
    tr.add_argument("--config", default="seed", help="config name in train/configs or a .toml path (default: seed)")
    tr.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE", help="override config values")
    tr.add_argument("--breeds", nargs="+", default=list(DEFAULT_PAIR),
                    help="breeds to tell apart, or `all` for every breed in --data (default: golden retriever vs Samoyed)")
    tr.add_argument("--exclude", nargs="*", default=[], help="folders whose photos never enter training (e.g. tests/sample)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out where it stopped")
    tr.add_argument("--save-every", type=int, default=0, help="save the training state every N steps (default: every 60 s)")
    tr.add_argument("--folds", type=int, help="k-fold cross-validation: number of folds over the training part")
    tr.add_argument("--fold", type=int, default=0, help="which fold is validation (0-based)")
    tr.add_argument("--threads", type=int, help="torch CPU threads (default: all cores)")
    tr.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"],
                    help="where to train: auto = CUDA when PyTorch sees a GPU (bf16 autocast there), else the CPU")
    tr.add_argument("--workers", type=int, help="processes that augment batches (default: 0 on the CPU, up to 8 on CUDA)")
    tr.add_argument("--teacher", type=Path, help="distil: learn from this model file's softened outputs (any size, same or more breeds)")
    tr.add_argument("--init", type=Path, help="start from this model file's weights where names and shapes match "
                    "(e.g. a multi-breed model's backbone under a new pair head)")
    tr.add_argument("--no-progress", action="store_true", help="no progress bars (epoch lines only)")
    tr.set_defaults(func=cmd_train)

    mo = sub.add_parser("models", help="the named model configs with their family, parameters and MACs",
                        description="List train/configs' model configs (`train --config NAME`): family (vgg, resnet, "
                        "mobilenet), input size, parameters and multiply-accumulates per photo.")
    mo.add_argument("--size", type=at_least(32), help="count MACs at this input size instead of each config's own")
    mo.add_argument("--classes", type=at_least(2), default=2, help="number of outputs (default: 2, a pair)")
    mo.set_defaults(func=cmd_models)

    st = sub.add_parser("study", help="the improvement study: each lever alone and together, pairs x settings x seeds",
                        description="`run` trains every cell of the study plan (resumable: finished cells are skipped, "
                        "killed ones resume); `report` writes the tables and plots into train/STUDY.md.")
    st.add_argument("action", choices=["run", "report"])
    st.add_argument("--plan", default="study", help="study plan: name in train/configs or a .toml path (default: study)")
    st.add_argument("--data", default="../shared/data/imagewoof2-320", help="dataset folder")
    st.add_argument("--out", default="runs/study", help="folder of the study's runs")
    st.add_argument("--exclude", nargs="*", default=["tests/sample"], help="folders whose photos never enter training")
    st.add_argument("--shard", default="0/1", help="I/N: run every N-th cell starting at I (parallel workers)")
    st.add_argument("--threads", type=int, help="torch CPU threads per worker (default: all cores)")
    st.add_argument("--only", help="run only cells whose key (setting/pair/lever/seedN) contains this text")
    st.add_argument("--report", default=str(Path(__file__).parent / "train" / "STUDY.md"), help="markdown file to write the results into")
    st.set_defaults(func=cmd_study)

    ev = sub.add_parser("evaluate", help="accuracy, per-class accuracy and confusion matrix of a model",
                        description="Score MODEL (a training checkpoint, or any artifact through the runtime) on a "
                        "folder of labelled photos, only on the breeds the model knows.")
    ev.add_argument("model", help="checkpoint (.pt), export folder, manifest.json or artifact file")
    ev.add_argument("--artifact", help="which artifact of the manifest (default: its pick)")
    ev.add_argument("--data", required=True, help="folder of photos (any supported layout)")
    ev.add_argument("--breeds", nargs="+", help="score only these of the model's breeds (two or more: the model "
                    "answers among them alone, e.g. a multi-breed model on a pair)")
    ev.add_argument("--flip", action="store_true", help="test-time flip: average each photo's logits with its mirror image's")
    ev.add_argument("--unseen-by", nargs="+", default=[], metavar="MODEL.pt",
                    help="only photos in these models' test parts too (compare models trained on different splits)")
    ev.add_argument("--json", help="also write the report as JSON here")
    ev.add_argument("--split", choices=["test"], help="score only the test part of the model's own training split "
                    "of --data (the photos it never trained on)")
    ev.add_argument("--no-progress", action="store_true")
    ev.set_defaults(func=cmd_evaluate)

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

    be = sub.add_parser("bench", help="latency, memory, size and accuracy of every artifact, with a report",
                        description="Benchmark every artifact of an export folder (each in a fresh process) and "
                        "PyTorch eager as the baseline: load time, first inference, latency percentiles, FPS, peak "
                        "memory, size, accuracy. Writes OUT/results.json and OUT/report.html.")
    be.add_argument("source", nargs="+", help="export folder or manifest.json; several are measured side by side "
                    "in one run, their rows named FOLDER/ARTIFACT")
    be.add_argument("--out", default="runs/bench", help="where results.json and report.html go (default runs/bench)")
    be.add_argument("--artifacts", nargs="+", metavar="NAME", help="only these artifacts")
    be.add_argument("--data", help="held-out photos to measure accuracy on (default: the export's figures)")
    be.add_argument("--threads", type=int, help="threads per backend (default: the backend's)")
    be.add_argument("--warmup", type=int, default=10)
    be.add_argument("--runs", type=int, default=100, help="timed runs per artifact (default 100)")
    be.add_argument("--duration", type=float, help="time each artifact for this many seconds instead of --runs")
    be.add_argument("--rounds", type=at_least(2), default=20, help="interleaved rounds: all models stay loaded and "
                    "each round times every one for runs/rounds runs in a random order, so ratios share the machine's "
                    "state (default 20)")
    be.add_argument("--sequential", action="store_true", help="time each artifact at once, one after the other "
                    "(the old mode: ratios then depend on when each was timed)")
    be.add_argument("--baseline", default="onnx", help="the artifact every ratio is to (default onnx)")
    be.add_argument("--profile", action="store_true", help="add the top operators by time (onnxruntime)")
    be.add_argument("--compare", metavar="OLD.json", help="ratios against an earlier results.json of this host")
    be.add_argument("--device", default="local", help="device profile to run on (rpc profiles: TVM artifacts "
                    "over TVM's RPC tracker); default: this host")
    be.add_argument("--merge", nargs="*", default=[], metavar="RESULTS.json",
                    help="earlier results (e.g. other devices) to include in this report")
    be.add_argument("--pick", action="store_true", help="write the fastest artifact within --max-drop into the "
                    "manifest (rewrites its 'default' and 'pick' in place; the manifest as it was is kept as "
                    "manifest.before-pick.json)")
    be.add_argument("--max-drop", type=float, default=1.0, help="accuracy budget for --pick, in points (default 1.0)")
    be.add_argument("--no-progress", action="store_true")
    be.set_defaults(func=cmd_bench)

    ga = sub.add_parser("gate", help="accuracy and size regression gate against a committed baseline",
                        description="Check an export folder's artifacts against a baseline (accuracy on a fixed photo "
                        "set within the tolerance, file size within +5%%), or write the baseline with --write.")
    ga.add_argument("baseline", help="benchmarks/baselines/<model>.json")
    ga.add_argument("--manifest", help="export folder to check (default: the baseline's)")
    ga.add_argument("--write", action="store_true", help="measure and write the baseline")
    ga.add_argument("--data", help="with --write: the fixed photo set")
    ga.add_argument("--breeds", nargs="+", help="with --write: only these breeds")
    ga.add_argument("--tolerance", type=float, default=2.0, help="with --write: allowed accuracy drop, points")
    ga.set_defaults(func=cmd_gate)

    dv = sub.add_parser("devices", help="device profiles: list, show, detect this host",
                        description="Device profiles (devices/profiles/*.toml): architecture, TVM target, cross "
                        "compiler, LiteRT delegate, onnxruntime providers, formats, and how to reach the device.")
    dvs = dv.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    dvs.add_parser("list", help="one line per profile").set_defaults(func=cmd_devices)
    show = dvs.add_parser("show", help="one profile in full")
    show.add_argument("name")
    show.set_defaults(func=cmd_devices)
    dvs.add_parser("detect", help="this host as a profile").set_defaults(func=cmd_devices)

    from edgehound.export.formats import DEFAULT_TARGETS, FORMATS

    analyze.add_commands(sub)

    ex = sub.add_parser("export", help="build ONNX, int8, TFLite, TVM and NPU artifacts with a manifest",
                        description="Turn a checkpoint into deployable artifacts. Each is checked against PyTorch "
                        "(logit parity on real photos), scored on held-out photos through the runtime, and recorded in "
                        "OUT/manifest.json. Targets: " + ", ".join(FORMATS) + ".")
    ex.add_argument("checkpoint", help="training checkpoint (best.pt)")
    ex.add_argument("--out", required=True, help="export folder")
    ex.add_argument("--targets", nargs="+", metavar="TARGET", help="default: " + " ".join(DEFAULT_TARGETS) +
                    " (of these, targets whose tools this host lacks, such as a cross compiler, are skipped and listed)")
    ex.add_argument("--device", help="build exactly what this device profile runs (edgehound devices list)")
    ex.add_argument("--eval-data", help="held-out photos to score every artifact on (default: the checkpoint's test split)")
    ex.add_argument("--calib-data", help="photos to calibrate int8 on (default: the checkpoint's training split)")
    ex.add_argument("--calib-photos", type=int, default=300, help="calibration photos (default 300)")
    ex.add_argument("--calibration", choices=["minmax", "entropy", "percentile"], default="minmax",
                    help="onnx-int8 calibration method")
    ex.add_argument("--max-drop", type=float, help="mark artifacts losing more accuracy (pp) than this as rejected")
    ex.add_argument("--eval-limit", type=int, help="score each artifact on at most N held-out photos")
    ex.add_argument("--tune-trials", type=int, default=0, help="MetaSchedule trials for TVM targets, measured on the "
                    "device itself for an RPC profile (0: reuse the device's tuning database when present, else untuned)")
    ex.add_argument("--tuning-dir", help="root of the per-device tuning databases, <dir>/<profile>/<format> "
                    "(default: $EDGEHOUND_TUNING_DIR or devices/tuning)")
    ex.add_argument("--no-progress", action="store_true")
    ex.set_defaults(func=cmd_export)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except EdgehoundError as e:
        print(f"edgehound: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgehound: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
