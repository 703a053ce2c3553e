"""Checkpoints: a model file (weights + what it needs to run) and the training state for resuming.

Both are plain tensors and strings saved with torch.save and loaded with weights_only=True, so
loading never unpickles arbitrary objects. Writes are atomic.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np
import torch

from edgehound.runtime.backends import Backend
from edgehound.runtime.breeds import Breed, check_classes
from edgehound.runtime.datasets import check_split
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.manifest import Artifact
from edgehound.runtime.preprocess import PreprocessSpec
from edgehound.train.config import Config
from edgehound.train.model import Ensemble, build_model, takes_any_size
from edgehound.util import atomic_write_bytes

MAX_MEMBERS = 8  # an ensemble's members: each one costs the device a whole model's MACs


def save(path: Path, payload: dict) -> None:
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path) -> dict:
    return load_hashed(path)[0]


def load_hashed(path: str | Path) -> tuple[dict, str]:
    """A checkpoint and the sha256 of the very bytes it was read from: a record of where weights came
    from (a teacher, an --init) must name the file that was used, even if it is replaced meanwhile."""
    path = Path(path)
    if not path.is_file():
        raise EdgehoundError(f"{path}: no such checkpoint")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise EdgehoundError(f"{path}: cannot be read ({e.strerror})") from None
    if not data.startswith(b"PK\x03\x04"):  # torch.save writes a zip archive; torch's own error would speak of pickles
        raise EdgehoundError(f"{path}: not a model checkpoint (a .pt file written by `edgehound train`)")
    try:
        ckpt = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # truncated or foreign files raise many different errors
        first = (str(e).strip().splitlines() or [""])[0][:160]  # torch's own message runs to a page
        raise EdgehoundError(f"{path}: not a readable edgehound checkpoint ({type(e).__name__}: {first})") from None
    if not isinstance(ckpt, dict):
        raise EdgehoundError(f"{path}: not an edgehound checkpoint (a {type(ckpt).__name__}, not a dictionary)")
    return ckpt, hashlib.sha256(data).hexdigest()


def read_meta(path: str | Path, ckpt: dict) -> dict:
    """A checkpoint's meta, once the fields its readers use have the right types: a checkpoint is a file
    from outside, and a bad field would otherwise fail far from here (a KeyError in an export, a split
    of the wrong photos)."""
    try:
        meta = json.loads(ckpt["meta"]) if isinstance(ckpt.get("meta"), str) else None
    except json.JSONDecodeError as e:
        raise EdgehoundError(f"{path}: its meta is not valid JSON ({e})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("config"), dict):
        raise EdgehoundError(f"{path}: not an edgehound model checkpoint (no meta with a config)")
    check_classes(meta.get("classes"), str(path))
    PreprocessSpec.from_dict(meta.get("preprocess"), str(path))
    if meta.get("split") is not None:
        check_split(meta["split"], str(path))
    narrowed = meta.get("narrowed_from")
    if narrowed is not None:
        check_classes(narrowed.get("classes") if isinstance(narrowed, dict) else None, f"{path}: narrowed_from")
    members = meta.get("ensemble")
    if members is not None and not (isinstance(members, list) and 2 <= len(members) <= MAX_MEMBERS
                                    and all(isinstance(m, dict) for m in members)):
        raise EdgehoundError(f"{path}: its meta's ensemble is not a list of 2 to {MAX_MEMBERS} member records")
    return meta


def model_meta(cfg: Config, classes: list[Breed], spec: PreprocessSpec, **extra) -> str:
    return json.dumps({"config": cfg.to_dict(), "classes": [b.to_dict() for b in classes],
                       "preprocess": spec.to_dict(), **extra})


def predictor(model: torch.nn.Module):
    """float32 numpy batch -> numpy logits, without autograd: the eager baseline everywhere."""
    def predict(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(np.ascontiguousarray(batch, np.float32))).numpy()

    return predict


class TorchBackend(Backend):
    """The "pytorch" backend: a model file run eagerly, the reference every artifact is checked against."""

    def __init__(self, path: str, threads: int | None = None, **_):
        if threads:
            torch.set_num_threads(threads)
        self.model, meta = load_model(path)
        size = meta["preprocess"]["size"]
        any_size = takes_any_size(Config.from_dict(meta["config"]).model)  # else only the size it trained at
        self.input_shape = ["N", 3, None, None] if any_size else ["N", 3, size, size]
        self.predict = predictor(self.model)


def checkpoint_entry(path: str | Path, input_size: int | None = None) -> dict:
    """A model file as a manifest entry of the "pytorch" backend: what the runtime's Classifier reads.
    input_size: photos are prepared at this size instead of the one it trained at (test-time resolution: a
    convolutional model with a global pool takes any size)."""
    path = Path(path)
    ckpt, sha256 = load_hashed(path)
    meta = read_meta(path, ckpt)
    size = check_input_size(path, meta, input_size)
    return {"name": "pytorch", "format": "pytorch", "file": path.name, "backend": "pytorch", "precision": "fp32",
            "target": "this host, eager PyTorch (the reference)", "devices": [], "runs_here": True, "status": "ok",
            "size_bytes": path.stat().st_size, "sha256": sha256,
            "input": {"name": "input", "shape": ["N", 3, size, size], "layout": "NCHW", "dtype": "float32",
                      "quantization": None},
            "output": {"name": "logits", "shape": ["N", len(meta["classes"])]},
            "classes": meta["classes"], "preprocess": {**meta["preprocess"], "size": size}, "split": meta.get("split"),
            "source": {"checkpoint": path.name, "sha256": sha256}, "tools": {"torch": torch.__version__}}


def check_input_size(path: str | Path, meta: dict, input_size: int | None) -> int:
    """The size a model file answers at: `input_size` if given (test-time resolution), else the size it trained
    at. A model whose classifier reads a flattened feature map (no global pool) takes only its own size."""
    trained = meta["preprocess"]["size"]
    if not input_size or input_size == trained:
        return trained
    try:
        any_size = takes_any_size(Config.from_dict(meta["config"]).model)
    except (TypeError, ValueError, AttributeError, EdgehoundError) as e:  # a config field of the wrong type or range
        raise EdgehoundError(f"{path}: its config does not build a model ({e})") from None
    if not any_size:
        raise EdgehoundError(f"{path}: its classifier reads the {trained} px photo's feature map flattened (no global "
                             f"pool), so it answers only at {trained} px, not {input_size}")
    return input_size


def checkpoint_artifact(path: str | Path, input_size: int | None = None) -> Artifact:
    """A bare model file (not in an export folder) as an artifact, so it loads through Classifier like any other."""
    return Artifact(checkpoint_entry(path, input_size), Path(path))


def load_model(path: str | Path, ckpt: dict | None = None) -> tuple[torch.nn.Module, dict]:
    """A model file (best.pt / last.pt), or its `ckpt` already loaded -> (model in eval mode, meta with
    config, classes, preprocess)."""
    ckpt = load(path) if ckpt is None else ckpt
    if not isinstance(ckpt.get("model"), dict):
        raise EdgehoundError(f"{path}: not an edgehound model checkpoint (no model weights)")
    meta = read_meta(path, ckpt)
    try:
        cfg = Config.from_dict(meta["config"]).model
        members = meta.get("ensemble")
        model = (Ensemble([build_model(cfg, len(meta["classes"])) for _ in members]) if members
                 else build_model(cfg, len(meta["classes"])))
    except (TypeError, ValueError, AttributeError, EdgehoundError) as e:  # a config field of the wrong type or range
        raise EdgehoundError(f"{path}: its config does not build a model ({e})") from None
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:  # weights of another shape than the config says
        raise EdgehoundError(f"{path}: weights do not fit its config ({str(e).splitlines()[0]})") from None
    model.eval()
    return model, meta


def narrow(path: str | Path, breeds: list[str]) -> dict:
    """A multi-breed model file restricted to some of its breeds: the output layer keeps their rows alone,
    so the new model answers exactly as the old one scored on those breeds' outputs (argmax and softmax
    over the kept logits), with no training. The split record keeps the breeds it was drawn over."""
    from edgehound.runtime.breeds import resolve_breed

    ckpt, digest = load_hashed(path)
    model, meta = load_model(path, ckpt)
    if meta.get("ensemble"):
        raise EdgehoundError(f"{path}: is an ensemble of {len(meta['ensemble'])} models; narrow each member, then "
                             "`edgehound ensemble` the narrowed ones")
    wnids = [c["wnid"] for c in meta["classes"]]
    chosen = [resolve_breed(b).wnid for b in breeds]
    missing = [b for b, w in zip(breeds, chosen) if w not in wnids]
    if missing or len(set(chosen)) != len(chosen) or len(chosen) < 2:
        raise EdgehoundError(f"{path}: narrowing needs two or more different breeds of the model's own "
                             f"({', '.join(c['name'] for c in meta['classes'])})"
                             + (f"; it does not know {', '.join(missing)}" if missing else ""))
    name, head = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    if head.out_features != len(wnids):
        raise EdgehoundError(f"{path}: its last layer ({name}) has {head.out_features} outputs for {len(wnids)} breeds")
    rows = torch.tensor([wnids.index(w) for w in chosen])
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    weights[f"{name}.weight"] = head.weight.detach()[rows].clone()
    weights[f"{name}.bias"] = head.bias.detach()[rows].clone()
    split = meta.get("split")
    meta.update(classes=[meta["classes"][wnids.index(w)] for w in chosen],
                split={"wnids": wnids, **split} if split else None,
                narrowed_from={"file": Path(path).name, "sha256": digest, "classes": meta["classes"]})
    return {"model": weights, "meta": json.dumps(meta)}


def ensemble(paths: list[Path]) -> dict:
    """One model file of several trained models of one config, answering with the mean of their logits.

    The members must answer among the same breeds in the same order, prepare photos alike and record the
    same training split: otherwise some member trained on photos the ensemble's validation or test part
    holds. The file keeps each member's provenance (file, path as given, sha256, epoch, teacher, init)."""
    from edgehound.runtime.evaluation import member_mismatch

    if not 2 <= len(paths) <= MAX_MEMBERS:
        raise EdgehoundError(f"an ensemble needs 2 to {MAX_MEMBERS} model files, got {len(paths)}")
    weights, records, first = {}, [], None
    for i, path in enumerate(paths):
        ckpt, digest = load_hashed(path)
        model, meta = load_model(path, ckpt)
        if meta.get("ensemble"):
            raise EdgehoundError(f"{path}: is itself an ensemble; list its members instead")
        if first is None:
            first = meta
        else:
            problem = member_mismatch(meta["classes"], PreprocessSpec.from_dict(meta["preprocess"]), meta.get("split"),
                                      first["classes"], PreprocessSpec.from_dict(first["preprocess"]), first.get("split"))
            if not problem and meta["config"]["model"] != first["config"]["model"]:
                problem = "it is another model (its config's model section differs), and one config builds every member"
            if problem:
                raise EdgehoundError(f"{path}: cannot join an ensemble with {paths[0]}: {problem}")
        weights.update({f"members.{i}.{k}": v.clone() for k, v in model.state_dict().items()})
        records.append({"file": Path(path).name, "path": str(path), "sha256": digest,
                        **{k: meta[k] for k in ("epoch", "val_acc", "teacher", "init", "narrowed_from") if k in meta}})
    meta = {k: first[k] for k in ("config", "classes", "preprocess", "split") if k in first}
    return {"model": weights, "meta": json.dumps({**meta, "ensemble": records})}


def check_fold_model(path: Path, folds: int, fold: int) -> None:
    """A cross-validation's fold-I model must have been trained with fold I of the same K folds left out: its
    validation part is then that fold, and a pair head started from it never saw that fold's photos."""
    split = read_meta(path, load(path)).get("split") or {}
    if (split.get("folds"), split.get("fold")) != (folds, fold):
        raise EdgehoundError(f"{path}: was not trained with fold {fold} of {folds} left out (its split records "
                             f"folds {split.get('folds')}, fold {split.get('fold')}); give a cross-validation "
                             f"of the same {folds} folds")
