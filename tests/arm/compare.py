"""Compare the emulated Pi's outputs with this host's: labels identical, the model within tolerance.

    python tests/arm/compare.py runs/arm runtime/models/edge

Reads OUT/arm and OUT/x86 (tests/arm/commands.sh and model_parity.py), writes OUT/summary.json and
prints one line per artifact, naming the gates it failed. Exit 1 when a label, a confusion matrix or a camera label differs, or
when the model on the same input tensors is off. An fp32 artifact is gated on its logits against
this host's, within its export parity tolerance. An int8 artifact is gated on its error against the
float model (this host's onnx logits on the same tensors): the Pi's may be at most FAITHFUL times this
host's own (or the artifact's export error, at least one output step, where that is larger). Integer
kernels are not bit-exact across CPUs (XNNPACK's NEON, AVX2 and AVX-512 paths round each layer's
requantization their own way), so the two int8 outputs drift apart by a few output steps, and by how
many depends on the host's CPU (4 steps, 0.143, on an AMD Zen 4, against an export error of 0.145);
both stay near the float model, as an int8 model should, while a wrong model or kernel is off by whole
logits. The drift is reported. Labels (evaluate's answer for every photo; classify runs on a few and
must give evaluate's label on its own CPU), confusion matrices and camera labels are gated exactly, except
that an int8 artifact's label may differ on a photo that lies on the decision boundary within that
drift: its top-two logit margin here is at most twice the tolerance, since each logit may move by the
tolerance; the confusion matrices may then differ by those photos alone. The end-to-end logit
difference and OpenCV's preprocessing difference between the two CPUs are reported, not gated.
The TVM row compares the aarch64 library there with the x86 one here (both fp32, same graph).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

INT8_TOLERANCE = 0.05  # logits, for an int8 artifact whose output scale the manifest does not give
FAITHFUL = 1.5  # the Pi's int8 error against fp32 may be half as large again as this host's
FP32_REFERENCE = "onnx"
X86_NAME = {"tvm-aarch64": "tvm-x86"}


def int8_tolerance(entry: dict) -> float:
    """An int8 artifact's own error against fp32 at export, and never less than one output step."""
    step = (entry.get("output_quantization") or {}).get("scale", INT8_TOLERANCE)
    return max(step, (entry.get("parity") or {}).get("max_abs_logit_diff") or 0.0) * 1.001


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def answers(report: dict) -> dict[str, tuple[str, float]]:
    """An evaluate report's answer per photo (named by file name): its label and its top-two logit margin,
    which is the log of the ratio of its two highest probabilities (softmax keeps logit differences)."""
    out = {}
    for r in report["photos"]:
        top = sorted(r["p"].values(), reverse=True)
        out[Path(r["photo"]).name] = (r["pred"], math.log(max(top[0], 1e-12) / max(top[1], 1e-12)))
    return out


def classify_agrees(lines: dict, evaluated: dict) -> bool:
    """classify, on the few photos it ran, gives the label that evaluate gave them on the same CPU."""
    return bool(lines) and all(p in evaluated and r["label"] == evaluated[p][0] for p, r in lines.items())


def compare_one(out: Path, name: str, tolerance: float, int8: bool = False, reference: str | None = None) -> dict:
    arm, x86 = out / "arm", out / "x86"
    x86_name = X86_NAME.get(name, name)
    arm_eval = json.loads((arm / f"evaluate-{name}.json").read_text())
    x86_eval = json.loads((x86 / f"evaluate-{x86_name}.json").read_text())
    arm_answers, x86_answers = answers(arm_eval), answers(x86_eval)
    shared = sorted(arm_answers.keys() & x86_answers.keys())
    labels_differ = [p for p in shared if arm_answers[p][0] != x86_answers[p][0]]
    # int8: a label may flip only on a photo within the kernels' drift of the boundary
    unexplained = [p for p in labels_differ if not int8 or x86_answers[p][1] > 2 * tolerance]
    arm_lines = {Path(r["path"]).name: r for r in read_jsonl(arm / f"classify-{name}.jsonl")}
    x86_lines = {Path(r["path"]).name: r for r in read_jsonl(x86 / f"classify-{x86_name}.jsonl")}
    end_to_end = max((abs(a - b) for p in arm_lines.keys() & x86_lines.keys()
                      for a, b in zip(arm_lines[p]["logits"], x86_lines[p]["logits"])), default=float("inf"))
    arm_logits, x86_logits = np.load(arm / f"logits-{name}.npy"), np.load(x86 / f"logits-{x86_name}.npy")
    model_diff = float(np.abs(arm_logits - x86_logits).max())
    model_ok, error_vs_fp32 = model_diff <= tolerance, None
    if int8 and reference:  # both CPUs' integer kernels against the float model, on the same tensors
        fp32 = np.load(x86 / f"logits-{reference}.npy")
        error_vs_fp32 = {"reference": reference, "host": float(np.abs(x86_logits - fp32).max()),
                         "pi": float(np.abs(arm_logits - fp32).max())}
        error_vs_fp32["allowed"] = FAITHFUL * max(error_vs_fp32["host"], tolerance)
        model_ok = error_vs_fp32["pi"] <= error_vs_fp32["allowed"]
    pixels = np.abs(np.load(arm / "inputs.npy").astype(int) - np.load(x86 / "inputs.npy").astype(int))
    arm_cam = [r["label"] for r in read_jsonl(arm / f"camera-{name}.jsonl") if "frame" in r]
    x86_cam = [r["label"] for r in read_jsonl(x86 / f"camera-{x86_name}.jsonl") if "frame" in r]
    row = {"artifact": name, "x86_artifact": x86_name, "photos": len(shared),
           "same_photos": arm_answers.keys() == x86_answers.keys() and arm_lines.keys() == x86_lines.keys(),
           "classify_photos": len(arm_lines), "classify_agrees_with_evaluate": classify_agrees(arm_lines, arm_answers)
           and classify_agrees(x86_lines, x86_answers), "labels_differ": labels_differ,
           "labels_differ_off_the_boundary": unexplained,
           "model_max_abs_logit_diff": model_diff, "tolerance": tolerance, "int8_error_vs_fp32": error_vs_fp32,
           "end_to_end_max_abs_logit_diff": end_to_end,
           "preprocessing": {"max_abs_pixel_diff": int(pixels.max()), "pixels_differing": float((pixels > 0).mean())},
           "accuracy_arm": arm_eval["accuracy"], "accuracy_x86": x86_eval["accuracy"],
           "confusion_identical": arm_eval["confusion"] == x86_eval["confusion"],
           "confusion_cells_moved": int(np.abs(np.array(arm_eval["confusion"]) - np.array(x86_eval["confusion"])).sum()),
           "camera_frames": len(arm_cam), "camera_labels_identical": bool(arm_cam) and arm_cam == x86_cam}
    # each gate, named as the printed line and summary.json say it when it fails
    failures = {"photos differ": not row["same_photos"],
                "classify disagrees with evaluate": not row["classify_agrees_with_evaluate"],
                "labels differ off the boundary": bool(unexplained),
                "model off tolerance": not model_ok,
                # each flipped photo moves one count from one confusion cell to another
                "confusion moved beyond the flipped photos": row["confusion_cells_moved"] > 2 * len(labels_differ),
                "camera labels differ": not row["camera_labels_identical"]}
    row["failed"] = [name for name, failed in failures.items() if failed]
    row["ok"] = not row["failed"]
    return row


def _model_note(row: dict) -> str:
    e, diff = row["int8_error_vs_fp32"], row["model_max_abs_logit_diff"]
    if not e:
        return f"max |logit diff| {diff:.2e} (tolerance {row['tolerance']:.3g})"
    return (f"max |logit diff| from {e['reference']} {e['pi']:.3g} (this host's int8: {e['host']:.3g}; allowed "
            f"{e['allowed']:.3g}), from this host's int8 {diff:.2e} (reported)")


def main(argv: list[str]) -> int:
    out, model = Path(argv[0]), Path(argv[1])
    manifest = json.loads((model / "manifest.json").read_text())
    tolerances = {e["name"]: (e.get("parity") or {}).get("tolerance") or int8_tolerance(e) for e in manifest["artifacts"]}
    int8 = {e["name"] for e in manifest["artifacts"] if e.get("precision") == "int8"}
    seconds = {}
    for where in ("arm", "x86"):
        for line in (out / where / "seconds.txt").read_text().splitlines():
            name, s = line.split()
            seconds.setdefault(where, {})[name] = int(s)
    reference = FP32_REFERENCE if (out / "x86" / f"logits-{FP32_REFERENCE}.npy").is_file() else None
    rows = []
    for name in seconds["arm"]:
        row = compare_one(out, name, tolerances[X86_NAME.get(name, name)], X86_NAME.get(name, name) in int8, reference)
        row["seconds"] = {"emulated_arm": seconds["arm"][name], "x86": seconds["x86"].get(row["x86_artifact"])}
        rows.append(row)
        print(f"{name:<12} vs x86 {row['x86_artifact']:<12} {row['photos']} photos, {len(row['labels_differ'])} labels "
              f"differ ({len(row['labels_differ_off_the_boundary'])} off the boundary); model on the same tensors: {_model_note(row)}; end to end {row['end_to_end_max_abs_logit_diff']:.2e}; accuracy "
              f"{row['accuracy_arm']:.4f} vs {row['accuracy_x86']:.4f}; camera {row['camera_frames']} frames "
              f"{'same' if row['camera_labels_identical'] else 'DIFFERENT'}; {row['seconds']['emulated_arm']} s "
              f"emulated: {'ok' if row['ok'] else 'MISMATCH (' + '; '.join(row['failed']) + ')'}")
    pre = rows[0]["preprocessing"] if rows else {}
    print(f"preprocessing (OpenCV) arm vs x86: max |pixel diff| {pre.get('max_abs_pixel_diff')}, "
          f"{pre.get('pixels_differing', 0) * 100:.2f}% of pixels differ")
    (out / "summary.json").write_text(json.dumps({"timings": "emulated (qemu-user), not device figures",
                                                  "rows": rows}, indent=2) + "\n")
    return 0 if rows and all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
