"""Score any predictor on a folder of labelled photos, with the runtime's own preprocessing.

Used by `edgehound evaluate` for checkpoints (and artifacts), so every model is measured the same
way: the dataset's photos of the breeds the model knows, decoded and preprocessed by
`runtime.preprocess`, unreadable photos skipped, counted and named.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

import numpy as np
from tqdm import tqdm

from edgehound.runtime.breeds import resolve_breed
from edgehound.runtime.errors import EdgehoundError, ImageError
from edgehound.runtime.metrics import classification_report
from edgehound.runtime.preprocess import PreprocessSpec, preprocess
from edgehound.train.datasets import read_dataset, split_indices


def evaluate_folder(
    predict: Callable[[np.ndarray], np.ndarray],
    classes: list[dict],
    spec: PreprocessSpec,
    data: str | Path,
    breeds: list[str] | None = None,
    batch_size: int = 32,
    progress: bool = True,
    split: dict | None = None,
) -> dict:
    """predict: float32 batch in the spec's layout -> scores (N x classes). classes: [{wnid, name}].

    split: the training run's split settings (checkpoint meta); when given, only the photos of
    that run's test part are scored, i.e. photos the model never trained on.
    """
    model_wnids = [c["wnid"] for c in classes]
    wanted = set(model_wnids)
    if breeds:
        chosen = {resolve_breed(b).wnid for b in breeds}
        unknown = chosen - wanted
        if unknown:
            raise EdgehoundError(f"the model does not know {', '.join(sorted(unknown))}; it knows {', '.join(model_wnids)}")
        wanted = chosen
    if split is not None:
        ds = read_dataset(data, model_wnids, split["exclude"])
        part = split_indices(ds.labels(), split["seed"], split["test_frac"], split["val_frac"],
                             split["per_class"] or None, split["folds"], split["fold"]).test
        samples = [ds.samples[i] for i in part if ds.samples[i].wnid in wanted]
    else:
        samples = [s for s in read_dataset(data).samples if s.wnid in wanted]
    if not samples:
        raise EdgehoundError(f"{data}: no photos of the model's breeds ({', '.join(c['name'] for c in classes)})")
    index = {w: i for i, w in enumerate(model_wnids)}

    def load(sample):
        try:
            return preprocess(sample.path, spec, sample.box), None
        except ImageError as e:
            return None, str(e)

    y_true, y_pred, skipped = [], [], []
    bar = tqdm(total=len(samples), desc="evaluating", unit="img", disable=not progress, leave=False)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for start in range(0, len(samples), batch_size):
            chunk = samples[start:start + batch_size]
            loaded = list(pool.map(load, chunk))
            good = [(s, x) for s, (x, err) in zip(chunk, loaded) if x is not None]
            skipped += [err for _, err in loaded if err is not None]
            if good:
                scores = np.asarray(predict(np.stack([x for _, x in good])))
                y_pred += scores.argmax(1).tolist()
                y_true += [index[s.wnid] for s, _ in good]
            bar.update(len(chunk))
    bar.close()
    report = classification_report(np.array(y_true), np.array(y_pred), [c["name"] for c in classes])
    report.update(skipped=len(skipped), skipped_files=skipped, data=str(data))
    return report
