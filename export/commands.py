"""`edgehound export`: its arguments beside the code that runs it (cli.py registers it)."""

from __future__ import annotations

import argparse
from pathlib import Path

from edgehound.util import at_least, folder


def cmd_export(args) -> int:
    from edgehound.export.exporter import ExportOptions, export
    from edgehound.export.formats import DEFAULT_TARGETS

    # --update without --targets rebuilds nothing: it keeps every file and measures the kept ones' fidelity
    opts = ExportOptions(targets=args.targets or ([] if args.update else list(DEFAULT_TARGETS)), out=Path(args.out),
                         eval_data=Path(args.eval_data) if args.eval_data else None,
                         calib_data=Path(args.calib_data) if args.calib_data else None,
                         calib_photos=args.calib_photos[0], calib_photos_for=args.calib_photos[1],
                         calibration=args.calibration, onnx_int8_in_float=tuple(args.onnx_int8_in_float),
                         max_drop=args.max_drop, eval_limit=args.eval_limit,
                         tune_trials=args.tune_trials, progress=not args.no_progress,
                         tuning_dir=Path(args.tuning_dir) if args.tuning_dir else None,
                         skip_missing_tools=not args.targets and not args.device, update=args.update,
                         seal_test=args.seal_test, input_size=args.input_size)
    if args.device:
        from edgehound.devices.profiles import get_profile

        profile = opts.device = get_profile(args.device)  # its TVM target and compiler for the TVM formats it runs
        opts.targets = args.targets or list(profile["formats"])
        print(f"{args.device}: building {', '.join(opts.targets)}")
    manifest = export(args.checkpoint, opts)
    failed = manifest["failures"]
    kept = len(manifest.get("kept", {}).get("artifacts", []))
    built = len(manifest["artifacts"]) - 1 - len(failed) - kept  # the first row is the checkpoint itself
    print(f"manifest: {Path(args.out) / 'manifest.json'} ({built} built, "
          + (f"{kept} kept, " if kept else "") + f"{len(failed)} failed)")
    for entry in failed:
        print(f"failed: {entry['name']}: {entry['reason']}")
    for entry in manifest.get("skipped", []):
        print(f"skipped: {entry['name']}: {entry['reason']} (name it in --targets to make this an error)")
    return 1 if failed else 0


def _calib_count(text: str) -> tuple[str | None, int]:
    """argparse type of --calib-photos: N (every int8 target) or TARGET=N (one of them)."""
    target, _, count = text.rpartition("=")
    return target or None, at_least(1)(count)


class _CalibPhotos(argparse.Action):
    """--calib-photos N TARGET=N ...: (the count for every int8 target, {target: count} where it differs)."""

    def __call__(self, parser, namespace, values, option_string=None):
        counts = [n for target, n in values if target is None]
        if len(counts) > 1:
            parser.error(f"--calib-photos: one count for every target at most, got {len(counts)}")
        every = counts[0] if counts else self.default[0]
        setattr(namespace, self.dest, (every, {t: n for t, n in values if t is not None}))


def add_commands(sub) -> None:
    """`export`."""
    from edgehound.export.formats import DEFAULT_TARGETS, FORMATS

    ex = sub.add_parser("export", help="build ONNX, int8, TFLite, TVM and NPU artifacts with a manifest",
                        description="Turn a checkpoint into deployable artifacts. Each is checked against PyTorch "
                        "(logit parity on real photos), scored on held-out photos through the runtime, and recorded in "
                        "OUT/manifest.json. Targets: " + ", ".join(FORMATS) + ".")
    ex.add_argument("checkpoint", help="training checkpoint (best.pt)")
    ex.add_argument("--out", type=folder, required=True, help="export folder")
    ex.add_argument("--targets", nargs="+", metavar="TARGET", help="default: " + " ".join(DEFAULT_TARGETS) +
                    " (of these, targets whose tools this host lacks, such as a cross compiler, are skipped and listed)")
    ex.add_argument("--device", help="build exactly what this device profile runs (edgehound devices list)")
    ex.add_argument("--eval-data", help="held-out photos to score every artifact on (default: the checkpoint's test split)")
    ex.add_argument("--seal-test", action="store_true",
                    help="score every artifact on the checkpoint's validation part instead of its test part, so that "
                    "exporting a candidate (to compare int8 settings, say) reads no test figure")
    ex.add_argument("--input-size", type=at_least(32, 1024), metavar="PX",
                    help="build every artifact for photos of this size instead of the size the model trained at "
                    "(test-time resolution: MACs grow with the square; a model without a global pool refuses)")
    ex.add_argument("--calib-data", help="photos to calibrate int8 on (default: the checkpoint's training split)")
    ex.add_argument("--calib-photos", nargs="+", type=_calib_count, default=(300, {}), action=_CalibPhotos,
                    metavar="N|TARGET=N", help="calibration photos (default 300), and per int8 target where it differs, "
                    "e.g. 300 tflite-int8=100")
    ex.add_argument("--calibration", choices=["minmax", "entropy", "percentile"], default="percentile",
                    help="onnx-int8 calibration method (default percentile: the closest to fp32 of the three on the "
                    "shipped models' training photos, train/STUDY.md)")
    ex.add_argument("--onnx-int8-in-float", nargs="*", choices=["first", "last"], default=["first", "last"],
                    metavar="LAYER", help="onnx-int8's layers kept in float: first (the first convolution), last (the "
                    "classifier); default both, none with the option alone (train/STUDY.md)")
    ex.add_argument("--max-drop", type=float, help="mark artifacts losing more accuracy (pp) than this as rejected")
    ex.add_argument("--eval-limit", type=at_least(1), help="score each artifact on at most N held-out photos")
    ex.add_argument("--tune-trials", type=at_least(0), default=0, help="MetaSchedule trials for TVM targets, measured on the "
                    "device itself for an RPC profile (0: reuse the device's tuning database when present, else untuned)")
    ex.add_argument("--tuning-dir", help="root of the per-device tuning databases, <dir>/<profile>/<format> "
                    "(default: $EDGEHOUND_TUNING_DIR or devices/tuning)")
    ex.add_argument("--update", action="store_true", help="rebuild only --targets in the export already in --out (of the "
                    "same checkpoint, scored on the same photos) and keep its other artifacts' files and figures, "
                    "measuring the fidelity of those that run here; without --targets, rebuild nothing")
    ex.add_argument("--no-progress", action="store_true")
    ex.set_defaults(func=cmd_export)
