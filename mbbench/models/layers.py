"""Building blocks shared by MobileViT v1 and v2, laid out like Apple's ml-cvnets.

Module names (``block.conv``, ``block.norm``, ``block.exp_1x1`` ...) are part of the contract: they make up the
``state_dict`` keys of the official checkpoints.
"""

from __future__ import annotations

import torch
from torch import nn


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round ``value`` to a multiple of ``divisor`` the way MobileNetV2 and cvnets do.

    Never goes below ``min_value`` (default ``divisor``) and never rounds down by more than 10%.
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


class ConvLayer(nn.Module):
    """Conv2d [+ BatchNorm2d] [+ SiLU] held in ``self.block`` as ``conv`` / ``norm`` / ``act``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        bias: bool = False,
        use_norm: bool = True,
        use_act: bool = True,
    ) -> None:
        super().__init__()
        self.block = nn.Sequential()
        self.block.add_module(
            "conv",
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=(kernel_size - 1) // 2,
                groups=groups,
                bias=bias,
            ),
        )
        if use_norm:
            self.block.add_module("norm", nn.BatchNorm2d(out_channels))
        if use_act:
            self.block.add_module("act", nn.SiLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand] -> 3x3 depthwise -> 1x1 project, residual when shapes allow."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, expand_ratio: float) -> None:
        super().__init__()
        hidden = make_divisible(int(round(in_channels * expand_ratio)), 8)
        self.block = nn.Sequential()
        if expand_ratio != 1:
            self.block.add_module("exp_1x1", ConvLayer(in_channels, hidden, 1))
        self.block.add_module("conv_3x3", ConvLayer(hidden, hidden, 3, stride=stride, groups=hidden))
        self.block.add_module("red_1x1", ConvLayer(hidden, out_channels, 1, use_act=False))
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class GlobalPool(nn.Module):
    """Global average pool to (B, C), the first step of the cvnets classifier head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class CvnetsClassifier(nn.Module):
    """The cvnets classification skeleton: ``conv_1``, ``layer_1``..``layer_5``, ``conv_1x1_exp``, ``classifier``.

    Subclasses build those modules; the forward pass is the same for MobileViT v1 and v2.
    """

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv_1(x)
        for index in range(1, 6):
            x = getattr(self, f"layer_{index}")(x)
        return self.conv_1x1_exp(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))
