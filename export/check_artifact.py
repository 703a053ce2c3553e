"""Parity logits and accuracy of one artifact, run in the artifact's own backend environment (e.g. TVM's)
as a job of runtime/jobs.py: {"call": "edgehound.export.check_artifact:check", "args": {...}}.
"""

from __future__ import annotations

import numpy as np

from edgehound.runtime.classifier import Classifier, in_batches
from edgehound.runtime.datasets import Sample
from edgehound.runtime.evaluation import evaluate_samples


def check(manifest: str, name: str, parity_path: str, samples: list[dict] | None) -> dict:
    """{"parity": logits of the parity batch (parity and fidelity photos), "report": evaluation of the samples
    (None when no samples are given: a kept artifact's fidelity needs only the logits)}."""
    clf = Classifier.load(manifest, artifact=name)
    parity = in_batches(clf.predict, np.load(parity_path))
    report = None if samples is None else evaluate_samples(clf.predict, clf.classes, clf.spec,
                                                           [Sample.from_dict(s) for s in samples], progress=False)
    return {"parity": parity.tolist(), "report": report}
