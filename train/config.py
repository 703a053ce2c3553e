"""Run configuration: model sizes, data levers and training settings, read from TOML.

Configs live in train/configs/*.toml (`seed.toml` is the course project's model). Any value can be
overridden on the command line: `--set model.batch_norm=true --set train.epochs=5`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from edgehound.runtime.datasets import HOLDOUTS
from edgehound.runtime.errors import EdgehoundError
from edgehound.runtime.preprocess import CROPS
from edgehound.util import tomllib

CONFIG_DIR = Path(__file__).with_name("configs")


@dataclass(frozen=True)
class ModelConfig:
    family: str = "vgg"  # a key of train/model.py FAMILIES: "vgg" (the seed's), "resnet", "mobilenet"
    input_size: int = 300
    conv_channels: tuple[int, ...] = (32, 64, 128, 128, 256)  # one conv block each: conv, act, 2x2 max-pool
    kernel_size: int = 3
    separable: bool = False  # depthwise-separable convs after the first block (the efficient family)
    batch_norm: bool = False
    conv_dropout: float = 0.0  # Dropout2d after each conv block
    fc_widths: tuple[int, ...] = (512,)  # hidden fully connected blocks; the output layer is the last block
    fc_dropout: float = 0.0
    global_pool: bool = False  # global average pooling instead of flattening the last feature map
    # resnet / mobilenet: conv_channels are the stage widths, after a stride-2 stem conv
    stem_channels: int = 32
    blocks: tuple[int, ...] = ()  # residual blocks per stage (one entry per conv_channels entry)
    expand: int = 4  # mobilenet: inverted-residual expansion ratio
    se: bool = False  # mobilenet: squeeze-excite in each block


@dataclass(frozen=True)
class DataConfig:
    use_boxes: bool = False  # crop to the dog's bounding box where the dataset has one
    crop: str = "none"  # fallback without a box: "center" square or "none" (whole photo)
    augment: bool = False
    per_class: int = 0  # cap on training photos per breed; 0 = all
    test_frac: float = 0.5
    val_frac: float = 0.1
    holdout: str = "seeded"  # "seeded": the study's test part; "fixed": shipped models' (hash of each photo)
    # seed of the photos' draw into train/val(/test); -1: train.seed. Fix it to compare training seeds on
    # the same validation photos (and, for a pair head, on those of its --init model's split).
    split_seed: int = -1
    crop_scale: tuple[float, ...] = ()  # with augment: random-resized crop of this area range, e.g. [0.25, 1.0]


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 15
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    seed: int = 0
    schedule: str = "onecycle"  # "onecycle" (warm-up 15%, cosine down) or "cosine" (no warm-up)
    mixup: float = 0.0  # Beta(a, a) mixing of photo pairs; 0: off
    cutmix: float = 0.0  # Beta(a, a) box pasted from another photo; 0: off (with mixup: one of the two per batch)
    ema: float = 0.0  # exponential moving average of the weights (e.g. 0.999), validated and saved; 0: off
    # logit adjustment (Menon et al. 2021): the loss sees logits + tau * log(each breed's share of the
    # training part), so the model's own logits answer as if the breeds were equally common (the hard
    # pair has 580 foxhounds to 932 beagles); 0: off, 1: the paper's default
    logit_adjust: float = 0.0
    distill_temperature: float = 4.0  # with --teacher: softening of both outputs
    distill_weight: float = 0.7  # with --teacher: share of the loss that follows the teacher
    # which epoch best.pt holds: "best" (highest validation accuracy) or "last" (the end of the schedule;
    # for long schedules, where a max over many noisy validation scores picks luck)
    keep: str = "best"


@dataclass(frozen=True)
class Config:
    name: str = "seed"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    def digest(self) -> str:
        """Hash of everything that changes the trained weights (checked when a run resumes). Settings at
        their defaults are left out, so a setting added later, off by default, keeps old runs resumable."""
        changed = {"name": self.name}
        for key in ("model", "data", "train"):
            section = getattr(self, key)
            default = type(section)()
            changed[key] = {f.name: getattr(section, f.name) for f in fields(section)
                                               if getattr(section, f.name) != getattr(default, f.name)}
        return hashlib.sha256(json.dumps(changed, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, d: dict) -> "Config":
        sections = {"model": ModelConfig, "data": DataConfig, "train": TrainConfig}
        stray = set(d) - {"name", *sections}  # a misspelt [trian] or --set trian.epochs=5 would be ignored
        if stray:
            raise EdgehoundError(f"unknown section(s) {', '.join(sorted(map(str, stray)))}: a config has "
                                 "[model], [data] and [train]")
        for key in sections:
            if not isinstance(d.get(key, {}), dict):
                raise EdgehoundError(f"[{key}] must be a table of settings, not {d[key]!r}")
        kwargs = {"name": d.get("name", "custom")}
        for key, section in sections.items():
            values = d.get(key, {})
            known = {f.name: f for f in fields(section)}
            unknown = set(values) - set(known)
            if unknown:
                raise EdgehoundError(f"unknown setting(s) in [{key}]: {', '.join(sorted(unknown))}")
            for name, value in values.items():
                problem = _problem(name, value, known[name].default)
                if problem:
                    raise EdgehoundError(f"setting {key}.{name} = {value!r}: {problem}")
            kwargs[key] = section(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        return cls(**kwargs)


# Values a setting may take, checked when a config is read (a file, --set, a checkpoint's record), so
# a bad one is refused before any photo is decoded, not deep inside PyTorch mid-run.
CHOICES = {"crop": CROPS, "holdout": HOLDOUTS, "schedule": ("onecycle", "cosine"),
           "keep": ("best", "last")}
AT_LEAST_ONE = {"input_size", "kernel_size", "stem_channels", "expand", "epochs", "batch_size", "conv_channels",
                "fc_widths"}
BELOW_ONE = {"conv_dropout", "fc_dropout", "test_frac", "val_frac", "label_smoothing", "ema", "distill_weight"}
MAY_BE_NEGATIVE = {"seed", "split_seed"}


def _problem(name: str, value, default) -> str | None:
    """Why `value` cannot be setting `name` (whose default is `default`), or None."""
    if not _fits(value, default):
        return f"expected {type(default).__name__}, like its default {default!r}"
    if name in CHOICES and value not in CHOICES[name]:
        return f"expected one of {', '.join(CHOICES[name])}"
    numbers = list(value) if isinstance(value, (list, tuple)) else [value] if isinstance(value, (int, float)) else []
    if name in AT_LEAST_ONE and any(v < 1 for v in numbers):
        return "expected 1 or more"
    if name in BELOW_ONE and not all(0 <= v < 1 for v in numbers):
        return "expected a fraction from 0 up to (not including) 1"
    if name == "lr" and value <= 0:
        return "expected more than 0"
    if name not in MAY_BE_NEGATIVE and any(v < 0 for v in numbers):
        return "expected 0 or more"
    return None


def _fits(value, default) -> bool:
    """A setting's value has its default's type (an int passes for a float; a list for a tuple)."""
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, tuple):
        return isinstance(value, (list, tuple)) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                        for v in value)
    return isinstance(value, type(default))


def load_config(name_or_path: str = "seed", overrides: list[str] = ()) -> Config:
    """A config by name (train/configs/NAME.toml) or path, with `section.key=value` overrides."""
    path = Path(name_or_path)
    if not path.is_file():
        path = CONFIG_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml")))
        raise EdgehoundError(f"config {name_or_path!r} not found (a .toml path, or one of: {known})")
    try:
        d = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise EdgehoundError(f"{path}: {e}") from None
    d.setdefault("name", path.stem)
    for item in overrides:
        key, sep, value = item.partition("=")
        section, _, name = key.strip().partition(".")
        if not sep or not name:
            raise EdgehoundError(f"--set {item!r}: expected section.key=value, e.g. model.batch_norm=true")
        try:
            parsed = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            parsed = value.strip()  # a bare word, e.g. data.crop=center
        d.setdefault(section, {})[name] = parsed
    return Config.from_dict(d)


def with_seed(cfg: Config, seed: int) -> Config:
    return replace(cfg, train=replace(cfg.train, seed=seed))


def model_configs() -> dict[str, Config]:
    """Every named model config in train/configs (the study plan, which is not one, left out)."""
    configs = {}
    for path in sorted(CONFIG_DIR.glob("*.toml")):
        d = tomllib.loads(path.read_text())
        if "model" in d:
            configs[path.stem] = load_config(str(path))
    return configs
