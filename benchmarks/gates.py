"""Regression gates: accuracy and size of shipped artifacts against committed baselines.

A baseline (benchmarks/baselines/<model>.json) records, for one export folder, each artifact's
accuracy on a fixed committed photo set and its file size. A gate fails when an artifact's file is
missing, when it grows by more than 5%, or when its accuracy drops: at all for fp32 (deterministic
on one host), by more than the baseline's tolerance for int8; it names the artifact and the numbers. The baseline
also records the breeds the model answers among: an export of another model fails the gate instead of being
measured against figures that are not its own. Latency is not gated: CI machines are too noisy; `edgehound bench` reports it.
"""

from __future__ import annotations

from pathlib import Path

from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.manifest import read_manifest
from edgehound.util import atomic_write_json, is_number, read_json_object

REPO = Path(__file__).resolve().parents[1]
SIZE_GROWTH = 0.05
GATED_BACKENDS = ("onnxruntime", "litert")  # runnable on any CI machine; TVM/NPU builds are size-gated only


def measure(manifest: dict, folder: Path, data: Path, breeds: list[str] | None) -> dict:
    """{artifact: {"size_bytes", "accuracy" (None when not run here), "n"}} for an export folder's read manifest."""
    from edgehound.runtime.classifier import Classifier
    from edgehound.runtime.evaluation import evaluate_folder

    out = {}
    for e in manifest["artifacts"]:
        if e.get("status") == "failed":
            continue
        path = folder / e["file"]
        figures = {"size_bytes": path.stat().st_size if path.is_file() else None, "accuracy": None, "n": None,
                   "precision": e.get("precision")}
        if e["backend"] in GATED_BACKENDS and e.get("runs_here", True):
            try:
                clf = Classifier.load(folder / "manifest.json", e["name"])
                report = evaluate_folder(clf.predict, clf.classes, clf.spec, data, breeds, progress=False)
                figures.update(accuracy=report["accuracy"], n=report["n"])
            except EdgehoundError as err:
                figures["error"] = str(err)
        out[e["name"]] = figures
    return out


def model_classes(manifest: dict) -> list[str]:
    """The WordNet ids the export's model answers among, in its output order."""
    return [c["wnid"] for c in manifest["model"]["classes"]]


def write_baseline(baseline: Path, manifest_path: Path, data: Path, breeds: list[str] | None,
                   tolerance_pp: float) -> dict:
    manifest, folder = read_manifest(manifest_path)
    doc = {"manifest": _rel(manifest_path), "data": _rel(data), "breeds": breeds, "classes": model_classes(manifest),
           "tolerance_pp": tolerance_pp, "size_growth": SIZE_GROWTH,
           "artifacts": measure(manifest, folder, data, breeds)}
    atomic_write_json(baseline, doc)
    return doc


def check(baseline: Path, manifest_path: Path | None = None, lines: list[str] | None = None) -> list[str]:
    """Failures (empty when the gate passes). manifest_path overrides the baseline's export folder. lines, when
    given, gets one line per artifact measured: its figures against the baseline's, passed or not."""
    doc = read_baseline(Path(baseline))
    manifest_path = manifest_path or REPO / doc["manifest"]
    try:
        manifest, folder = read_manifest(manifest_path)
        classes = model_classes(manifest)
        if doc.get("classes") and classes != doc["classes"]:  # e.g. --manifest naming another shipped model
            return [f"{manifest_path}: answers among {', '.join(classes)}, and {baseline} was written for a model "
                    f"answering among {', '.join(doc['classes'])}: not its baseline"]
        now = measure(manifest, folder, REPO / doc["data"], doc.get("breeds"))
    except EdgehoundError as e:
        return [f"{manifest_path}: cannot be measured: {e}"]
    failures = []
    for name, base in doc["artifacts"].items():
        cur = now.get(name)
        if cur is None:
            failures.append(f"{name}: missing from {manifest_path}")
            continue
        if cur.get("error"):
            failures.append(f"{name}: cannot be measured: {cur['error']}")
            continue
        if base["size_bytes"] and cur["size_bytes"] is None:
            failures.append(f"{name}: its file is missing from {manifest_path}")
            continue
        if base["size_bytes"] and cur["size_bytes"] > base["size_bytes"] * (1 + doc["size_growth"]):
            failures.append(f"{name}: size {cur['size_bytes']} bytes > baseline {base['size_bytes']} "
                            f"+{doc['size_growth'] * 100:.0f}%")
        line = f"{name}: {cur['size_bytes']} bytes (baseline {base['size_bytes']}, at most +{doc['size_growth'] * 100:.0f}%)"
        if base["accuracy"] is not None and cur["accuracy"] is not None:
            drop = (base["accuracy"] - cur["accuracy"]) * 100
            # fp32 is deterministic on one host: any photo that flips is a regression; int8 gets the tolerance
            tolerance = doc.get("fp32_tolerance_pp", 0.0) if cur.get("precision") == "fp32" else doc["tolerance_pp"]
            if drop > tolerance + 1e-9:
                failures.append(f"{name}: accuracy {cur['accuracy'] * 100:.2f}% vs baseline {base['accuracy'] * 100:.2f}% "
                                f"(drop {drop:.2f} pp > {tolerance} pp for {cur.get('precision')}) on {cur['n']} photos "
                                f"of {doc['data']}")
            line += (f", accuracy {cur['accuracy'] * 100:.2f}% on {cur['n']} photos (baseline "
                     f"{base['accuracy'] * 100:.2f}%, a drop of at most {tolerance:g} pp for {cur.get('precision')})")
        else:
            line += ", size only"
        if lines is not None:
            lines.append(line)
    return failures


def read_baseline(path: Path) -> dict:
    """A baseline file, checked field by field: a gate that dies in a KeyError says nothing about the model."""
    doc = read_json_object(path, "baseline")

    def number(x, low=0.0, high=float("inf")):
        return is_number(x) and low <= x <= high

    def count(x):
        return x is None or (isinstance(x, int) and not isinstance(x, bool) and x >= 0)

    fields = {"manifest": lambda v: isinstance(v, str) and v, "data": lambda v: isinstance(v, str) and v,
              "breeds": lambda v: v is None or (isinstance(v, list) and all(isinstance(b, str) for b in v)),
              "classes": lambda v: isinstance(v, list) and all(isinstance(c, str) for c in v),
              "tolerance_pp": number, "size_growth": number, "fp32_tolerance_pp": number,
              "artifacts": lambda v: isinstance(v, dict) and v}
    artifact_fields = {"size_bytes": count, "n": count, "accuracy": lambda v: v is None or number(v, 0, 1),
                       "precision": lambda v: v is None or isinstance(v, str), "error": lambda v: isinstance(v, str)}
    unknown = set(doc) - set(fields)
    missing = set(fields) - set(doc) - {"fp32_tolerance_pp", "classes"}  # optional: baselines written before them
    if unknown or missing:
        raise EdgehoundError(f"{path}: " + "; ".join(
            ([f"unknown field(s) {', '.join(sorted(unknown))}"] if unknown else [])
            + ([f"missing field(s) {', '.join(sorted(missing))}"] if missing else [])))
    bad = [k for k, ok in fields.items() if k in doc and not ok(doc[k])]
    if bad:
        raise EdgehoundError(f"{path}: field {bad[0]!r} has an unusable value {doc[bad[0]]!r}")
    for name, figures in doc["artifacts"].items():
        if not (isinstance(figures, dict) and set(figures) <= set(artifact_fields)
                and all(artifact_fields[k](v) for k, v in figures.items())):
            raise EdgehoundError(f"{path}: artifact {name!r} has unusable figures {figures!r}")
    return doc


def _rel(path: Path) -> str:
    path = Path(path).resolve()
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)
