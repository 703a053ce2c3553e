"""`edgehound export`: checkpoint -> every deployable artifact, each checked, evaluated and in the manifest.

For each target (and the formats it is built from): build into a temp file and rename it into
place (a failed target leaves nothing half-written and the others still run), check parity of
its logits against PyTorch on real held-out photos, score it on held-out photos through the
runtime (the very code a device runs), and record it in manifest.json, rewritten atomically after
every target so an interrupted export keeps what it finished.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shutil
import sys
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgehound.export.formats import CALIBRATED_FORMATS, Format, expand_targets
from edgehound.export.tvm_env import tvm_python
from edgehound.runtime.classifier import Classifier, in_batches
from edgehound.runtime.errors import EdgehoundError, ImageError, ToolMissing
from edgehound.runtime.evaluation import evaluate_samples
from edgehound.runtime.jobs import run_job
from edgehound.runtime.manifest import MANIFEST, SCHEMA_VERSION
from edgehound.runtime.preprocess import PreprocessSpec, load_image, normalize, prepare
from edgehound.runtime.datasets import read_dataset, split_samples
from edgehound.util import atomic_write_json, remove_leftovers, sha256_file

ONNX_PARITY_TOLERANCE = 1e-4  # max |logit difference| for ONNX fp32 vs PyTorch
FP32_PARITY_TOLERANCE = 1e-3  # other fp32 backends (different kernels, different summation order)
REPO = Path(__file__).resolve().parents[1]


@dataclass
class ExportOptions:
    targets: list[str]
    out: Path
    eval_data: Path | None = None  # default: the checkpoint's own test split (its validation part with seal_test)
    calib_data: Path | None = None  # default: the checkpoint's own training split
    calib_photos: int = 300
    calib_photos_for: dict[str, int] = field(default_factory=dict)  # per int8 target where it differs from calib_photos
    calibration: str = "percentile"  # onnx-int8: percentile | minmax | entropy
    onnx_int8_in_float: tuple[str, ...] = ("first", "last")  # onnx-int8's layers kept in float: first conv, classifier
    max_drop: float | None = None  # percentage points; worse int8 artifacts are marked rejected
    eval_limit: int | None = None  # score at most N photos per artifact (stratified); None: all
    tune_trials: int = 0
    parity_photos: int = 16
    fidelity_photos: int = 500  # at most this many validation photos for each artifact's fidelity to PyTorch
    opset: int = 18
    progress: bool = True
    device: dict | None = None  # the device profile of export --device: its TVM target, compiler and tuning database
    tuning_dir: Path | None = None  # root of the per-device tuning databases (default: devices/tuning)
    skip_missing_tools: bool = False  # the default target list: skip (and list) targets this host cannot build
    update: bool = False  # rebuild `targets` in an existing export of the same checkpoint, keep its other artifacts
    seal_test: bool = False  # score on the checkpoint's validation part: a candidate's export reads no test figure
    input_size: int | None = None  # build the artifacts for photos of this size, not the size the model trained at

    @property
    def eval_part(self) -> str:
        """The part of the checkpoint's own split that the artifacts are scored on (and parity is checked on)."""
        return "val" if self.seal_test else "test"

ARTIFACT_STEM = "model"  # each target's file is model<suffix>: model.onnx, model.int8.tflite, ...


@dataclass
class ExportContext:
    """What build functions need: the model, photos for parity and calibration, where files go."""
    model: object
    spec: PreprocessSpec
    parity_batch: np.ndarray  # float32 NCHW, real held-out photos
    calib_images: dict[str, np.ndarray]  # per int8 target: uint8 NHWC, prepared training photos
    calibration: str
    onnx_int8_in_float: tuple[str, ...]
    tune_trials: int
    opset: int
    progress: bool = True
    device: dict | None = None
    tuning_dir: Path | None = None
    repo: Path = REPO
    current: str = ""
    built: dict = field(default_factory=dict)

    @property
    def size(self) -> int:
        return self.spec.size

    @property
    def calibration_images(self) -> np.ndarray:
        return self.calib_images[self.current]  # the photos of the target being built

    @property
    def calibration_count(self) -> int:
        return len(self.calibration_images)

    def artifact_path(self, name: str) -> Path:
        if name not in self.built:
            raise EdgehoundError(f"{self.current} needs the {name} artifact, which was not built")
        return self.built[name]

    def calibration_batches(self, layout: str, batch: int = 8):
        spec = replace(self.spec, layout=layout)
        images = self.calibration_images
        return [normalize(images[i:i + batch], spec) for i in range(0, len(images), batch)]

    def input_desc(self, shape, layout, dtype="float32", quantization=None) -> dict:
        q = None
        if quantization is not None:
            q = {"scale": float(quantization[0]), "zero_point": int(quantization[1])}
        return {"name": "input", "shape": shape, "layout": layout, "dtype": dtype, "quantization": q}


def _photos(data: Path, meta: dict, part: str, limit: int | None, seed: int = 0) -> list:
    """Samples of the model's breeds: the training run's `part` of its own data, or all of `data`."""
    wnids = [c["wnid"] for c in meta["classes"]]
    if data is None:
        if meta.get("split") is None:
            raise EdgehoundError("the checkpoint records no training split: pass --eval-data / --calib-data")
        samples = split_samples(meta["split"], wnids, part)
    else:
        ds = read_dataset(data)
        samples = [s for s in ds.samples if s.wnid in wnids]
    if limit and len(samples) > limit:
        pick = np.random.default_rng(seed).choice(len(samples), limit, replace=False)
        samples = [samples[i] for i in sorted(pick)]
    return samples


def _calibration_counts(formats, opts: ExportOptions) -> dict[str, int]:
    """How many calibration photos each quantizing target of this export gets: opts.calib_photos, or the
    count opts.calib_photos_for names for it (chosen per target on validation)."""
    quantizing = [f.name for f in formats if f.name in CALIBRATED_FORMATS]
    stray = sorted(set(opts.calib_photos_for) - set(quantizing))
    if stray:
        raise EdgehoundError(f"--calib-photos: {', '.join(stray)} is not a target of this export that calibrates "
                             f"(those are: {', '.join(quantizing) or 'none'})")
    return {name: opts.calib_photos_for.get(name, opts.calib_photos) for name in quantizing}


def _calibration_sets(counts: dict[str, int], opts: ExportOptions, meta: dict, spec: PreprocessSpec) -> dict:
    """{target: its calibration photos (uint8 NHWC)} of the training part; each count's photos drawn once."""
    drawn = {n: _prepared(_photos(opts.calib_data, meta, "train", n), spec) for n in sorted(set(counts.values()))}
    for n, images in drawn.items():
        if len(images) < n:
            print(f"note: calibrating on {len(images)} photos (fewer than the {n} asked for)")
    return {name: drawn[n] for name, n in counts.items()}


def _fidelity_photos(meta: dict, limit: int) -> tuple[list, dict]:
    """The photos each artifact's answers are compared with PyTorch's on, and what the manifest says of them.

    They are the validation part of the checkpoint's own split: photos that chose its epochs, never its
    test part, so an int8 setting (calibration count, method) can be chosen by fidelity without reading
    a test figure; and not its training part, which calibration draws from."""
    if not limit:
        return [], {"photos": 0, "reason": "not measured (fidelity_photos 0)"}
    if meta.get("split") is None:
        return [], {"photos": 0, "reason": "the checkpoint records no training split, so no validation part"}
    try:
        samples = _photos(None, meta, "val", limit, seed=2)
    except EdgehoundError as e:  # the split's folder is not on this machine: the export goes on without it
        return [], {"photos": 0, "reason": f"its validation part could not be read ({e})"}
    return samples, {"part": "val", "photos": len(samples), "data": meta["split"]["data"]}


def fidelity(logits: np.ndarray, reference: np.ndarray) -> dict:
    """How far an artifact's logits are from the reference's on the same photos: answers changed, and the
    mean absolute change of the reference's margin (its top logit minus its runner-up, the same two classes
    in both), which sees the int8 error that does not yet flip an answer."""
    top2 = np.argsort(-reference, axis=1)[:, :2]
    rows = np.arange(len(reference))

    def margin(z):
        return z[rows, top2[:, 0]] - z[rows, top2[:, 1]]

    return {"photos": len(reference), "answers_changed": int((logits.argmax(1) != reference.argmax(1)).sum()),
            "mean_abs_margin_error": round(float(np.abs(margin(logits) - margin(reference)).mean()), 6),
            "max_abs_logit_diff": float(np.abs(logits - reference).max())}


def _prepared(samples, spec: PreprocessSpec) -> np.ndarray:
    images = []
    for s in samples:
        try:
            images.append(prepare(load_image(s.path), spec, s.box))
        except ImageError:
            continue
    return np.stack(images)


def _tool_versions() -> dict:
    from edgehound.runtime.host import package_versions

    return {"python": platform.python_version(), "edgehound": __import__("edgehound").__version__,
            **package_versions(("torch", "onnx", "onnxruntime", "litert-torch", "ai-edge-litert", "ethos-u-vela",
                                "numpy", "opencv-python-headless"))}


def export(checkpoint_path: str | Path, opts: ExportOptions) -> dict:
    os.environ.setdefault("LITERT_TORCH_SHOW_PROGRESS", "n" if not opts.progress else "y")
    os.environ.setdefault("LITERT_TORCH_SILENCE_TORCH_LOGS", "y")

    from edgehound.train.checkpoint import load_hashed, load_model, predictor

    if opts.seal_test and opts.eval_data:
        raise EdgehoundError("export --seal-test scores the checkpoint's own validation part: give it or --eval-data, "
                             "not both")
    ckpt, checkpoint_sha256 = load_hashed(checkpoint_path)  # the digest of the bytes loaded, read once
    model, meta = load_model(checkpoint_path, ckpt)
    spec = _input_spec(checkpoint_path, meta, opts.input_size)
    formats = expand_targets(opts.targets)
    final = Path(opts.out)
    previous = _existing_export(final)  # a foreign or broken manifest.json is refused before any work
    kept = {}  # --update: the previous export's entries that this one does not rebuild
    if opts.update:
        _same_checkpoint(final, previous, checkpoint_sha256)
        old = {e["name"]: e for e in previous["artifacts"]}
        formats = [f for f in formats if f.name in opts.targets or old.get(f.name, {}).get("status") != "ok"]
        kept = {n: e for n, e in old.items() if n != "pytorch" and n not in {f.name for f in formats}}
        _kept_files_unchanged(final, kept)
        _kept_take_the_same_size(final, kept, spec.size)
    _refuse_to_overwrite_foreign_files(final, previous, formats, checkpoint_path)
    calib_counts = _calibration_counts(formats, opts)  # a bad --calib-photos fails before the folder is touched
    out = _build_folder(final, replacing=previous is not None)

    parity_samples = _photos(opts.eval_data, meta, opts.eval_part, opts.parity_photos, seed=1)
    parity_batch = normalize(_prepared(parity_samples, spec), spec)
    fidelity_samples, fidelity_note = _fidelity_photos(meta, opts.fidelity_photos)
    # parity and fidelity photos go through each artifact as one batch: one run, also in TVM's environment
    probe_batch = parity_batch
    if fidelity_samples:
        probe_batch = np.concatenate([parity_batch, normalize(_prepared(fidelity_samples, spec), spec)])
        fidelity_note["photos"] = len(probe_batch) - len(parity_batch)  # less any photo that would not decode
    calib = _calibration_sets(calib_counts, opts, meta, spec)
    torch_predict = predictor(model)
    reference_logits = in_batches(torch_predict, probe_batch)

    ctx = ExportContext(model, spec, parity_batch, calib, opts.calibration, opts.onnx_int8_in_float, opts.tune_trials,
                        opts.opset, opts.progress, device=opts.device, tuning_dir=opts.tuning_dir)
    ctx.built.update({name: final / e["file"] for name, e in kept.items() if e.get("status") == "ok"})  # inputs kept
    cfg = meta["config"]
    from edgehound.train.model import count_macs

    macs, params = count_macs(model, spec.size)
    manifest = {
        "schema": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {"config": cfg["name"], "classes": meta["classes"], "macs": macs, "params": params,
                  "trained_input_size": meta["preprocess"]["size"],  # the artifacts' own size is in their input
                  "checkpoint": str(checkpoint_path),
                  "checkpoint_sha256": checkpoint_sha256, "val_acc": meta.get("val_acc"),
                  "epoch": meta.get("epoch"), "keep": cfg.get("train", {}).get("keep", "best"),
                  # a model narrowed from a multi-breed one (`edgehound narrow`): the breeds it trained on
                  "trained_on": [c["name"] for c in meta["narrowed_from"]["classes"]] if meta.get("narrowed_from") else None,
                  # which photos it trained on and which it is scored on (holdout "fixed": the shipping split)
                  "split": {k: v for k, v in (meta.get("split") or {}).items() if k != "photos_digest"} or None,
                  "teacher": meta.get("teacher"),
                  # a model fine-tuned from another (`train --init`): that file and the breeds it trained on
                  "init": {"file": Path(meta["init"]["path"]).name, "sha256": meta["init"]["sha256"],
                           "trained_on": meta["init"]["trained_on"]} if meta.get("init") else None,
                  # an ensemble (`edgehound ensemble`): each member's file, sha256, epoch, teacher and init
                  "ensemble": meta.get("ensemble")},
        "host": {"machine": platform.machine(), "system": platform.system(), "python": platform.python_version()},
        "tools": _tool_versions(),
        "default": None,
        "artifacts": [],
    }
    manifest_path = out / MANIFEST

    # The reference: PyTorch's own accuracy on the same held-out photos every artifact is scored on.
    eval_samples = _photos(opts.eval_data, meta, opts.eval_part, opts.eval_limit)
    reference = evaluate_samples(torch_predict, meta["classes"], spec, eval_samples, progress=opts.progress)
    manifest["reference"] = {"backend": "pytorch", "accuracy": reference["accuracy"], "n": reference["n"],
                             "data": _data_label(opts, meta),
                             **({"sealed_test": True} if opts.seal_test else {})}  # its photos chose the epochs
    manifest["fidelity"] = fidelity_note
    print(f"pytorch reference: {reference['accuracy'] * 100:.2f}% on {reference['n']} photos ({manifest['reference']['data']})")
    if opts.update and previous.get("reference") != manifest["reference"]:
        shutil.rmtree(out)  # the staging folder: nothing of the export in `final` was touched
        raise EdgehoundError(f"{final}: its artifacts were scored against another reference ({previous.get('reference')}; "
                             f"now {manifest['reference']}); --update keeps only figures measured against the same one")
    manifest["artifacts"].append(_pytorch_entry(checkpoint_path, checkpoint_sha256, out, reference, manifest, spec.size))
    atomic_write_json(manifest_path, manifest)

    failures = []
    for fmt in formats:
        ctx.current = fmt.name
        entry = _build_one(fmt, ctx, out, meta, spec, checkpoint_path, checkpoint_sha256)
        if entry.pop("tool_missing", False) and opts.skip_missing_tools:
            manifest.setdefault("skipped", []).append({"name": fmt.name, "reason": entry["reason"]})
            print(f"  {fmt.name}: skipped: {entry['reason']}")
            continue
        manifest["artifacts"].append(entry)
        atomic_write_json(manifest_path, manifest)  # the runtime loads the artifact through the manifest
        if entry["status"] != "failed":
            ctx.built[fmt.name] = out / entry["file"]
            _check(entry, fmt, out, reference_logits, probe_batch, len(parity_batch), eval_samples, reference, opts,
                   manifest)
        if entry["status"] == "failed":
            failures.append(entry)
        atomic_write_json(manifest_path, manifest)
        _print_entry(entry)

    if kept:
        _kept_fidelity(kept, final, out, reference_logits, probe_batch, len(parity_batch))
        rebuilt = {e["name"]: e for e in manifest["artifacts"]}
        manifest["artifacts"] = [rebuilt.pop(e["name"], e) for e in previous["artifacts"]] + list(rebuilt.values())
        manifest["kept"] = {"from": previous.get("created"), "artifacts": list(kept), "built": _built_when(previous, kept)}
    usable = [e for e in manifest["artifacts"] if e["status"] == "ok" and e.get("runs_here") and e["backend"] != "pytorch"]
    manifest["default"] = next((e["name"] for e in usable if e["format"] == "onnx"), usable[0]["name"] if usable else None)
    atomic_write_json(manifest_path, manifest)
    if out != final:
        _swap_in(out, final, manifest, previous, kept_files={e.get("file") for e in kept.values()})
    manifest["failures"] = failures
    return manifest


def _built_when(previous: dict, kept: dict) -> dict:
    """{kept artifact: when the export that built it ran}: the previous export's time, or for a file that one
    kept in turn, the time it recorded (an update of an update keeps the first build's time)."""
    before = previous.get("kept") or {}
    built = before.get("built") if isinstance(before.get("built"), dict) else {}
    was_kept = before.get("artifacts") if isinstance(before.get("artifacts"), list) else []
    return {name: built.get(name) or (before.get("from") if name in was_kept else None) or previous.get("created")
            for name in kept}


def _build_folder(final: Path, replacing: bool) -> Path:
    """Where this export writes. A new folder: in place, the manifest growing target by target. A folder
    that already holds an export: a staging folder inside it, swapped in at the end (_swap_in), so a
    killed re-export leaves the old manifest and its artifacts whole. Leftovers of killed exports
    (staging folders, temp files of processes that are gone) are removed first."""
    try:
        final.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file on the way, no permission
        raise EdgehoundError(f"{final}: cannot make the export folder ({e.strerror or e})") from None
    remove_leftovers(final, ".*.tmp*")
    if not replacing:
        return final
    staging = final / f".staging.tmp{os.getpid()}"
    staging.mkdir()
    return staging


def _existing_export(final: Path) -> dict | None:
    """The export already in `final` (a re-export replaces it at the end), or None. A manifest.json there
    that is not an export's is refused: the export would overwrite it, and which files it lists is unknown."""
    path = final / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        manifest["model"]["checkpoint_sha256"]
        for e in manifest["artifacts"]:
            if not all(isinstance(e[k], str) for k in ("name", "status", "file")):
                raise TypeError("an artifact's name, status or file is not text")
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as e:
        raise EdgehoundError(f"{path}: not an export manifest ({type(e).__name__}: {e}); an export into {final} would "
                             "replace it: move it away, or choose another --out") from None
    return manifest


def _same_checkpoint(final: Path, previous: dict | None, checkpoint_sha256: str) -> None:
    """--update keeps artifacts only of the same checkpoint's export."""
    if previous is None:
        raise EdgehoundError(f"{final}: --update rebuilds targets of an existing export, and there is none ({MANIFEST} missing)")
    sha = previous["model"]["checkpoint_sha256"]
    if sha != checkpoint_sha256:
        raise EdgehoundError(f"{final}: exported from another checkpoint (sha256 {str(sha)[:12]}, this one "
                             f"{checkpoint_sha256[:12]}); --update keeps only the same checkpoint's artifacts")


def _input_spec(checkpoint_path, meta: dict, input_size: int | None) -> PreprocessSpec:
    """How the artifacts prepare photos: as the model trained, or at `input_size` (test-time resolution), which
    a model without a global pool cannot take."""
    from edgehound.train.checkpoint import check_input_size

    spec = PreprocessSpec.from_dict(meta["preprocess"])
    return replace(spec, size=check_input_size(checkpoint_path, meta, input_size))


def _kept_take_the_same_size(final: Path, kept: dict, size: int) -> None:
    """--update: the artifacts kept must take photos of the size the rebuilt ones are built for."""
    for name, entry in kept.items():
        preprocess = entry.get("preprocess")
        theirs = preprocess.get("size") if isinstance(preprocess, dict) else None
        if entry["status"] == "ok" and theirs != size:
            raise EdgehoundError(f"{final / MANIFEST}: {name} takes {theirs} px photos and this export builds for "
                                 f"{size} px; --update keeps only artifacts of one input size: export without --update")


def _kept_files_unchanged(final: Path, kept: dict) -> None:
    """--update: each artifact kept must still be the file its entry records (the folder may have been
    edited since). Only the kept ones are read: the rebuilt ones are replaced whatever they hold."""
    for name, entry in kept.items():
        if entry["status"] != "ok":
            continue
        file = entry["file"]
        if Path(file).name != file or not (final / file).is_file():  # a str: _existing_export checked
            raise EdgehoundError(f"{final / MANIFEST}: {name}'s file {file!r} is not a file in {final}; export without --update")
        if sha256_file(final / file) != entry.get("sha256"):
            raise EdgehoundError(f"{final / file}: changed since it was exported (sha256 differs from the manifest's); "
                                 "export without --update")


def _refuse_to_overwrite_foreign_files(final: Path, previous: dict | None, formats, checkpoint_path) -> None:
    """An export writes best.pt, manifest.json and one model.* file per target into `final`. A file of those
    names that no export there listed is someone else's: refused, not replaced. best.pt is allowed when it
    is the checkpoint itself (exporting into the run folder)."""
    listed = {MANIFEST} | ({e["file"] for e in previous["artifacts"]} if previous else set())
    for name in sorted({"best.pt"} | {f"{ARTIFACT_STEM}{f.suffix}" for f in formats}):
        path = final / name
        if name in listed or not (path.exists() or path.is_symlink()):
            continue
        if name == "best.pt" and path.is_file() and path.samefile(checkpoint_path):
            continue
        raise EdgehoundError(f"{path}: already there and not an artifact of an export in {final}; the export would "
                             "replace it: move it away, or choose another --out")


def _swap_in(staging: Path, final: Path, manifest: dict, previous: dict, kept_files: set = frozenset()) -> None:
    """Move a finished re-export into place: artifacts first, the manifest last (the runtime reads
    nothing but what the manifest lists), then drop the old export's files the new one does not have.
    previous: the old export's manifest; kept_files: its files that the new one lists as they are (--update)."""
    old_files = {e["file"] for e in previous["artifacts"]}
    new_files = {e["file"] for e in manifest["artifacts"] if e.get("status") != "failed"}
    for name in sorted(new_files - kept_files):
        os.replace(staging / name, final / name)
    os.replace(staging / MANIFEST, final / MANIFEST)
    shutil.rmtree(staging)
    for name in sorted(f for f in old_files - new_files if isinstance(f, str)):
        path = final / name
        if path.parent == final and path.is_file():  # only plain files of the old export, in this folder
            path.unlink()


def _pytorch_entry(checkpoint_path: Path, checkpoint_sha256: str, out: Path, reference: dict, manifest: dict,
                   input_size: int) -> dict:
    """The first row: the checkpoint itself, copied into the folder as best.pt (the export is self-contained),
    run eagerly by the "pytorch" backend; bench and evaluate measure it like any artifact."""
    from edgehound.train.checkpoint import checkpoint_entry

    dest = out / "best.pt"
    tmp = out / f".best.pt.tmp{os.getpid()}"
    shutil.copyfile(checkpoint_path, tmp)  # always copied: the file is then hashed once, on load, not twice
    os.replace(tmp, dest)
    entry = checkpoint_entry(dest, input_size)  # hashes what it loads: the one read that counts
    if entry["sha256"] != checkpoint_sha256:  # replaced while this export ran: the artifacts are of the old one
        raise EdgehoundError(f"{checkpoint_path}: the file changed while it was exported; export it again")
    entry.pop("split")  # the manifest's model section holds it
    entry["accuracy"] = {"accuracy": reference["accuracy"], "n": reference["n"], "skipped": reference["skipped"],
                         "drop_pp": 0.0, "per_class": reference["per_class"], "data": manifest["reference"]["data"]}
    return entry


def _data_label(opts: ExportOptions, meta: dict) -> str:
    if opts.eval_data:
        return str(opts.eval_data)
    return f"{opts.eval_part} split of {meta['split']['data']}"


def _build_one(fmt: Format, ctx: ExportContext, out: Path, meta: dict, spec: PreprocessSpec, checkpoint_path,
               checkpoint_sha256: str) -> dict:
    file = f"{ARTIFACT_STEM}{fmt.suffix}"
    dest, tmp = out / file, out / f".{file}.tmp{os.getpid()}"
    entry = {"name": fmt.name, "format": fmt.name, "file": file, "backend": fmt.backend, "precision": fmt.precision,
             "target": fmt.target, "devices": list(fmt.devices), "runs_here": fmt.runs_here}
    print(f"building {fmt.name} ...", flush=True)
    try:
        info = fmt.build(ctx, tmp)
        os.replace(tmp, dest)
    except Exception as e:  # any tool's failure becomes this target's failure, the others go on
        tmp.unlink(missing_ok=True)
        reason = str(e) if isinstance(e, EdgehoundError) else f"{type(e).__name__}: {e}"
        entry.update(status="failed", reason=reason.strip()[:2000], tool_missing=isinstance(e, ToolMissing))
        if os.environ.get("EDGEHOUND_DEBUG"):
            traceback.print_exc()
        return entry
    layout = info["input"]["layout"]
    entry.update(
        status="ok", size_bytes=dest.stat().st_size, sha256=sha256_file(dest),
        input=info.pop("input"), output={"name": "logits", "shape": ["N", len(meta["classes"])]},
        preprocess={**spec.to_dict(), "layout": layout}, classes=meta["classes"],
        source={"checkpoint": Path(checkpoint_path).name, "sha256": checkpoint_sha256}, **info)
    return entry


def _check(entry, fmt, out, reference_logits, probe_batch, parity_photos, eval_samples, reference, opts, manifest):
    """Parity against PyTorch (the first `parity_photos` of probe_batch, test photos), fidelity (the rest,
    validation photos) and accuracy on held-out photos, through the runtime."""
    if not fmt.runs_here:
        entry["accuracy"] = {"accuracy": None, "reason": f"not run here: built for {fmt.target}"}
        return
    try:
        logits, report = _run_artifact(entry, out / MANIFEST, out, probe_batch, eval_samples, opts.progress)
    except Exception as e:  # a backend's own error: this artifact fails, the export goes on
        entry.update(status="failed", reason=f"built, but does not run: {e if isinstance(e, EdgehoundError) else repr(e)}")
        return
    parity, reference_parity = logits[:parity_photos], reference_logits[:parity_photos]
    diff = float(np.abs(parity - reference_parity).max())
    agree = float((parity.argmax(1) == reference_parity.argmax(1)).mean())
    tolerance = None
    if fmt.precision == "fp32":
        tolerance = ONNX_PARITY_TOLERANCE if fmt.name == "onnx" else FP32_PARITY_TOLERANCE
    entry["parity"] = {"max_abs_logit_diff": diff, "top1_agreement": agree, "photos": parity_photos,
                       "tolerance": tolerance, "passed": tolerance is None or diff <= tolerance}
    if len(logits) > parity_photos:
        entry["fidelity"] = fidelity(logits[parity_photos:], reference_logits[parity_photos:])
    drop = (reference["accuracy"] - report["accuracy"]) * 100
    entry["accuracy"] = {"accuracy": report["accuracy"], "n": report["n"], "skipped": report["skipped"],
                         "drop_pp": round(drop, 3), "per_class": report["per_class"], "data": manifest["reference"]["data"]}
    if tolerance is not None and diff > tolerance:
        entry.update(status="failed", reason=f"parity: max |logit diff| {diff:.2e} > {tolerance:.0e} vs PyTorch")
    elif opts.max_drop is not None and drop > opts.max_drop:
        entry.update(status="rejected", reason=f"accuracy drop {drop:.2f} pp > --max-drop {opts.max_drop} pp")


def _run_artifact(entry: dict, manifest_path: Path, scratch: Path, probe_batch: np.ndarray,
                  eval_samples: list | None, progress: bool) -> tuple[np.ndarray, dict | None]:
    """An artifact's logits on probe_batch and its evaluation on eval_samples (None: no evaluation), through
    the runtime; a TVM artifact in TVM's environment, as a job (runtime/jobs.py), its batch saved in `scratch`."""
    if entry["backend"] == "tvm" and tvm_python() != sys.executable:
        batch_path = scratch / ".parity.npy"
        np.save(batch_path, probe_batch)
        try:
            args = {"manifest": str(manifest_path), "name": entry["name"], "parity_path": str(batch_path),
                    "samples": None if eval_samples is None else [s.to_dict() for s in eval_samples]}
            payload = run_job(tvm_python(), "edgehound.export.check_artifact:check", args, cwd=REPO,
                              what=f"checking {entry['name']}")
            return np.array(payload["parity"], np.float32), payload["report"]
        finally:
            batch_path.unlink(missing_ok=True)
    clf = Classifier.load(manifest_path, artifact=entry["name"])
    batch = probe_batch if entry["input"]["layout"] == "NCHW" else probe_batch.transpose(0, 2, 3, 1)
    logits = in_batches(clf.predict, np.ascontiguousarray(batch))
    if eval_samples is None:
        return logits, None
    return logits, evaluate_samples(clf.predict, entry["classes"], clf.spec, eval_samples, progress=progress)


def _kept_fidelity(kept: dict, final: Path, scratch: Path, reference_logits: np.ndarray, probe_batch: np.ndarray,
                   parity_photos: int) -> None:
    """--update: the kept artifacts that run here get their fidelity measured on this export's validation
    photos too, so that every runnable entry of the manifest has one, measured on the same photos (an
    earlier export may predate it, or have drawn other photos). Their other figures stay as measured."""
    if len(probe_batch) == parity_photos:
        return  # no validation photos this time
    for entry in kept.values():
        if entry.get("status") != "ok" or not entry.get("runs_here"):
            continue
        try:
            logits, _ = _run_artifact(entry, final / MANIFEST, scratch, probe_batch, None, progress=False)
        except Exception as e:  # a kept file that no longer runs here keeps its entry as it was
            print(f"  {entry['name']} (kept): fidelity not measured: {e if isinstance(e, EdgehoundError) else repr(e)}")
            continue
        entry["fidelity"] = fidelity(logits[parity_photos:], reference_logits[parity_photos:])
        print(f"  {entry['name']} (kept): {_fidelity_text(entry['fidelity'])}")


def _fidelity_text(f: dict) -> str:
    return f"val: {f['answers_changed']} of {f['photos']} answers changed, margin error {f['mean_abs_margin_error']:.3f}"


def _print_entry(entry: dict) -> None:
    if entry["status"] == "failed":
        print(f"  {entry['name']}: FAILED: {entry['reason']}")
        return
    acc = entry.get("accuracy", {})
    parts = [f"{entry['size_bytes'] / 1e6:.2f} MB"]
    if "parity" in entry:
        parts.append(f"parity {entry['parity']['max_abs_logit_diff']:.1e}")
    if "fidelity" in entry and entry.get("precision") != "fp32":  # fp32 files: parity says it
        parts.append(_fidelity_text(entry["fidelity"]))
    if acc.get("accuracy") is not None:
        parts.append(f"accuracy {acc['accuracy'] * 100:.2f}% (drop {acc['drop_pp']:+.2f} pp, n={acc['n']})")
    else:
        parts.append(acc.get("reason", ""))
    print(f"  {entry['name']}: {entry['status']}: " + ", ".join(parts))
