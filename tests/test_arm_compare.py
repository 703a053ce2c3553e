"""tests/arm/compare.py: the emulated Pi's labels must equal this host's, except int8 flips on the boundary."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "arm"))
from compare import compare_one  # noqa: E402


def write_side(folder: Path, logits: dict, confusion, classify_label=None):
    """One CPU's outputs: evaluate answers every photo (its probabilities are the softmax of `logits`),
    classify the first photo only, with evaluate's label unless `classify_label` says otherwise."""
    folder.mkdir(parents=True)
    label = {p: ["a", "b"][int(np.argmax(v))] for p, v in logits.items()}
    first = next(iter(logits))
    line = {"path": f"/x/{first}", "label": classify_label or label[first], "logits": logits[first]}
    (folder / "classify-m.jsonl").write_text(json.dumps(line) + "\n")
    np.save(folder / "logits-m.npy", np.zeros((2, 2), np.float32))
    np.save(folder / "inputs.npy", np.zeros((2, 4, 4, 3), np.uint8))
    photos = [{"photo": f"n0/{p}", "pred": label[p], "p": dict(zip("ab", (np.exp(v) / np.exp(v).sum()).round(6).tolist()))}
              for p, v in logits.items()]
    (folder / "evaluate-m.json").write_text(json.dumps({"accuracy": 0.5, "confusion": confusion, "photos": photos}))
    (folder / "camera-m.jsonl").write_text(json.dumps({"frame": 0, "label": "a"}) + "\n")


def case(tmp_path, arm_logits, int8):
    x86 = {"p1.jpg": [0.30, 0.28], "p2.jpg": [2.0, -1.0]}
    arm = {**x86, "p1.jpg": arm_logits}
    flipped = np.argmax(arm_logits) != 0
    write_side(tmp_path / "x86", x86, [[2, 0], [0, 0]])
    write_side(tmp_path / "arm", arm, [[1, 1], [0, 0]] if flipped else [[2, 0], [0, 0]])
    return compare_one(tmp_path, "m", tolerance=0.05, int8=int8)


def test_an_int8_flip_on_the_boundary_passes_and_any_other_fails(tmp_path):
    on_boundary = case(tmp_path / "a", [0.27, 0.29], int8=True)  # x86 margin 0.02 <= 2 x 0.05
    assert on_boundary["labels_differ"] == ["p1.jpg"] and on_boundary["ok"]
    fp32 = case(tmp_path / "b", [0.27, 0.29], int8=False)  # fp32 labels are gated exactly
    assert not fp32["ok"] and fp32["labels_differ_off_the_boundary"] == ["p1.jpg"]
    assert fp32["failed"] == ["labels differ off the boundary"]
    same = case(tmp_path / "c", [0.30, 0.28], int8=True)
    assert same["ok"] and same["confusion_identical"]


def test_an_int8_flip_far_from_the_boundary_fails(tmp_path):
    x86 = {"p1.jpg": [1.0, 0.2], "p2.jpg": [2.0, -1.0]}  # margin 0.8: no rounding flips that
    write_side(tmp_path / "x86", x86, [[2, 0], [0, 0]])
    write_side(tmp_path / "arm", {**x86, "p1.jpg": [0.1, 0.9]}, [[1, 1], [0, 0]])
    row = compare_one(tmp_path, "m", tolerance=0.05, int8=True)
    assert not row["ok"] and row["labels_differ_off_the_boundary"] == ["p1.jpg"]


def test_int8_drift_between_cpus_is_judged_by_each_side_against_the_float_model(tmp_path):
    """Integer kernels round differently on each CPU: the Pi's int8 logits may drift from this host's by
    more than the artifact's export error and still be the same model, as near the float model as this
    host's int8. A Pi whose int8 strays from the float model well past this host's own error fails."""
    fp32 = np.array([[0.9, -0.4], [-1.2, 1.1]], np.float32)
    host_int8 = fp32 + [[0.20, 0.0], [0.0, -0.10]]  # this host's int8 error: 0.20

    def row(folder, pi_int8):
        x86 = {"p1.jpg": [1.0, 0.2], "p2.jpg": [2.0, -1.0]}
        write_side(folder / "x86", x86, [[2, 0], [0, 0]])
        write_side(folder / "arm", x86, [[2, 0], [0, 0]])
        np.save(folder / "x86" / "logits-m.npy", host_int8)
        np.save(folder / "x86" / "logits-onnx.npy", fp32)
        np.save(folder / "arm" / "logits-m.npy", np.asarray(pi_int8, np.float32))
        return compare_one(folder, "m", tolerance=0.15, int8=True, reference="onnx")

    drifted = row(tmp_path / "a", fp32 + [[0.0, 0.0], [-0.25, 0.0]])  # 0.25 from this host's int8, 0.25 from fp32
    assert drifted["model_max_abs_logit_diff"] > drifted["tolerance"] and drifted["ok"]
    assert drifted["int8_error_vs_fp32"] == pytest.approx({"reference": "onnx", "host": 0.20, "pi": 0.25, "allowed": 0.30})
    strayed = row(tmp_path / "b", fp32 + [[0.0, 0.0], [0.0, 0.45]])  # 0.45 from fp32: past 1.5 x 0.20
    assert strayed["failed"] == ["model off tolerance"] and strayed["int8_error_vs_fp32"]["pi"] == pytest.approx(0.45)
    fp32_row = compare_one(tmp_path / "a", "m", tolerance=0.15, int8=False)  # fp32 rows keep the direct tolerance
    assert not fp32_row["ok"] and fp32_row["int8_error_vs_fp32"] is None


def test_classify_must_answer_as_evaluate_does_on_the_same_cpu(tmp_path):
    """classify runs on a few photos only (evaluate answers them all): on either CPU its label must be
    evaluate's for the same photo, or the row fails even when the two CPUs' evaluate answers agree."""
    x86 = {"p1.jpg": [1.0, 0.2], "p2.jpg": [2.0, -1.0]}
    write_side(tmp_path / "x86", x86, [[2, 0], [0, 0]])
    write_side(tmp_path / "arm", x86, [[2, 0], [0, 0]], classify_label="b")
    row = compare_one(tmp_path, "m", tolerance=0.05)
    assert row["labels_differ"] == [] and row["classify_photos"] == 1
    assert not row["classify_agrees_with_evaluate"] and row["failed"] == ["classify disagrees with evaluate"]
    assert not row["ok"]
    (tmp_path / "arm" / "classify-m.jsonl").write_text(json.dumps({"path": "/x/p1.jpg", "label": "a", "logits": [1, 0]}) + "\n")
    assert compare_one(tmp_path, "m", tolerance=0.05)["ok"]
