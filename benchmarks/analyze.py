"""The commands that look inside a model: `explain`, `robustness`, `card` and `data composite`.

Each command's arguments sit beside the code that runs it; cli.py only registers them.
"""

from __future__ import annotations

from pathlib import Path

from edgehound.runtime.errors import EdgehoundError
from edgehound.util import at_least, folder


def held_out(classes: list[dict], data: str, split: dict | None, use_split: bool, limit: int | None = None):
    """The photos to measure on: the test part of the model's own split of `data` (photos it never
    trained on or chose epochs by), or all photos of its breeds; at most `limit`, classes in turn."""
    import numpy as np

    from edgehound.benchmarks.robustness import balanced_subset
    from edgehound.runtime.evaluation import select_samples

    if use_split and split is None:
        raise EdgehoundError("the checkpoint has no record of its training split; pass a folder of held-out photos "
                             "without --split")
    samples = select_samples(classes, data, None, split if use_split else None)
    index = {c["wnid"]: i for i, c in enumerate(classes)}
    picked = balanced_subset(np.array([index[s.wnid] for s in samples]), limit)
    return [samples[i] for i in picked]


def checkpoint_of(model: str | Path) -> Path:
    """MODEL itself (.pt), or the checkpoint of an export folder: its best.pt, else the one its manifest
    names, if that file is still the one exported (same sha256)."""
    import hashlib

    from edgehound.runtime.manifest import read_manifest

    path = Path(model)
    if path.suffix == ".pt":
        return path
    manifest, folder = read_manifest(path)
    if (folder / "best.pt").is_file():
        return folder / "best.pt"
    named = Path(str(manifest.get("model", {}).get("checkpoint") or ""))
    if named.name and named.is_file() and \
            hashlib.sha256(named.read_bytes()).hexdigest() == manifest["model"].get("checkpoint_sha256"):
        return named
    raise EdgehoundError(f"{folder}: no best.pt beside the manifest, and the checkpoint it names ({named or 'none'}) is "
                         "missing or changed since the export; copy the exported checkpoint to best.pt there")


def checkpoint_meta(model: str | Path) -> dict:
    from edgehound.train.checkpoint import load_model

    return load_model(checkpoint_of(model))[1]


def cmd_explain(args) -> int:
    from edgehound.benchmarks.saliency import Explainer, explain_samples
    from edgehound.runtime.datasets import Sample

    if args.wrong_in and (args.photos or args.split or not args.data):
        raise EdgehoundError("--wrong-in takes its photos from the report: give --data, the folder it scored, "
                             "and no PHOTO or --split")
    explainer = Explainer(args.model, args.artifact, args.method)
    if args.wrong_in:
        samples = wrong_answers(args.wrong_in, args.data, [c["name"] for c in explainer.classes])[:args.limit]
        if not samples:
            print(f"{args.wrong_in}: every photo answered right; nothing to explain")
            return 0
    elif args.data:  # the photos of the model's breeds (a composite folder holds only those, with their boxes)
        split = checkpoint_meta(args.model).get("split") if args.split else None
        samples = held_out(explainer.classes, args.data, split, bool(args.split), args.limit)
    else:
        samples = [Sample(Path(p), "") for p in args.photos]
    if not samples:
        raise EdgehoundError("no photos to explain: give PHOTO files or --data")
    report = explain_samples(explainer, samples, Path(args.out), args.pngs, not args.no_progress)
    for row in report["photos"]:
        share = f"  {row['box_share'] * 100:5.1f}% in the box ({row['box_area'] * 100:.0f}% of the picture)" \
            if "box_share" in row else ""
        print(f"{row['photo']}: {row['predicted']} {row['confidence'] * 100:.1f}%{share}")
    for err in report["skipped"]:
        print(f"skipped: {err}")
    if report["n_boxed"]:
        print(f"{explainer.name} ({explainer.method}): {report['mean_box_share'] * 100:.1f}% of the map inside the "
              f"dog's box on average, which covers {report['mean_box_area'] * 100:.1f}% of the picture "
              f"({report['n_boxed']} photos)")
    if report["accuracy"] is not None:
        print(f"accuracy on these photos: {report['accuracy'] * 100:.1f}%")
    print(f"maps: {Path(args.out)}/ (saliency.json)")
    return 0


def wrong_answers(report_path: str, data: str, names: list[str]):
    """The photos of `data` that a saved report (evaluate --json, cv.json) answered wrongly, the surest mistakes
    first: where a model looks when it errs. The report comes from outside: its photo names are looked up among
    the folder's photos, never opened as paths."""
    from edgehound.runtime.datasets import photo_key, read_dataset
    from edgehound.runtime.evaluation import read_report

    report = read_report(report_path)
    if not set(report["classes"]) <= set(names):
        raise EdgehoundError(f"{report_path}: answers among {', '.join(report['classes'])}; the model to explain "
                             f"knows {', '.join(names)}")
    wrong = [p for p in report["photos"] if p["pred"] != p["true"]]
    wrong.sort(key=lambda p: -(p.get("p") or {}).get(p["pred"], 0))  # stable: without probabilities, report order
    samples = {photo_key(s): s for s in read_dataset(data).samples}
    missing = [p["photo"] for p in wrong if p["photo"] not in samples]
    if missing:
        raise EdgehoundError(f"{report_path}: {len(missing)} of its {len(wrong)} wrong answers name photos that are "
                             f"not in {data} (first: {missing[0]}); give --data the folder the report scored")
    return [samples[p["photo"]] for p in wrong]


def cmd_robustness(args) -> int:
    from edgehound.benchmarks.robustness import measure

    meta = checkpoint_meta(args.model)
    samples = held_out(meta["classes"], args.data, meta.get("split"), args.split == "test")
    result = measure(args.model, samples, Path(args.out), args.artifacts, args.limit, args.pgd_steps,
                     args.black_box, args.black_box_limit, args.queries, args.seed, not args.no_progress)
    print(robustness_text(result))
    print(f"results: {Path(args.out) / 'robustness.json'} and its plots")
    return 0


def robustness_text(r: dict) -> str:
    """The three tables of a robustness run as plain text (the model card has them in markdown)."""
    from edgehound.benchmarks.card import robustness_tables

    return "\n\n".join(robustness_tables(r))


def cmd_card(args) -> int:
    from edgehound.benchmarks.card import regenerate

    path = regenerate(Path(args.model), args.data, args.boxes, args.bench, args.refresh, args.limit,
                      progress=not args.no_progress)
    print(f"model card: {path}")
    return 0


def cmd_data_composite(args) -> int:
    from edgehound.benchmarks.saliency import composite_dataset
    from edgehound.runtime.datasets import read_dataset

    meta = checkpoint_meta(args.model)
    dogs = held_out(meta["classes"], args.data, meta.get("split"), True, args.n)
    wnids = {c["wnid"] for c in meta["classes"]}
    ds = read_dataset(args.data)
    backgrounds = [s for s in ds.samples if s.wnid not in wnids]
    if not backgrounds:
        raise EdgehoundError(f"{args.data}: no photos of other breeds to make backgrounds from")
    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise EdgehoundError(f"{out}: not empty; give a new folder")
    n = composite_dataset(dogs, backgrounds[::max(1, len(backgrounds) // (4 * len(dogs)))],
                          [c for c in ds.classes if c.wnid in wnids], out, seed=args.seed)
    print(f"{out}: {n} composites with boxes (Stanford layout: Images/, Annotation/)")
    return 0


def add_commands(sub) -> None:
    """Register explain, robustness and card on the CLI's subcommands."""
    ex = sub.add_parser("explain", help="saliency maps: where the model looks, and how much of it is on the dog",
                        description="A saliency map per photo, overlaid as a PNG with the answer: Grad-CAM for a "
                        "checkpoint (.pt), occlusion through the runtime for any artifact (so fp32 and int8 maps of one "
                        "photo compare). Photos with a box (Stanford layout) get the share of the map inside it.")
    ex.add_argument("model", help="checkpoint (.pt), export folder, manifest.json or artifact file")
    ex.add_argument("photos", nargs="*", metavar="PHOTO", help="photos to explain (or --data)")
    ex.add_argument("--data", help="a dataset folder instead of PHOTOs: its photos of the model's breeds (boxes read "
                    "where it has them)")
    ex.add_argument("--split", choices=["test"], help="only the test part of the model's own split of --data")
    ex.add_argument("--wrong-in", metavar="REPORT", help="the photos of --data that a saved report (evaluate --json, "
                    "a cv.json) answered wrongly, the surest mistakes first")
    ex.add_argument("--limit", type=at_least(1), help="at most N photos of --data (breeds in turn; with --wrong-in, "
                    "the N surest mistakes)")
    ex.add_argument("--artifact", help="which artifact of an export folder (default: its pick)")
    ex.add_argument("--method", default="auto", choices=["auto", "gradcam", "occlusion"],
                    help="auto: Grad-CAM for a checkpoint, occlusion for an artifact")
    ex.add_argument("--pngs", type=at_least(0), help="write PNGs for the first N photos only (the JSON has all)")
    ex.add_argument("--out", type=folder, required=True, help="folder for the PNGs and saliency.json")
    ex.add_argument("--no-progress", action="store_true")
    ex.set_defaults(func=cmd_explain)

    ro = sub.add_parser("robustness", help="adversarial photos, camera conditions and calibration of every artifact",
                        description="White-box FGSM/PGD on the export folder's checkpoint (eps 1, 2, 4, 8 /255), the "
                        "adversarial photos sent through every artifact, a score-based black-box attack on the int8 "
                        "artifact, accuracy under blur, noise, light, JPEG and tilt at 5 severities, and calibration. "
                        "Writes robustness.json and PNG plots.")
    ro.add_argument("model", help="export folder (with its best.pt)")
    ro.add_argument("--data", required=True, help="dataset folder")
    ro.add_argument("--split", choices=["test", "all"], default="test",
                    help="test (default): the test part of the model's own split; all: every photo of --data")
    ro.add_argument("--artifacts", nargs="+", help="artifacts to measure (default: every one this Python can run)")
    ro.add_argument("--limit", type=at_least(2), default=200, help="photos for the attacks and conditions (default 200)")
    ro.add_argument("--pgd-steps", type=at_least(1), default=10)
    ro.add_argument("--black-box", metavar="ARTIFACT", help="artifact for the black-box attack (default: tflite-int8)")
    ro.add_argument("--black-box-limit", type=at_least(1), default=50, help="photos for the black-box attack (default 50)")
    ro.add_argument("--queries", type=at_least(1), default=200, help="black-box iterations per photo (default 200)")
    ro.add_argument("--seed", type=int, default=0)
    ro.add_argument("--out", type=folder, required=True)
    ro.add_argument("--no-progress", action="store_true")
    ro.set_defaults(func=cmd_robustness)

    ca = sub.add_parser("card", help="write CARD.md for an export folder (a model card)",
                        description="Write <folder>/CARD.md from the manifest, a robustness run, saliency examples, "
                        "the box-share study and a bench run. Measurements missing from <folder>/card/, or made on a file "
                        "a later export replaced (card/measured.json keeps each file's sha256), are made first "
                        "(--refresh: all of them again); the same inputs give the same CARD.md.")
    ca.add_argument("model", help="export folder")
    ca.add_argument("--data", help="dataset folder the model was trained from (needed to measure)")
    ca.add_argument("--boxes", help="composite folder with boxes (`edgehound data composite`) for the box share")
    ca.add_argument("--bench", help="a bench results.json (or its folder) with this model's rows")
    ca.add_argument("--limit", type=at_least(2), default=200, help="photos for attacks and conditions (default 200)")
    ca.add_argument("--refresh", action="store_true", help="measure again even where results exist")
    ca.add_argument("--no-progress", action="store_true")
    ca.set_defaults(func=cmd_card)


def add_data_composite(dsub) -> None:
    co = dsub.add_parser("composite", help="photos with known boxes: held-out dogs pasted on blurred backgrounds",
                         description="Make a Stanford-layout folder (Images/ + Annotation/ boxes) by pasting the "
                         "model's held-out photos at random places on backgrounds blurred from other breeds' photos.")
    co.add_argument("--model", required=True, help="checkpoint or export folder (its test part gives the dogs)")
    co.add_argument("--data", required=True, help="dataset folder (the model's breeds and at least one other)")
    co.add_argument("--n", type=at_least(1), default=40, help="number of composites (breeds in turn)")
    co.add_argument("--seed", type=int, default=0)
    co.add_argument("--out", type=folder, required=True, help="a new folder")
    co.set_defaults(func=cmd_data_composite)
