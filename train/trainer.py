"""The training loop: progress, best checkpoint by validation accuracy, per-epoch metrics, exact resume.

Files in the run folder:
- best.pt       model file of the epoch with the best validation accuracy (what export/evaluate take)
- last.pt       full training state, saved at each epoch end and every `save_every` steps mid-epoch
- metrics.jsonl one line per finished epoch (rewritten atomically from the state)
- summary.json  the test-split report of best.pt, the split sizes, skipped photos, timings

Resuming is exact: the batch order comes from (seed, epoch), each photo's augmentation from
(seed, epoch, photo), and the torch RNG state (dropout) is saved, so a killed run that resumes ends
with the same weights as one that never stopped.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.metrics import classification_report
from edgehound.runtime.preprocess import PreprocessSpec, normalize
from edgehound.train import checkpoint
from edgehound.train.augment import augment
from edgehound.train.cache import ImageCache, load_cached
from edgehound.train.config import Config
from edgehound.runtime.datasets import read_dataset, split_indices
from edgehound.train.model import DogCNN, count_macs
from edgehound.util import atomic_write_json, atomic_write_text


@dataclass
class RunOptions:
    data: Path
    out: Path
    breeds: list[str] | None = None
    exclude: tuple = ()
    resume: bool = False
    save_every: int = 0  # also save last.pt every N steps mid-epoch (0: every 60 s)
    folds: int | None = None
    fold: int = 0
    cache_dir: Path | None = None
    progress: bool = True
    threads: int | None = None


def _batch(cache: ImageCache, idx: np.ndarray, spec: PreprocessSpec, aug_seed: tuple | None) -> torch.Tensor:
    images = np.asarray(cache.images[idx])
    if aug_seed is not None:
        images = np.stack([augment(img, np.random.default_rng([*aug_seed, int(i)])) for img, i in zip(images, idx)])
    return torch.from_numpy(normalize(images, spec))


def predict(model: nn.Module, cache: ImageCache, idx: np.ndarray, spec: PreprocessSpec, batch_size: int = 64):
    """Predicted labels of the cached photos at idx (eval mode, no augmentation)."""
    model.eval()
    preds = []
    with torch.inference_mode():
        for start in range(0, len(idx), batch_size):
            preds.append(model(_batch(cache, idx[start:start + batch_size], spec, None)).argmax(1).numpy())
    model.train()
    return np.concatenate(preds) if preds else np.zeros(0, np.int64)


def _prepare_data(cfg: Config, opts: RunOptions):
    ds = read_dataset(opts.data, opts.breeds, opts.exclude)
    if len(ds.classes) < 2:
        raise EdgehoundError(f"{opts.data}: training needs at least two breeds, got {', '.join(b.name for b in ds.classes)}")
    spec = PreprocessSpec(size=cfg.model.input_size, crop=cfg.data.crop, use_boxes=cfg.data.use_boxes)
    cache = load_cached(ds.samples, spec, opts.cache_dir, opts.progress)
    labels = ds.labels()
    split = split_indices(labels, cfg.train.seed, cfg.data.test_frac, cfg.data.val_frac,
                          cfg.data.per_class or None, opts.folds, opts.fold)
    for part in ("train", "val", "test"):  # unreadable photos are skipped everywhere
        setattr(split, part, np.array([i for i in getattr(split, part) if cache.ok[i]], dtype=np.int64))
    if len(split.train) == 0 or len(split.val) == 0:
        raise EdgehoundError(f"{opts.data}: too few readable photos to train ({len(split.train)} train, {len(split.val)} val)")
    return ds, spec, cache, labels, split


def photos_digest(ds) -> str:
    """Which photos, with which labels, a run trains on: resuming on other photos or labels is refused."""
    h = hashlib.sha256()
    for s, label in zip(ds.samples, ds.labels()):
        h.update(f"{s.path.relative_to(ds.root)}\t{label}\n".encode())
    return h.hexdigest()


def _check_same_data(last_path: Path, saved_meta: dict, ds, split_meta: dict) -> None:
    """A resumed run must see the breeds in the same label order, the same photos and the same split."""
    saved_classes = [c["wnid"] for c in saved_meta["classes"]]
    classes = [b.wnid for b in ds.classes]
    if saved_classes != classes:
        raise EdgehoundError(f"{last_path}: was trained on breeds {', '.join(saved_classes)} (in this label order), "
                             f"not {', '.join(classes)}; resume with the same --breeds, or use a new --out")
    saved_split = saved_meta.get("split", {})
    changed = [k for k in ("folds", "fold", "photos_digest") if k in saved_split and saved_split[k] != split_meta[k]]
    if changed:
        what = {"folds": "--folds", "fold": "--fold", "photos_digest": "the photos (--data, --exclude)"}
        raise EdgehoundError(f"{last_path}: {', '.join(what[k] for k in changed)} differ from the run being resumed "
                             f"(it used --data {saved_split.get('data')}); resume with the same data, or use a new --out")


def train(cfg: Config, opts: RunOptions) -> dict:
    out = Path(opts.out)
    torch.set_num_threads(opts.threads or os.cpu_count() or 1)
    ds, spec, cache, labels, split = _prepare_data(cfg, opts)  # refusals come before --out is created
    names = [b.name for b in ds.classes]
    t = cfg.train

    torch.manual_seed(t.seed)
    model = DogCNN(cfg.model, len(ds.classes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay)
    steps_per_epoch = math.ceil(len(split.train) / t.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=t.lr, total_steps=t.epochs * steps_per_epoch, pct_start=0.15)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)
    state = {"epoch": 0, "step": 0, "best_val": -1.0, "history": [], "sums": [0.0, 0, 0, 0.0]}

    split_meta = {"data": str(opts.data), "exclude": [str(e) for e in opts.exclude], "seed": t.seed,
                  "test_frac": cfg.data.test_frac, "val_frac": cfg.data.val_frac, "per_class": cfg.data.per_class,
                  "folds": opts.folds, "fold": opts.fold, "photos_digest": photos_digest(ds)}

    last_path, best_path = out / "last.pt", out / "best.pt"
    if opts.resume and last_path.is_file():
        saved = checkpoint.load(last_path)
        if saved["config_digest"] != cfg.digest():
            raise EdgehoundError(f"{last_path}: was trained with another config; use a new --out or drop --resume")
        _check_same_data(last_path, json.loads(saved["meta"]), ds, split_meta)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        torch.set_rng_state(saved["torch_rng"])
        state = json.loads(saved["state"])
        print(f"resuming {out} at epoch {state['epoch'] + 1}, step {state['step']}/{steps_per_epoch}")
    elif not opts.resume and last_path.is_file():
        raise EdgehoundError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    macs, params = count_macs(model, cfg.model.input_size)
    print(f"{cfg.name}: {params / 1e6:.2f} M params, {macs / 1e9:.3f} GMACs/image; "
          f"classes {', '.join(names)}; train {len(split.train)}, val {len(split.val)}, test {len(split.test)}"
          + (f"; {len(cache.skipped)} unreadable photos skipped" if cache.skipped else ""))

    def save_last():
        checkpoint.save(last_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "torch_rng": torch.get_rng_state(), "state": json.dumps(state), "config_digest": cfg.digest(),
            "meta": checkpoint.model_meta(cfg, ds.classes, spec, split=split_meta),
        })

    last_save = time.monotonic()
    model.train()
    while state["epoch"] < t.epochs:
        epoch = state["epoch"]
        order = np.random.default_rng([t.seed, epoch]).permutation(split.train)
        aug_seed = (t.seed, epoch) if cfg.data.augment else None
        bar = tqdm(total=steps_per_epoch, initial=state["step"], desc=f"epoch {epoch + 1}/{t.epochs}",
                   unit="batch", disable=not opts.progress, leave=False)
        t0 = time.monotonic()
        while state["step"] < steps_per_epoch:
            idx = order[state["step"] * t.batch_size:(state["step"] + 1) * t.batch_size]
            x, y = _batch(cache, idx, spec, aug_seed), torch.from_numpy(labels[idx])
            logits = model(x)
            loss = loss_fn(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            s = state["sums"]  # loss sum, correct, seen, seconds
            s[0] += loss.item() * len(idx)
            s[1] += int((logits.argmax(1) == y).sum())
            s[2] += len(idx)
            state["step"] += 1
            now = time.monotonic()
            s[3] += now - t0
            t0 = now
            bar.update(1)
            bar.set_postfix(loss=f"{s[0] / s[2]:.3f}", acc=f"{s[1] / s[2]:.3f}", img_s=f"{s[2] / max(s[3], 1e-9):.1f}")
            due = state["step"] % opts.save_every == 0 if opts.save_every else now - last_save > 60
            if due and state["step"] < steps_per_epoch:
                save_last()
                last_save = time.monotonic()
        bar.close()

        val_pred = predict(model, cache, split.val, spec)
        val_acc = float((val_pred == labels[split.val]).mean())
        s = state["sums"]
        row = {"epoch": epoch + 1, "train_loss": s[0] / s[2], "train_acc": s[1] / s[2], "val_acc": val_acc,
               "lr": schedule.get_last_lr()[0], "seconds": s[3], "images_per_s": s[2] / max(s[3], 1e-9)}
        state["history"].append(row)
        print(f"epoch {epoch + 1}/{t.epochs}: loss {row['train_loss']:.4f}, train acc {row['train_acc']:.3f}, "
              f"val acc {val_acc:.3f}, {row['seconds']:.1f} s, {row['images_per_s']:.1f} img/s", flush=True)
        if val_acc > state["best_val"]:
            state["best_val"] = val_acc
            checkpoint.save(best_path, {"model": model.state_dict(),
                                        "meta": checkpoint.model_meta(cfg, ds.classes, spec, split=split_meta,
                                                                                 epoch=epoch + 1, val_acc=val_acc)})
        state.update(epoch=epoch + 1, step=0, sums=[0.0, 0, 0, 0.0])
        save_last()
        last_save = time.monotonic()
        atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state["history"]))

    best, _ = checkpoint.load_model(best_path)
    report = classification_report(labels[split.test], predict(best, cache, split.test, spec), names)
    summary = {
        "config": cfg.to_dict(), "data": str(opts.data), "layout": ds.layout, "test": report,
        "best_val_acc": state["best_val"], "split": {k: len(getattr(split, k)) for k in ("train", "val", "test")},
        "skipped": cache.skipped, "params": params, "macs": macs,
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in state["history"]])),
        "images_per_s": float(np.mean([r["images_per_s"] for r in state["history"]])),
        "total_train_seconds": float(sum(r["seconds"] for r in state["history"])),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
