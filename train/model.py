"""The seed CNN, built from a ModelConfig so every lever (depth, width, kernel, batch-norm,
dropout, global pooling) is a setting, and its MAC/parameter count."""

from __future__ import annotations

import torch
from torch import nn

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
