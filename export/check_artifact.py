"""Parity logits and accuracy of one artifact, run in the artifact's own backend environment (e.g. TVM's).

    python -m edgehound.export.check_artifact manifest.json NAME parity.npy samples.json
prints one JSON line: {"parity": [[...]], "report": {...}}.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from edgehound.runtime.classifier import Classifier
from edgehound.runtime.evaluation import evaluate_samples
from edgehound.runtime.datasets import Sample


def main(argv=None) -> int:
    manifest, name, parity_path, samples_path = (argv or sys.argv[1:])[:4]
    clf = Classifier.load(manifest, artifact=name)
    parity = clf.predict(np.load(parity_path))
    samples = [Sample.from_dict(s) for s in json.loads(Path(samples_path).read_text())]
    report = evaluate_samples(clf.predict, clf.classes, clf.spec, samples, progress=False)
    print(json.dumps({"parity": parity.tolist(), "report": report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
