"""The training loop: progress, best checkpoint by validation accuracy, per-epoch metrics, exact resume.

Files in the run folder:
- best.pt       model file of the epoch with the best validation accuracy (what export/evaluate take)
- last.pt       full training state, saved at an epoch's end or mid-epoch once a minute has passed, at the
                last epoch, and, with `save_every`, every that many steps and at each epoch's end
- metrics.jsonl one line per finished epoch (rewritten atomically from the state)
- summary.json  the test-split report of best.pt (none with `seal_test`), the split sizes, skipped photos,
                timings

Resuming is exact: the batch order comes from (seed, epoch), each photo's augmentation from
(seed, epoch, photo), and the torch RNG state (dropout) is saved, so a killed run that resumes ends
with the same weights as one that never stopped.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from edgehound.runtime.datasets import read_dataset, split_parts
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.metrics import classification_report
from edgehound.runtime.preprocess import PreprocessSpec, pixel_table
from edgehound.train import checkpoint
from edgehound.train.augment import AugmentConfig, augment, augment_batch, batch_params, draw, photo_rng
from edgehound.train.cache import ImageCache, load_cached
from edgehound.train.config import Config
from edgehound.train.model import build_model, count_macs
from edgehound.util import atomic_write_json, atomic_write_text


SAVE_INTERVAL_S = 60  # last.pt at most this often, unless save_every asks for steps


@dataclass
class RunOptions:
    data: Path
    out: Path
    breeds: list[str] | None = None
    exclude: tuple = ()
    resume: bool = False
    save_every: int = 0  # also save last.pt every N steps mid-epoch (0: every SAVE_INTERVAL_S)
    folds: int | None = None
    fold: int = 0
    cache_dir: Path | None = None
    progress: bool = True
    threads: int | None = None
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    workers: int | None = None  # processes that augment (or draw) batches (None: 0 on CPU, up to 12 on CUDA)
    teacher: tuple[Path, ...] = ()  # distil from these model files' soft outputs (several: their mean logits)
    init: Path | None = None  # start from this model file's weights (all but a differently shaped head)
    compile: bool = False  # torch.compile the training step's model and the teacher (fewer, fused kernels)
    augment_on: str = "workers"  # "workers": OpenCV in worker processes (or this one); "device": torch, where the model is
    seal_test: bool = False  # leave the test part unscored, so no figure of it exists before a choice is made


def pick_device(name: str) -> torch.device:
    if name not in ("auto", "cpu", "cuda"):
        raise EdgehoundError(f"--device must be auto, cpu or cuda, got {name!r}")
    if name == "cuda" and not torch.cuda.is_available():
        raise EdgehoundError("--device cuda: PyTorch sees no CUDA device here (a CPU build, or no GPU); use --device cpu")
    return torch.device("cuda" if name == "cuda" or (name == "auto" and torch.cuda.is_available()) else "cpu")


class Batches(torch.utils.data.Dataset):
    """Item (photo indices, augmentation seed or None): those cached photos as one uint8 batch (N x H x W x 3),
    each augmented per (seed..., photo); `to_input` normalises it where the model runs.

    Whole batches, named by what they hold rather than by position, so worker processes (on CUDA) augment
    without changing a single draw (the same run on 0 or 8 workers sees the same pixels), and the same
    workers serve every epoch."""

    def __init__(self, cache: ImageCache, spec: PreprocessSpec, aug: AugmentConfig = AugmentConfig()):
        self.images, self.spec, self.aug = cache.images, spec, aug

    def __getitem__(self, item: tuple[np.ndarray, tuple | None]) -> torch.Tensor:
        idx, aug_seed = item
        images = np.asarray(self.images[idx])
        if aug_seed is not None:
            images = np.stack([augment(img, photo_rng(aug_seed, j), self.aug)
                               for img, j in zip(images, idx)])
        return torch.from_numpy(images)


def to_input(photos: torch.Tensor, spec: PreprocessSpec, device: torch.device) -> torch.Tensor:
    """uint8 N x H x W x 3 -> the model's float input on the device, NCHW in channels-last memory.

    The runtime's own table lookup (pixel_table: the same float32 numbers as `normalize`), done after the
    copy: a quarter of the bytes cross from the worker processes and to the GPU."""
    table, channels = _device_table(spec.mean, spec.std, device)
    x = photos.to(device, non_blocking=True).long()
    return table[x, channels].permute(0, 3, 1, 2)


@functools.lru_cache(maxsize=4)
def _device_table(mean: tuple, std: tuple, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    # once per run, not per batch: a copy from pageable memory to a GPU waits for the GPU's queued work
    return torch.from_numpy(pixel_table(mean, std).reshape(256, 3)).to(device), torch.arange(3, device=device)


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A small host tensor on the device without waiting: from pageable memory, a copy to a GPU waits for
    the GPU's queued work (one stall per step); from pinned memory it is queued behind that work."""
    return t.pin_memory().to(device, non_blocking=True) if device.type == "cuda" else t


def _compiled(model: nn.Module) -> nn.Module:
    import torch._inductor.config as inductor

    # dropout draws from torch's own generator, as in eager mode: the same masks, and the generator state a
    # resumed run restores still holds them; compiling changes the rounding, not the training
    inductor.fallback_random = True
    return torch.compile(model)


def _one_thread_worker(_):
    cv2.setNumThreads(1)  # each worker process is one core's worth; OpenCV's own pool would oversubscribe


class EpochPlan(torch.utils.data.Sampler):
    """The batches the loader asks its workers for, set anew each epoch (`plan.items = ...`)."""

    def __init__(self):
        self.items: list[tuple[np.ndarray, tuple | None]] = []

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


class BatchDraws(torch.utils.data.Dataset):
    """Item (photo indices, augmentation seed or None): those indices and the draws `Batches` would make for
    them (`batch_params`; none without a seed), for `augment_batch` where the model is. The worker processes
    only draw: a few floats a photo cross to the device, not the photos."""

    def __init__(self, size: int, aug: AugmentConfig = AugmentConfig()):
        self.size, self.aug = size, aug

    def __getitem__(self, item: tuple[np.ndarray, tuple | None]) -> tuple[torch.Tensor, torch.Tensor]:
        idx, aug_seed = item
        if aug_seed is None:
            return torch.from_numpy(idx), torch.zeros(0, 9)
        draws = [draw(self.size, self.size, photo_rng(aug_seed, j), self.aug) for j in idx]
        return torch.from_numpy(idx), batch_params(draws, self.size, self.size)


def device_batches(images: torch.Tensor, draws) -> Iterator[torch.Tensor]:
    """The batches of `draws` (a loader of BatchDraws) from the whole cache held on the device (uint8
    N x H x W x 3), augmented there: no photos are copied, and nothing waits for the GPU."""
    for idx, params in draws:
        photos = images[idx.to(images.device, non_blocking=True)]
        yield augment_batch(photos, params.to(images.device, non_blocking=True)) if len(params) else photos


def _loader(dataset: Batches | BatchDraws, plan: EpochPlan, workers: int, device: torch.device):
    # persistent workers: started once per run, not once per epoch (a GPU epoch of 180 photos is shorter
    # than starting 8 processes). Its own generator: a loader draws worker seeds when it starts, and a draw
    # from the global RNG (which dropout uses) would make a resumed run differ from one that never stopped.
    return torch.utils.data.DataLoader(dataset, batch_size=None, sampler=plan, num_workers=workers,
                                       persistent_workers=workers > 0, pin_memory=device.type == "cuda",
                                       worker_init_fn=_one_thread_worker, generator=torch.Generator().manual_seed(0))


def predict_logits(model: nn.Module, cache: ImageCache, idx: np.ndarray, spec: PreprocessSpec,
                   device: torch.device = torch.device("cpu"), batch_size: int = 128, mirror: bool = False) -> np.ndarray:
    """Logits of the cached photos at idx (eval mode, no augmentation); mirror: of their mirror images."""
    was_training = model.training
    model.eval()
    out = []
    batches = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
    photos = Batches(cache, spec)
    with torch.inference_mode(), _autocast(device):
        for batch in batches:
            x = to_input(photos[(batch, None)], spec, device)
            out.append(model(x.flip(3) if mirror else x).float().cpu().numpy())
    model.train(was_training)
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def predict(model: nn.Module, cache: ImageCache, idx: np.ndarray, spec: PreprocessSpec, **kw) -> np.ndarray:
    """Predicted labels of the cached photos at idx."""
    logits = predict_logits(model, cache, idx, spec, **kw)
    return logits.argmax(1) if len(logits) else np.zeros(0, np.int64)


def _autocast(device: torch.device):
    """bf16 on CUDA (no loss scaling needed); plain float32 on the CPU, where it stays bit-reproducible."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)


def mix(x: torch.Tensor, cfg, rng: np.random.Generator):
    """Mixup or CutMix of a batch with a shuffled copy of itself: (mixed x, partner order, weight of the original).

    With both set, each batch draws one of the two. None when neither is on."""
    kinds = [k for k in ("mixup", "cutmix") if getattr(cfg, k) > 0]
    if not kinds:
        return None
    kind = kinds[rng.integers(len(kinds))]
    lam = float(rng.beta(getattr(cfg, kind), getattr(cfg, kind)))
    perm = to_device(torch.from_numpy(rng.permutation(len(x))), x.device)
    if kind == "mixup":
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[2:]
    ch, cw = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy, cx = rng.integers(h), rng.integers(w)
    y0, y1, x0, x1 = max(cy - ch // 2, 0), min(cy + ch // 2, h), max(cx - cw // 2, 0), min(cx + cw // 2, w)
    x = x.clone()
    x[:, :, y0:y1, x0:x1] = x[perm, :, y0:y1, x0:x1]
    return x, perm, 1 - (y1 - y0) * (x1 - x0) / (h * w)


class Teacher:
    """One or more trained models whose softened outputs the student learns from, on the student's own
    batches. Several are an ensemble: the mean of their logits, usually a better teacher than any one.

    A teacher may take another input size (the batch is resized for it) and know more breeds (only
    the student's breeds' outputs are used)."""

    def __init__(self, paths: list[Path], classes: list, spec: PreprocessSpec, device: torch.device,
                 compile: bool = False):
        self.members = []  # (model, its input size, the columns of the student's breeds)
        digests = []
        for path in paths:
            ckpt, digest = checkpoint.load_hashed(path)
            model, meta = checkpoint.load_model(path, ckpt)
            digests.append(digest)
            tspec = PreprocessSpec.from_dict(meta["preprocess"], str(path))
            if (tspec.crop, tspec.use_boxes, tspec.mean, tspec.std) != (spec.crop, spec.use_boxes, spec.mean, spec.std):
                raise EdgehoundError(f"{path}: the teacher crops or normalises photos differently from this config "
                                     f"(teacher crop={tspec.crop} boxes={tspec.use_boxes}, student crop={spec.crop} boxes={spec.use_boxes})")
            index = {c["wnid"]: i for i, c in enumerate(meta["classes"])}
            missing = [b.name for b in classes if b.wnid not in index]
            if missing:
                raise EdgehoundError(f"{path}: the teacher does not know {', '.join(missing)}")
            columns = torch.tensor([index[b.wnid] for b in classes], device=device)
            model = model.to(device, memory_format=torch.channels_last).eval()
            self.members.append((_compiled(model) if compile else model, tspec.size, columns))
        # what a resumed run must find again; one teacher keeps its file's own hash, as runs before ensembles did
        self.digest = digests[0] if len(paths) == 1 else hashlib.sha256(" ".join(digests).encode()).hexdigest()
        self.record = {"path": str(paths[0]), "sha256": self.digest} if len(paths) == 1 else {
            "path": f"ensemble of {len(paths)}", "sha256": self.digest,
            "members": [{"path": str(p), "sha256": d} for p, d in zip(paths, digests)]}

    @torch.no_grad()
    def logits(self, x: torch.Tensor) -> torch.Tensor:
        sized = {x.shape[-1]: x}  # the batch resized once per input size, not once per member
        total = 0
        for model, size, columns in self.members:
            if size not in sized:
                sized[size] = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            total = total + model(sized[size]).float()[:, columns]
        return total / len(self.members)


def distill_loss(student: torch.Tensor, teacher: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's soft-target loss: KL(teacher || student) at temperature T, times T^2 so gradients keep their scale."""
    t = temperature
    return F.kl_div(F.log_softmax(student / t, 1), F.log_softmax(teacher / t, 1), reduction="batchmean",
                    log_target=True) * t * t


def class_log_prior(train_labels: np.ndarray, n_classes: int, tau: float) -> torch.Tensor:
    """tau * log(each class's share of the training photos): logit adjustment's offset."""
    if tau == 0:
        return torch.zeros(n_classes)
    share = np.bincount(train_labels, minlength=n_classes) / max(len(train_labels), 1)
    return torch.tensor(tau * np.log(np.maximum(share, 1e-12)), dtype=torch.float32)


def _init_from(model: nn.Module, family: str, path: Path, ckpt: dict, meta: dict, classes: list | None = None) -> int:
    """Copy every tensor of `path`'s model (its loaded `ckpt`, checked `meta`) whose name and shape match
    (a multi-breed backbone under a new pair head). Returns how many were copied."""
    weights = ckpt.get("model")
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise EdgehoundError(f"{path}: not an edgehound model checkpoint (no model weights)")
    if meta.get("ensemble"):
        raise EdgehoundError(f"{path}: is an ensemble of {len(meta['ensemble'])} models; --init from one of its members")
    if meta["config"]["model"].get("family", "vgg") != family:  # names and shapes could match by chance
        raise EdgehoundError(f"{path}: is a {meta['config']['model'].get('family', 'vgg')} model; --init needs the "
                             f"config's family ({family})")
    theirs = [c["wnid"] for c in meta["classes"]]
    if classes and sorted(theirs) == sorted(b.wnid for b in classes) and theirs != [b.wnid for b in classes]:
        raise EdgehoundError(f"{path}: its output rows are {', '.join(c['name'] for c in meta['classes'])}; list "
                             "--breeds in the order of its classes, so that no row starts as the other breed")
    own = model.state_dict()
    matched = {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}
    if not any(v.dim() > 0 for v in matched.values()):  # batch-norm step counters alone do not count
        raise EdgehoundError(f"{path}: no weights fit this config's model (another family or sizes)")
    model.load_state_dict(matched, strict=False)
    return len(matched)


def _prepare_data(cfg: Config, opts: RunOptions, init_meta: dict | None):
    ds = read_dataset(opts.data, opts.breeds, opts.exclude)
    if len(ds.classes) < 2:
        raise EdgehoundError(f"{opts.data}: training needs at least two breeds, got {', '.join(b.name for b in ds.classes)}")
    try:
        spec = PreprocessSpec(size=cfg.model.input_size, crop=cfg.data.crop, use_boxes=cfg.data.use_boxes)
    except ValueError as e:
        raise EdgehoundError(f"config {cfg.name}: {e}") from None
    cache = load_cached(ds.samples, spec, opts.cache_dir, opts.progress)
    split_seed = cfg.train.seed if cfg.data.split_seed < 0 else cfg.data.split_seed
    split_meta = {"data": str(opts.data), "exclude": [str(e) for e in opts.exclude], "seed": split_seed,
                  "test_frac": cfg.data.test_frac, "val_frac": cfg.data.val_frac, "per_class": cfg.data.per_class,
                  "holdout": cfg.data.holdout, "folds": opts.folds, "fold": opts.fold, "photos_digest": photos_digest(ds)}
    wider = _inherited_split_breeds(Path(opts.init), init_meta, split_meta, ds) if init_meta else None
    if wider:
        split_meta["wnids"] = wider
        print(f"split drawn over the {len(wider)} breeds of {opts.init}'s split, so that its training photos stay "
              "out of this run's validation and test parts")
    split = split_parts(ds, split_meta)
    for part in ("train", "val", "test"):  # unreadable photos are skipped everywhere
        setattr(split, part, np.array([i for i in getattr(split, part) if cache.ok[i]], dtype=np.int64))
    if len(split.train) == 0 or len(split.val) == 0:
        raise EdgehoundError(f"{opts.data}: too few readable photos to train ({len(split.train)} train, {len(split.val)} val)")
    return ds, spec, cache, ds.labels(), split, split_meta


def _inherited_split_breeds(init: Path, meta: dict, split_meta: dict, ds) -> list[str] | None:
    """The breeds a fine-tune's split is drawn over: those of the --init model's split when it was drawn
    over more breeds on the same photos with the same settings (a pair head on a multi-breed backbone),
    so that the photos that model trained on are not this run's validation photos. None: draw as usual."""
    theirs = meta.get("split")
    if not theirs:
        return None
    wide = theirs.get("wnids") or [c["wnid"] for c in meta["classes"]]
    mine = [b.wnid for b in ds.classes]
    if set(wide) == set(mine) or not set(mine) <= set(wide) or \
            Path(theirs["data"]).resolve() != Path(split_meta["data"]).resolve():
        return None
    same = ("exclude", "seed", "test_frac", "val_frac", "per_class", "holdout", "folds", "fold")
    differ = [k for k in same if theirs.get(k) != split_meta[k]]
    if differ:
        print(f"note: {init} was split with other {', '.join(differ)}; this run's validation part may hold photos "
              "it trained on")
        return None
    return wide


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
    if saved_split.get("wnids") != split_meta.get("wnids"):
        changed.append("wnids")
    if changed:
        what = {"folds": "--folds", "fold": "--fold", "photos_digest": "the photos (--data, --exclude)",
                "wnids": "the breeds the split is drawn over (--init)"}
        raise EdgehoundError(f"{last_path}: {', '.join(what[k] for k in changed)} differ from the run being resumed "
                             f"(it used --data {saved_split.get('data')}); resume with the same data, or use a new --out")


def _resume(last_path: Path, cfg: Config, ds, split_meta: dict, teacher, model, optimizer, schedule, ema) -> dict:
    """Load a killed run's whole state (refusing another config, data or teacher); returns the loop state."""
    saved = checkpoint.load(last_path)
    if saved.get("config_digest") != cfg.digest():
        raise EdgehoundError(f"{last_path}: was trained with another config; use a new --out or drop --resume")
    saved_meta = checkpoint.read_meta(last_path, saved)
    _check_same_data(last_path, saved_meta, ds, split_meta)
    if saved_meta.get("teacher", {}).get("sha256") != (teacher.digest if teacher else None):
        raise EdgehoundError(f"{last_path}: was trained with another --teacher (or none); resume with the same one")
    try:  # the training state is read from the file as it is: any part missing or malformed is refused
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        schedule.load_state_dict(saved["schedule"])
        if ema is not None:
            ema.load_state_dict(saved["ema"])
        torch.set_rng_state(saved["torch_rng"])
        state = json.loads(saved["state"])
        if not (isinstance(state, dict) and all(isinstance(state.get(k), int) for k in ("epoch", "step"))
                and isinstance(state.get("best_val"), (int, float)) and isinstance(state.get("history"), list)
                and isinstance(state.get("sums"), list) and len(state["sums"]) == 4):
            raise ValueError("the loop's counters are missing or of the wrong type")
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise EdgehoundError(f"{last_path}: its training state cannot be resumed ({reason}); the file is left "
                             "as it is: start again with a new --out") from None
    return state


def _test_reports(model, cache, labels, test, spec, device, names) -> dict:
    """The test part's report, plain and with test-time flip (measured, never used to choose anything)."""
    plain = predict_logits(model, cache, test, spec, device=device)
    flipped = (plain + predict_logits(model, cache, test, spec, device=device, mirror=True)) / 2
    return {"test": classification_report(labels[test], plain.argmax(1), names),
            "test_flip": classification_report(labels[test], flipped.argmax(1), names)}


def train(cfg: Config, opts: RunOptions) -> dict:
    out = Path(opts.out)
    torch.set_num_threads(opts.threads or os.cpu_count() or 1)
    device = pick_device(opts.device)
    init, init_digest = checkpoint.load_hashed(opts.init) if opts.init else (None, None)
    init_meta = checkpoint.read_meta(opts.init, init) if opts.init else None  # split, provenance
    ds, spec, cache, labels, split, split_meta = _prepare_data(cfg, opts, init_meta)  # refusals come before --out is created
    names = [b.name for b in ds.classes]
    t = cfg.train
    if opts.augment_on not in ("workers", "device"):
        raise EdgehoundError(f"--augment-on must be workers or device, got {opts.augment_on!r}")
    workers = opts.workers if opts.workers is not None else (
        min(12, (os.cpu_count() or 3) - 2) if device.type == "cuda" else 0)  # two cores for the loop and the copies
    torch.backends.cudnn.benchmark = device.type == "cuda"  # fixed input sizes: let cuDNN time its kernels once
    teacher = Teacher([Path(p) for p in opts.teacher], ds.classes, spec, device, opts.compile) if opts.teacher else None
    aug = AugmentConfig(crop_scale=tuple(cfg.data.crop_scale))

    torch.manual_seed(t.seed)
    model = build_model(cfg.model, len(ds.classes))
    macs, params = count_macs(model, cfg.model.input_size)  # before any weights move to the device
    last_path, best_path = out / "last.pt", out / "best.pt"
    resuming = opts.resume and last_path.is_file()  # --resume on a run not yet begun starts it, from --init too
    if opts.init and not resuming:
        print(f"{_init_from(model, cfg.model.family, Path(opts.init), init, init_meta, ds.classes)} tensors initialised from {opts.init}")
    model = model.to(device, memory_format=torch.channels_last)  # channels-last: faster convs on CPU and GPU
    # the training step's forward; `model` itself is what is saved, validated and averaged (its parameters are
    # the compiled one's). Compiled, a GPU step launches fewer, fused kernels: eager, a distilled edge step is
    # about 550 operations, and the H200 ran it no faster than the 30x larger ResNet's
    step_model = _compiled(model) if opts.compile else model
    ema = (torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(t.ema),
                                               use_buffers=True) if t.ema else None)
    # fused on CUDA: one kernel for every parameter's update; the CPU keeps the loop its runs were made with
    optimizer = torch.optim.AdamW(model.parameters(), lr=t.lr, weight_decay=t.weight_decay, fused=device.type == "cuda")
    steps_per_epoch = math.ceil(len(split.train) / t.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=t.lr, total_steps=t.epochs * steps_per_epoch,
                                                   pct_start=0.15 if t.schedule == "onecycle" else 1e-9)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=t.label_smoothing)
    log_prior = class_log_prior(labels[split.train], len(ds.classes), t.logit_adjust).to(device)
    state = {"epoch": 0, "step": 0, "best_val": -1.0, "history": [], "sums": [0.0, 0, 0, 0.0]}

    extra_meta = {"teacher": teacher.record} if teacher else {}
    if opts.init:  # where the weights started, and the breeds that model learnt from (a narrowed one's too)
        extra_meta["init"] = {"path": str(opts.init), "sha256": init_digest,
                              "trained_on": [c["name"] for c in (init_meta.get("narrowed_from") or init_meta)["classes"]]}

    if resuming:
        state = _resume(last_path, cfg, ds, split_meta, teacher, model, optimizer, schedule, ema)
        print(f"resuming {out} at epoch {state['epoch'] + 1}, step {state['step']}/{steps_per_epoch}")
    elif not opts.resume and last_path.is_file():
        raise EdgehoundError(f"{out} already holds a run: pass --resume to continue it, or choose another --out")
    out.mkdir(parents=True, exist_ok=True)

    print(f"{cfg.name} ({cfg.model.family}): {params / 1e6:.2f} M params, {macs / 1e9:.3f} GMACs/image; "
          f"classes {', '.join(names)}; train {len(split.train)}, val {len(split.val)}, test {len(split.test)}; "
          f"{device.type}" + (f", {workers} workers" if workers else "")
          + (", photos augmented on the device" if opts.augment_on == "device" else "")
          + (", compiled" if opts.compile else "") + (f", teacher {', '.join(map(str, opts.teacher))}" if teacher else "")
          + (f"; {len(cache.skipped)} unreadable photos skipped" if cache.skipped else ""))

    tally = None  # this epoch's loss sum and correct answers, kept on the device: read back, they stall a GPU

    def read_tally():  # into state["sums"], whose loss sum and correct count were the tally's starting values
        if tally is not None:
            loss_sum, correct = tally.tolist()
            state["sums"][:2] = [loss_sum, int(correct)]

    def save_last():
        read_tally()
        checkpoint.save(last_path, {
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            **({"ema": ema.state_dict()} if ema is not None else {}),
            "torch_rng": torch.get_rng_state(), "state": json.dumps(state), "config_digest": cfg.digest(),
            "meta": checkpoint.model_meta(cfg, ds.classes, spec, split=split_meta, **extra_meta),
        })

    def scored():  # the weights that are validated and shipped: the moving average when there is one
        return ema.module if ema is not None else model

    plan = EpochPlan()
    if opts.augment_on == "device":  # the whole cache on the device (6,992 photos at 160 px: 537 MB)
        images = torch.from_numpy(np.array(cache.images)).to(device)
        draws = _loader(BatchDraws(spec.size, aug), plan, workers, device)
        photo_batches = lambda: device_batches(images, draws)  # noqa: E731
    else:
        loader = _loader(Batches(cache, spec, aug), plan, workers, device)
        photo_batches = lambda: loader  # noqa: E731
    last_save = time.monotonic()
    model.train()
    while state["epoch"] < t.epochs:
        epoch = state["epoch"]
        order = np.random.default_rng([t.seed, epoch]).permutation(split.train)
        batches = [order[i * t.batch_size:(i + 1) * t.batch_size] for i in range(state["step"], steps_per_epoch)]
        plan.items = [(b, (t.seed, epoch) if cfg.data.augment else None) for b in batches]
        bar = tqdm(total=steps_per_epoch, initial=state["step"], desc=f"epoch {epoch + 1}/{t.epochs}",
                   unit="batch", disable=not opts.progress, leave=False)
        s = state["sums"]  # loss sum, correct, seen, seconds
        tally = torch.tensor(s[:2], dtype=torch.float64, device=device)
        t0 = time.monotonic()
        for idx, x in zip(batches, photo_batches()):
            # time blocked on the loader (augmentation, copies), not computing: where a GPU's epochs go
            state["waited"] = state.get("waited", 0.0) + time.monotonic() - t0
            x = to_input(x, spec, device)
            y = to_device(torch.from_numpy(labels[idx]), device)
            mixed = mix(x, t, np.random.default_rng([t.seed, epoch, state["step"], 1]))
            if mixed is not None:
                x, partner, lam = mixed
            with _autocast(device):
                logits = step_model(x).float()
                fit = logits + log_prior  # what the loss sees: logit adjustment (zeros when off)
                loss = loss_fn(fit, y) if mixed is None else lam * loss_fn(fit, y) + (1 - lam) * loss_fn(fit, y[partner])
                if teacher is not None:  # the teacher knows the training part's odds, as the adjusted logits do
                    w = t.distill_weight
                    loss = w * distill_loss(fit, teacher.logits(x), t.distill_temperature) + (1 - w) * loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            if ema is not None:
                ema.update_parameters(model)
            tally += torch.stack([loss.detach().double() * len(idx), (logits.argmax(1) == y).sum().double()])
            s[2] += len(idx)
            state["step"] += 1
            now = time.monotonic()
            s[3] += now - t0
            t0 = now
            bar.update(1)
            if not bar.disable:  # without a bar, nothing is read back mid-epoch
                read_tally()
                bar.set_postfix(loss=f"{s[0] / s[2]:.3f}", acc=f"{s[1] / s[2]:.3f}", img_s=f"{s[2] / max(s[3], 1e-9):.1f}")
            due = state["step"] % opts.save_every == 0 if opts.save_every else now - last_save > SAVE_INTERVAL_S
            if due and state["step"] < steps_per_epoch:
                save_last()
                last_save = time.monotonic()
        bar.close()
        read_tally()  # waits for the GPU's last queued steps: they belong to this epoch's time
        s[3] += time.monotonic() - t0
        tally = None

        val_pred = predict(scored(), cache, split.val, spec, device=device)
        val_acc = float((val_pred == labels[split.val]).mean())
        s = state["sums"]
        row = {"epoch": epoch + 1, "train_loss": s[0] / s[2], "train_acc": s[1] / s[2], "val_acc": val_acc,
               "lr": schedule.get_last_lr()[0], "seconds": s[3], "images_per_s": s[2] / max(s[3], 1e-9),
               "waiting_s": state.get("waited", 0.0)}
        state["history"].append(row)
        print(f"epoch {epoch + 1}/{t.epochs}: loss {row['train_loss']:.4f}, train acc {row['train_acc']:.3f}, "
              f"val acc {val_acc:.3f}, {row['seconds']:.1f} s, {row['images_per_s']:.1f} img/s, "
              f"{row['waiting_s'] / max(row['seconds'], 1e-9):.0%} waiting for photos", flush=True)
        if (val_acc > state["best_val"]) if t.keep == "best" else (epoch + 1 == t.epochs):
            state["best_val"] = val_acc
            weights = {k: v.cpu() for k, v in scored().state_dict().items()}  # loads on a CPU-only machine
            checkpoint.save(best_path, {"model": weights,
                                        "meta": checkpoint.model_meta(cfg, ds.classes, spec, split=split_meta,
                                                                      epoch=epoch + 1, val_acc=val_acc, **extra_meta)})
        state.update(epoch=epoch + 1, step=0, sums=[0.0, 0, 0, 0.0], waited=0.0)
        # a ResNet's whole state is 134 MB (0.5 s to write): a GPU epoch of a second must not save each time
        if opts.save_every or state["epoch"] == t.epochs or time.monotonic() - last_save > SAVE_INTERVAL_S:
            save_last()
            last_save = time.monotonic()
        atomic_write_text(out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in state["history"]))

    trained_s = sum(r["seconds"] for r in state["history"])
    best, _ = checkpoint.load_model(best_path)
    best = best.to(device, memory_format=torch.channels_last)
    summary = {
        "config": cfg.to_dict(), "data": str(opts.data), "layout": ds.layout,
        **({"test": None, "test_flip": None, "test_sealed": True} if opts.seal_test
           else _test_reports(best, cache, labels, split.test, spec, device, names)),
        "best_val_acc": state["best_val"], "split": {k: len(getattr(split, k)) for k in ("train", "val", "test")},
        "skipped": cache.skipped, "params": params, "macs": macs, "device": device.type, "workers": workers,
        "compiled": opts.compile, "augment_on": opts.augment_on,
        "teacher": extra_meta.get("teacher"), "init": extra_meta.get("init"),
        "seconds_per_epoch": float(np.mean([r["seconds"] for r in state["history"]])),
        "images_per_s": float(np.mean([r["images_per_s"] for r in state["history"]])),
        "total_train_seconds": float(trained_s),
        "waiting_share": float(sum(r.get("waiting_s", 0.0) for r in state["history"]) / max(trained_s, 1e-9)),
    }
    atomic_write_json(out / "summary.json", summary)
    return summary
