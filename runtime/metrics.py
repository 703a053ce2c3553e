"""Accuracy, per-class accuracy and the confusion matrix: one report format for every evaluation."""

from __future__ import annotations

import numpy as np


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, class_names: list[str]) -> dict:
    """The JSON-ready report: accuracy (0..1), balanced accuracy, n, per_class {name: {accuracy, n}},
    confusion[true][pred]."""
    k = len(class_names)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (np.asarray(y_true, int), np.asarray(y_pred, int)), 1)
    n = int(confusion.sum())
    per_class = {}
    for i, name in enumerate(class_names):
        total = int(confusion[i].sum())
        per_class[name] = {"accuracy": float(confusion[i, i] / total) if total else None, "n": total}
    recalls = [pc["accuracy"] for pc in per_class.values() if pc["accuracy"] is not None]
    return {
        "accuracy": float(np.trace(confusion) / n) if n else 0.0,
        "balanced_accuracy": float(np.mean(recalls)) if recalls else 0.0,  # the mean of the per-class accuracies
        "n": n,
        "per_class": per_class,
        "classes": list(class_names),
        "confusion": confusion.tolist(),
    }


def format_report(report: dict) -> str:
    """The report as text: accuracy, per-class lines and the confusion matrix."""
    names = report["classes"]
    lines = [f"accuracy {report['accuracy'] * 100:.2f}% on {report['n']} photos"
             + (f" ({report['skipped']} skipped)" if report.get("skipped") else "")
             + (f", balanced accuracy {report['balanced_accuracy'] * 100:.2f}%" if "balanced_accuracy" in report else "")]
    for name, pc in report["per_class"].items():
        acc = "-" if pc["accuracy"] is None else f"{pc['accuracy'] * 100:.2f}%"
        lines.append(f"  {name:<28} {acc:>8}  (n={pc['n']})")
    width = max(len(n) for n in names)
    lines.append("confusion (rows: true, columns: predicted)")
    lines.append(" " * (width + 2) + " ".join(f"{i:>6}" for i in range(len(names))))
    for i, (name, row) in enumerate(zip(names, report["confusion"])):
        lines.append(f"{i} {name:<{width}} " + " ".join(f"{v:>6}" for v in row))
    return "\n".join(lines)


def calibration(probs: np.ndarray, y_true: np.ndarray, bins: int = 10) -> dict:
    """Expected calibration error and the reliability bins: is a 0.9 confidence right 90% of the time?

    Photos are binned by their top probability (equal-width bins over 0..1); ECE is the photo-weighted
    mean gap between each bin's accuracy and its mean confidence."""
    confidence = probs.max(1)
    correct = probs.argmax(1) == np.asarray(y_true)
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    rows, ece = [], 0.0
    for b in range(bins):
        mask = which == b
        n = int(mask.sum())
        acc = float(correct[mask].mean()) if n else None
        conf = float(confidence[mask].mean()) if n else None
        if n:
            ece += n / len(confidence) * abs(acc - conf)
        rows.append({"low": b / bins, "high": (b + 1) / bins, "n": n, "accuracy": acc, "confidence": conf})
    return {"ece": float(ece), "bins": rows, "mean_confidence": float(confidence.mean()), "accuracy": float(correct.mean())}
