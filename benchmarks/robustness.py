"""How a model and its compiled artifacts hold up: adversarial photos, camera conditions, calibration.

One export folder (its checkpoint and its artifacts) on held-out photos:
- clean: accuracy, per class, confusion, calibration (ECE, reliability) per model, on every photo;
- white-box FGSM and PGD (adversarial-robustness-toolbox) on the checkpoint at eps/255 in pixel
  space, the adversarial photos rounded to 8 bits (what a real image file holds) and sent through
  the checkpoint and every artifact (transfer: does int8 or a compiler change the damage?);
- black-box: ART's Square attack, score-based, straight on an int8 artifact through the runtime,
  with a query budget and the queries it used;
- camera conditions (`corruptions.py`) at each severity, per model.

Attacks and conditions run on a seeded, class-balanced subset (`limit`) to keep CPU time in minutes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgehound.benchmarks.corruptions import CORRUPTIONS, SEVERITIES, corrupt
from edgehound.runtime.classifier import Classifier, softmax
from edgehound.runtime.datasets import Sample
from edgehound.runtime.errors import EdgehoundError, ImageError
from edgehound.runtime.manifest import read_manifest
from edgehound.runtime.metrics import calibration, classification_report
from edgehound.runtime.preprocess import PreprocessSpec, load_image, normalize, prepare
from edgehound.util import atomic_write_bytes

CHECKPOINT = "checkpoint"  # the row of the PyTorch model the attacks read the gradients of
EPSILONS = (0, 1, 2, 4, 8)  # /255


@dataclass
class Models:
    """The export folder's checkpoint and the artifacts this Python can run, as uint8 -> probabilities."""
    classes: list[dict]
    spec: PreprocessSpec
    torch_model: object
    runners: dict  # name -> Classifier (the checkpoint's row is handled by probs())
    skipped: dict  # artifact name -> why it is not measured here

    def names(self) -> list[str]:
        return [CHECKPOINT, *self.runners]

    def probs(self, name: str, images: np.ndarray) -> np.ndarray:
        return probabilities(self.torch_model if name == CHECKPOINT else self.runners[name], self.spec, images)


def probabilities(model, spec: PreprocessSpec, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """uint8 images N x size x size x 3 -> softmax probabilities, through a torch module (normalised
    here) or a runtime Classifier (its own input: float, or the integers of a quantized input)."""
    out = []
    for i in range(0, len(images), batch_size):
        chunk = images[i:i + batch_size]
        if isinstance(model, Classifier):
            logits = model.predict(model.to_input(chunk))
        else:
            import torch

            with torch.inference_mode():
                logits = model(torch.from_numpy(normalize(chunk, spec))).numpy()
        out.append(softmax(np.asarray(logits, np.float32)))
    return np.concatenate(out)


def load_models(folder: str | Path, artifacts: list[str] | None = None) -> Models:
    """The export folder's checkpoint (`analyze.checkpoint_of`) and each usable artifact, or those named."""
    from edgehound.benchmarks.analyze import checkpoint_of
    from edgehound.train.checkpoint import load_model

    manifest, folder = read_manifest(folder)
    model, meta = load_model(checkpoint_of(folder))
    entries = {e["name"]: e for e in manifest["artifacts"]}
    unknown = [a for a in artifacts or () if a not in entries]
    if unknown:
        raise EdgehoundError(f"{folder}: no artifact {', '.join(unknown)} (has: {', '.join(entries)})")
    runners, skipped = {}, {}
    # the checkpoint is the model above; its "pytorch" row would measure it twice
    for name in artifacts or [n for n, e in entries.items() if e.get("status") == "ok" and e.get("backend") != "pytorch"]:
        try:
            runners[name] = Classifier.load(folder, name)
        except EdgehoundError as e:
            if artifacts:  # asked for by name: say why it cannot run
                raise
            skipped[name] = str(e).splitlines()[0][:200]
    return Models(meta["classes"], PreprocessSpec.from_dict(meta["preprocess"]), model, runners, skipped)


def load_images(samples: list[Sample], spec: PreprocessSpec) -> tuple[np.ndarray, list[Sample], list[str]]:
    """Prepared uint8 images of the readable photos, those photos, and the unreadable ones' errors."""
    images, kept, skipped = [], [], []
    for s in samples:
        try:
            images.append(prepare(load_image(s.path), spec, s.box))
            kept.append(s)
        except ImageError as e:
            skipped.append(str(e))
    if not images:
        raise EdgehoundError("no readable photos to measure")
    return np.stack(images), kept, skipped


def balanced_subset(labels: np.ndarray, limit: int | None, seed: int = 0) -> np.ndarray:
    """Indices of at most `limit` photos, taking the classes in turn (seeded order within each class)."""
    if not limit or limit >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    queues = [list(rng.permutation(np.flatnonzero(labels == c))) for c in np.unique(labels)]
    picked = []
    while len(picked) < limit:
        for q in queues:
            if q and len(picked) < limit:
                picked.append(q.pop(0))
    return np.sort(np.array(picked))


def white_box(models: Models, images: np.ndarray, labels: np.ndarray, epsilons=EPSILONS,
              pgd_steps: int = 10, progress: bool = False) -> dict[str, np.ndarray]:
    """{"fgsm": ..., "pgd": ...} -> adversarial uint8 images per eps (eps x N x H x W x 3), made on the
    checkpoint with its normalisation inside the attacked function, so eps is in pixels /255."""
    import torch
    from art.attacks.evasion import FastGradientMethod, ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    torch.manual_seed(0)
    size = models.spec.size
    art_model = PyTorchClassifier(
        model=models.torch_model, loss=torch.nn.CrossEntropyLoss(), input_shape=(3, size, size),
        nb_classes=len(models.classes), clip_values=(0.0, 1.0), channels_first=True, device_type="cpu",
        preprocessing=(np.array(models.spec.mean, np.float32).reshape(3, 1, 1),
                       np.array(models.spec.std, np.float32).reshape(3, 1, 1)))
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    out = {"fgsm": [], "pgd": []}
    for eps in epsilons:
        if eps == 0:
            for attack in out:
                out[attack].append(images)
            continue
        e = eps / 255.0
        fgsm = FastGradientMethod(art_model, eps=e, batch_size=32)
        pgd = ProjectedGradientDescent(art_model, eps=e, eps_step=e / 4, max_iter=pgd_steps, num_random_init=0,
                                       batch_size=32, verbose=progress)
        for attack, method in (("fgsm", fgsm), ("pgd", pgd)):
            adv = method.generate(x=x, y=labels)
            out[attack].append(to_uint8(adv))
    return {k: np.stack(v) for k, v in out.items()}


def to_uint8(x: np.ndarray) -> np.ndarray:
    """N x 3 x H x W floats in 0..1 -> N x H x W x 3 uint8, as the photo would be saved."""
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8).transpose(0, 2, 3, 1)


def black_box(models: Models, artifact: str, images: np.ndarray, labels: np.ndarray, eps: int = 8,
              queries: int = 200, seed: int = 0) -> dict:
    """ART's Square attack (score-based: it only reads the output probabilities) on one artifact
    through the runtime, at most `queries` iterations per photo. The model sees 8-bit pixels."""
    from art.attacks.evasion import SquareAttack
    from art.estimators.classification import BlackBoxClassifierNeuralNetwork

    size, used = models.spec.size, [0]

    def predict(x: np.ndarray) -> np.ndarray:
        used[0] += len(x)
        return models.probs(artifact, to_uint8(x.reshape(-1, 3, size, size)))

    estimator = BlackBoxClassifierNeuralNetwork(predict, (3, size, size), len(models.classes),
                                                channels_first=True, clip_values=(0.0, 1.0))
    np.random.seed(seed)  # Square attack draws its squares from numpy's global generator
    attack = SquareAttack(estimator, norm=np.inf, eps=eps / 255.0, max_iter=queries, nb_restarts=1,
                          batch_size=64, verbose=False)
    x = images.transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    y = np.eye(len(models.classes), dtype=np.float32)[labels]
    start = time.perf_counter()
    adv = to_uint8(attack.generate(x=x, y=y))
    seconds = time.perf_counter() - start
    clean = float((models.probs(artifact, images).argmax(1) == labels).mean())
    attacked = float((models.probs(artifact, adv).argmax(1) == labels).mean())
    return {"artifact": artifact, "attack": "square (L-inf, score-based)", "eps": eps, "query_budget": queries,
            "queries_per_photo": round(used[0] / len(images), 1), "n": len(images), "clean_accuracy": clean,
            "accuracy": attacked, "seconds": round(seconds, 1)}


def measure(folder: str | Path, samples: list[Sample], out: Path, artifacts: list[str] | None = None,
            limit: int | None = 200, pgd_steps: int = 10, black_box_artifact: str | None = None,
            black_box_limit: int = 50, queries: int = 200, seed: int = 0, progress: bool = True) -> dict:
    """Everything above for one export folder; writes out/robustness.json and the plots, returns the JSON."""
    from tqdm import tqdm

    models = load_models(folder, artifacts)
    index = {c["wnid"]: i for i, c in enumerate(models.classes)}
    names = [c["name"] for c in models.classes]
    images, samples, unreadable = load_images(samples, models.spec)
    labels = np.array([index[s.wnid] for s in samples])
    result = {"model": str(folder), "classes": names, "photos": len(samples), "unreadable": unreadable,
              "skipped_artifacts": models.skipped, "seed": seed, "clean": {}}

    predicted = {}  # name -> clean labels of every held-out photo
    for name in models.names():  # clean: every held-out photo
        p = models.probs(name, images)
        predicted[name] = p.argmax(1)
        report = classification_report(labels, p.argmax(1), names)
        report["calibration"] = calibration(p, labels)
        wrong = np.flatnonzero(p.argmax(1) != labels)
        worst = wrong[np.argsort(-p[wrong].max(1), kind="stable")][:8]
        report["confident_mistakes"] = [{"photo": str(samples[i].path), "true": names[labels[i]],
                                         "predicted": names[int(p[i].argmax())], "confidence": round(float(p[i].max()), 4)}
                                        for i in worst]
        result["clean"][name] = report

    subset = balanced_subset(labels, limit, seed)
    x, y = images[subset], labels[subset]
    result["subset"] = {"n": len(subset), "limit": limit, "seed": seed}

    adversarial = white_box(models, x, y, EPSILONS, pgd_steps, progress)
    result["white_box"] = {"epsilons": list(EPSILONS), "pgd_steps": pgd_steps, "made_on": CHECKPOINT, "accuracy": {
        attack: {name: [float((models.probs(name, adv).argmax(1) == y).mean()) for adv in per_eps]
                 for name in models.names()} for attack, per_eps in adversarial.items()}}

    conditions = [(c, s) for c in CORRUPTIONS for s in SEVERITIES]
    acc = {name: {c: [] for c in CORRUPTIONS} for name in models.names()}
    for c, s in tqdm(conditions, desc="camera conditions", disable=not progress, leave=False):
        corrupted = corrupt(x, c, s, seed)
        for name in models.names():
            acc[name][c].append(float((models.probs(name, corrupted).argmax(1) == y).mean()))
    result["camera"] = {"severities": list(SEVERITIES), "accuracy": acc,
                        "clean": {name: float((predicted[name][subset] == y).mean()) for name in models.names()}}

    target = black_box_artifact or next((n for n in ("tflite-int8", "onnx-int8") if n in models.runners), None)
    if target is not None:
        if target not in models.runners:
            raise EdgehoundError(f"--black-box {target}: not an artifact measured here ({', '.join(models.runners)})")
        few = balanced_subset(y, black_box_limit, seed)
        result["black_box"] = black_box(models, target, x[few], y[few], 8, queries, seed)

    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / "robustness.json", (json.dumps(result, indent=1) + "\n").encode())
    plot(result, out)
    return result


def plot(result: dict, out: Path) -> list[Path]:
    """accuracy vs eps, accuracy vs severity per condition, and the reliability diagram, as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    wb = result["white_box"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, attack in zip(axes, ("fgsm", "pgd")):
        for name, accs in wb["accuracy"][attack].items():
            ax.plot(wb["epsilons"], [a * 100 for a in accs], marker="o", label=name)
        ax.set(title=f"{attack.upper()} (made on the checkpoint)", xlabel="eps (/255)", ylim=(0, 100))
    axes[0].set_ylabel("accuracy %")
    axes[1].legend(fontsize=7)
    paths.append(_save(fig, out / "adversarial.png"))

    cam = result["camera"]
    conditions = list(next(iter(cam["accuracy"].values())))
    cols = 4
    fig, axes = plt.subplots(2, cols, figsize=(11, 5.2), sharey=True)
    for ax, c in zip(axes.flat, conditions):
        for name, per in cam["accuracy"].items():
            ax.plot([0, *cam["severities"]], [cam["clean"][name] * 100] + [a * 100 for a in per[c]], marker=".", label=name)
        ax.set(title=c.replace("_", " "), ylim=(0, 100), xticks=[0, *cam["severities"]])
    for ax in axes.flat[len(conditions):]:
        ax.axis("off")
    axes.flat[-1].legend(*axes.flat[0].get_legend_handles_labels(), loc="center", fontsize=8)
    fig.supxlabel("severity (0: clean)")
    fig.supylabel("accuracy %")
    paths.append(_save(fig, out / "camera-conditions.png"))

    fig, ax = plt.subplots(figsize=(4.2, 4))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--")
    for name, report in result["clean"].items():
        bins = [b for b in report["calibration"]["bins"] if b["n"]]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], marker="o",
                label=f"{name} (ECE {report['calibration']['ece'] * 100:.1f}%)")
    ax.set(xlabel="confidence", ylabel="accuracy", title="reliability (held-out photos)", xlim=(0, 1), ylim=(0, 1.02))
    ax.legend(fontsize=7)
    paths.append(_save(fig, out / "reliability.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    # no timestamp in the PNG: the same results give the same bytes (the model card is regenerated identically)
    fig.savefig(buf, format="png", dpi=90, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())
    return path
