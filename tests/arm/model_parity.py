"""Logits of artifacts on fixed input tensors, and the preprocessed photos themselves, for cross-CPU parity.

    python tests/arm/model_parity.py MODEL OUT ARTIFACT... [--inputs INPUTS.npy]

Writes OUT/inputs.npy (this CPU's preprocessing of the default pair's sample photos, uint8 NHWC)
and OUT/logits-ARTIFACT.npy: each artifact on INPUTS.npy when given (the other CPU's tensors, so
the model alone is compared), else on this CPU's own.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgehound.runtime.classifier import Classifier
from edgehound.runtime.preprocess import IMAGE_SUFFIXES, normalize

PHOTOS = [Path("tests/sample/n02099601"), Path("tests/sample/n02111889")]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("out", type=Path)
    p.add_argument("artifacts", nargs="+")
    p.add_argument("--inputs", type=Path, help="uint8 NHWC tensors to run instead of this CPU's own")
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    photos = sorted(f for d in PHOTOS for f in d.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
    prepare = Classifier.load(a.model, a.artifacts[0]).prepare
    own = np.stack([prepare(f) for f in photos])
    np.save(a.out / "inputs.npy", own)
    inputs = np.load(a.inputs) if a.inputs else own
    for name in a.artifacts:
        clf = Classifier.load(a.model, name)
        np.save(a.out / f"logits-{name}.npy", clf.predict(normalize(inputs, clf.spec)))


if __name__ == "__main__":
    main()
