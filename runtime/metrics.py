"""Accuracy, per-class accuracy and the confusion matrix: one report format for every evaluation."""

from __future__ import annotations

from math import comb

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


def log_loss(photos: list[dict]) -> float | None:
    """The mean of -ln(the probability given to the true breed) over a report's photos, or None when some answer
    carries no probabilities. Lower is better; unlike accuracy it also counts how sure each answer was."""
    if not photos or any("p" not in p for p in photos):
        return None
    return float(np.mean([-np.log(max(p["p"][p["true"]], 1e-12)) for p in photos]))


def format_report(report: dict) -> str:
    """The report as text: accuracy, per-class lines and the confusion matrix."""
    names = report["classes"]
    lines = [f"accuracy {report['accuracy'] * 100:.2f}% on {report['n']} photos"
             + (f" ({report['skipped']} skipped)" if report.get("skipped") else "")
             + (f", balanced accuracy {report['balanced_accuracy'] * 100:.2f}%" if "balanced_accuracy" in report else "")
             + (f", log loss {report['log_loss']:.3f}" if report.get("log_loss") is not None else "")]
    for name, pc in report["per_class"].items():
        acc = "-" if pc["accuracy"] is None else f"{pc['accuracy'] * 100:.2f}%"
        lines.append(f"  {name:<28} {acc:>8}  (n={pc['n']})")
    width = max(len(n) for n in names)
    lines.append("confusion (rows: true, columns: predicted)")
    lines.append(" " * (width + 2) + " ".join(f"{i:>6}" for i in range(len(names))))
    for i, (name, row) in enumerate(zip(names, report["confusion"])):
        lines.append(f"{i} {name:<{width}} " + " ".join(f"{v:>6}" for v in row))
    return "\n".join(lines)


def paired_comparison(a: dict, b: dict) -> dict:
    """Two reports of `evaluate_samples` on the same photos, compared photo by photo.

    With a few hundred photos, two accuracies a few points apart can both be chance. What tells two
    models apart is the photos one gets right and the other wrong: the exact McNemar test asks
    whether that split could be a fair coin. p is two-sided (either model could have been better)."""
    right_a = {p["photo"]: p["pred"] == p["true"] for p in a["photos"]}
    right_b = {p["photo"]: p["pred"] == p["true"] for p in b["photos"]}
    shared = right_a.keys() & right_b.keys()
    only_a = sum(right_a[k] and not right_b[k] for k in shared)
    only_b = sum(right_b[k] and not right_a[k] for k in shared)
    both = sum(right_a[k] and right_b[k] for k in shared)
    n = only_a + only_b
    # Exact binomial tail (the runtime has no scipy): P(X <= min) for X ~ Bin(n, 1/2), doubled.
    p = min(1.0, 2 * sum(comb(n, i) for i in range(min(only_a, only_b) + 1)) / 2 ** n) if n else 1.0
    return {"n": len(shared), "accuracy_a": (both + only_a) / len(shared) if shared else 0.0,
            "accuracy_b": (both + only_b) / len(shared) if shared else 0.0,
            "both_right": both, "only_a_right": only_a, "only_b_right": only_b,
            "both_wrong": len(shared) - both - n, "mcnemar_p": p,
            "log_loss_a": log_loss([q for q in a["photos"] if q["photo"] in shared]),
            "log_loss_b": log_loss([q for q in b["photos"] if q["photo"] in shared])}


def format_comparison(c: dict, name_a: str, name_b: str, alpha: float = 0.05) -> str:
    """The comparison as text, ending in a verdict at significance level alpha."""
    if c["only_a_right"] == c["only_b_right"] or c["mcnemar_p"] >= alpha:
        verdict = f"no significant difference (p >= {alpha})"
    else:
        verdict = f"{name_a if c['only_a_right'] > c['only_b_right'] else name_b} is better (p < {alpha})"
    losses = c.get("log_loss_a") is not None and c.get("log_loss_b") is not None
    return "\n".join([
        f"paired on {c['n']} photos: {name_a} {c['accuracy_a'] * 100:.2f}%, {name_b} {c['accuracy_b'] * 100:.2f}%"
        + (f" (log loss {c['log_loss_a']:.3f} and {c['log_loss_b']:.3f})" if losses else ""),
        f"  right only by {name_a}: {c['only_a_right']}, only by {name_b}: {c['only_b_right']}, "
        f"both: {c['both_right']}, neither: {c['both_wrong']}",
        f"  exact McNemar test: p = {c['mcnemar_p']:.3f}; {verdict}"])


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
