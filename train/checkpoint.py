"""Checkpoints: a model file (weights + what it needs to run) and the training state for resuming.

Both are plain tensors and strings saved with torch.save and loaded with weights_only=True, so
loading never unpickles arbitrary objects. Writes are atomic.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from edgehound.runtime.breeds import Breed
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.preprocess import PreprocessSpec
from edgehound.train.config import Config
from edgehound.train.model import build_model
from edgehound.util import atomic_write_bytes


def save(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise EdgehoundError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign files raise many different errors
        raise EdgehoundError(f"{path}: not a readable edgehound checkpoint ({type(e).__name__}: {e})") from None


def model_meta(cfg: Config, classes: list[Breed], spec: PreprocessSpec, **extra) -> str:
    return json.dumps({"config": cfg.to_dict(), "classes": [b.to_dict() for b in classes],
                       "preprocess": spec.to_dict(), **extra})


def predictor(model: torch.nn.Module):
    """float32 numpy batch -> numpy logits, without autograd: the eager baseline everywhere."""
    def predict(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return predict


def load_model(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """A model file (best.pt / last.pt) -> (model in eval mode, meta with config, classes, preprocess)."""
    ckpt = load(path)
    if "model" not in ckpt or "meta" not in ckpt:
        raise EdgehoundError(f"{path}: not an edgehound model checkpoint (no model weights / meta)")
    meta = json.loads(ckpt["meta"])
    cfg = Config.from_dict(meta["config"])
    model = build_model(cfg.model, len(meta["classes"]))
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:  # weights of another shape than the config says
        raise EdgehoundError(f"{path}: weights do not fit its config ({str(e).splitlines()[0]})") from None
    model.eval()
    return model, meta
