"""The model families, each built from a ModelConfig, and their MAC/parameter count.

- "vgg": the seed CNN, every lever (depth, width, kernel, batch-norm, dropout, global pooling) a
  setting; `separable` makes it the first efficient model.
- "resnet": ResNet-18 style basic blocks (teachers).
- "mobilenet": MobileNetV2 style inverted residuals, optional squeeze-excite (edge models).
- Ensemble: several models of one config as one, answering with the mean of their logits
  (`edgehound ensemble`); it exports like any model.

Each has `.features` (ending with a ReLU: Grad-CAM explains it) and `.classifier`. Named configs
(train/configs/*.toml) pick a family and its sizes; `edgehound models` lists them.
"""

from __future__ import annotations

import torch
from torch import nn

from edgehound.runtime.errors import EdgehoundError
from edgehound.train.config import ModelConfig


class DogCNN(nn.Module):
    """N conv blocks (conv, [batch-norm], ReLU, 2x2 max-pool, [dropout]) then fully connected blocks.

    With `separable`, every block after the first is a depthwise-separable conv (MobileNet style).
    """

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        blocks, c_in, side = [], 3, cfg.input_size
        k, bias = cfg.kernel_size, not cfg.batch_norm
        for i, c_out in enumerate(cfg.conv_channels):
            if cfg.separable and i > 0:  # depthwise k x k, then pointwise 1 x 1: ~k*k times fewer MACs
                blocks += [nn.Conv2d(c_in, c_in, k, padding=k // 2, groups=c_in, bias=bias)]
                blocks += [nn.BatchNorm2d(c_in)] if cfg.batch_norm else []
                blocks += [nn.ReLU(inplace=True), nn.Conv2d(c_in, c_out, 1, bias=bias)]
            else:
                blocks += [nn.Conv2d(c_in, c_out, k, padding=k // 2, bias=bias)]
            blocks += [nn.BatchNorm2d(c_out)] if cfg.batch_norm else []
            blocks += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            blocks += [nn.Dropout2d(cfg.conv_dropout)] if cfg.conv_dropout else []
            c_in, side = c_out, side // 2
        if side < 1:
            raise ValueError(f"input_size {cfg.input_size} is too small for {len(cfg.conv_channels)} pooling blocks")
        self.features = nn.Sequential(*blocks)

        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1)] if cfg.global_pool else []
        head.append(nn.Flatten())
        width = c_in if cfg.global_pool else c_in * side * side
        for hidden in cfg.fc_widths:
            head += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
            head += [nn.Dropout(cfg.fc_dropout)] if cfg.fc_dropout else []
            width = hidden
        head.append(nn.Linear(width, num_classes))
        self.classifier = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn(c_in: int, c_out: int, k: int = 3, stride: int = 1, groups: int = 1, relu: bool = True) -> list[nn.Module]:
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    return layers + [nn.ReLU(inplace=True)] if relu else layers


class BasicBlock(nn.Module):
    """Two 3x3 convs and a shortcut (1x1 stride-s conv where the shape changes), ReLU after the add."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, 3, stride), *_conv_bn(c_out, c_out, 3, relu=False))
        self.shortcut = (nn.Sequential(*_conv_bn(c_in, c_out, 1, stride, relu=False))
                         if stride != 1 or c_in != c_out else nn.Identity())
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class SqueezeExcite(nn.Module):
    """Channel weights from the globally pooled map (ReLU, then sigmoid: both run on Ethos-U and in int8)."""

    def __init__(self, channels: int, reduce: int = 4):
        super().__init__()
        hidden = max(8, channels // reduce)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(channels, hidden, 1), nn.ReLU(inplace=True),
                                  nn.Conv2d(hidden, channels, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.gate(x)


class InvertedResidual(nn.Module):
    """1x1 expand, 3x3 depthwise (stride s), [squeeze-excite], 1x1 linear projection; add when shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int, se: bool):
        super().__init__()
        hidden = c_in * expand
        layers = _conv_bn(c_in, hidden, 1) if expand != 1 else []
        layers += _conv_bn(hidden, hidden, 3, stride, groups=hidden)
        layers += [SqueezeExcite(hidden)] if se else []
        layers += _conv_bn(hidden, c_out, 1, relu=False)
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        return x + self.body(x) if self.residual else self.body(x)


def _head(width: int, cfg: ModelConfig, num_classes: int) -> nn.Sequential:
    """Global average pool, the hidden fully connected blocks, the output layer."""
    head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    for hidden in cfg.fc_widths:
        head += [nn.Linear(width, hidden), nn.ReLU(inplace=True)]
        width = hidden
    head += [nn.Dropout(cfg.fc_dropout)] if cfg.fc_dropout else []
    return nn.Sequential(*head, nn.Linear(width, num_classes))


def _check_stages(cfg: ModelConfig) -> None:
    if len(cfg.blocks) != len(cfg.conv_channels):
        raise ValueError(f"model.blocks {list(cfg.blocks)} needs one count per stage of conv_channels {list(cfg.conv_channels)}")


class ResNet(nn.Module):
    """ResNet-18 style: 7x7 stride-2 stem and 3x3 max-pool, then stages of basic blocks (stride 2 from the
    second stage on). conv_channels (64, 128, 256, 512) with blocks (2, 2, 2, 2) is ResNet-18."""

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        _check_stages(cfg)
        layers = [*_conv_bn(3, cfg.stem_channels, 7, 2), nn.MaxPool2d(3, 2, 1)]
        c_in = cfg.stem_channels
        for i, (c_out, n) in enumerate(zip(cfg.conv_channels, cfg.blocks)):
            for j in range(n):
                layers.append(BasicBlock(c_in, c_out, 2 if i > 0 and j == 0 else 1))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.classifier = _head(c_in, cfg, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class MobileNet(nn.Module):
    """MobileNetV2 style: 3x3 stride-2 stem, stages of inverted residuals (each stage starts with stride 2),
    a 1x1 conv to 4x the last width, global pooling and the head."""

    def __init__(self, cfg: ModelConfig, num_classes: int):
        super().__init__()
        _check_stages(cfg)
        layers = _conv_bn(3, cfg.stem_channels, 3, 2)
        c_in = cfg.stem_channels
        for c_out, n in zip(cfg.conv_channels, cfg.blocks):
            for j in range(n):
                layers.append(InvertedResidual(c_in, c_out, 2 if j == 0 else 1, cfg.expand, cfg.se))
                c_in = c_out
        layers += _conv_bn(c_in, 4 * c_in, 1)
        self.features = nn.Sequential(*layers)
        self.classifier = _head(4 * c_in, cfg, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x))


class Ensemble(nn.Module):
    """Models of one config run side by side on the same photo; the answer is the mean of their logits, what
    `evaluate --ensemble` scores and `train --teacher A B` distils from. One graph, so every export format
    takes it whole; written as adds and one multiply (no reduction op), which every int8 and NPU path supports."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x):
        total = self.members[0](x)
        for member in self.members[1:]:
            total = total + member(x)
        return total * (1.0 / len(self.members))


FAMILIES = {"vgg": DogCNN, "resnet": ResNet, "mobilenet": MobileNet}


def takes_any_size(cfg: ModelConfig) -> bool:
    """Whether the model answers at input sizes other than the one it trained at: every family pools globally
    before its classifier, except a vgg stack without global_pool, which flattens a feature map of one size."""
    return cfg.family != "vgg" or cfg.global_pool


def build_model(cfg: ModelConfig, num_classes: int) -> nn.Module:
    if cfg.family not in FAMILIES:
        raise EdgehoundError(f"model.family {cfg.family!r} is not one of {', '.join(FAMILIES)}")
    try:
        return FAMILIES[cfg.family](cfg, num_classes)
    except ValueError as e:  # sizes that do not fit together
        raise EdgehoundError(f"config: {e}") from None


def count_macs(model: nn.Module, input_size: int) -> tuple[int, int]:
    """(multiply-accumulates, parameters) of one forward pass on a 3 x size x size image."""
    macs = 0

    def hook(module, inputs, output):
        nonlocal macs
        if isinstance(module, nn.Conv2d):
            per_out = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            macs += output.numel() * per_out
        elif isinstance(module, nn.Linear):
            macs += output.numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, input_size, input_size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return macs, sum(p.numel() for p in model.parameters())


def model_table(input_size: int | None = None, num_classes: int = 2) -> list[dict]:
    """One row per named config: family, input size, parameters and MACs (at `input_size` when given)."""
    from dataclasses import replace

    from edgehound.train.config import model_configs

    rows = []
    for name, cfg in model_configs().items():
        mcfg = replace(cfg.model, input_size=input_size) if input_size else cfg.model
        macs, params = count_macs(build_model(mcfg, num_classes), mcfg.input_size)
        rows.append({"name": name, "family": mcfg.family, "input_size": mcfg.input_size, "params": params, "macs": macs})
    return rows


def training_speed(cfg: ModelConfig, num_classes: int = 2, batch: int = 32, steps: int = 3,
                   channels_last: bool = True) -> float:
    """Photos per second of full training steps (forward, backward, AdamW) on random input, on this CPU,
    after one untimed step: what `edgehound models --speed` prints."""
    import time

    model = build_model(cfg, num_classes)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    optimizer = torch.optim.AdamW(model.parameters())
    x = torch.randn(batch, 3, cfg.input_size, cfg.input_size).to(memory_format=fmt)
    y = torch.randint(0, num_classes, (batch,))
    for i in range(steps + 1):
        if i == 1:
            t0 = time.perf_counter()
        loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return batch * steps / (time.perf_counter() - t0)
