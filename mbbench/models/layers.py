"""Building blocks shared by MobileViT v1 and v2, laid out like Apple's ml-cvnets.

Module names (``block.conv``, ``block.norm``, ``block.exp_1x1`` ...) are part of the contract: they make up the
``state_dict`` keys of the official checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbbench.models.facts import FOLD_FORMS


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


class PatchFolding(nn.Module):
    """The patch unfold/fold of MobileViT v1 and v2 in its exactly equal forms (:data:`FOLD_FORMS`), chosen by
    ``fold_impl`` and named by the ONNX graph each produces.

    :meth:`unfold_patches` takes (B, C, H, W), H and W multiples of the patch, to (B, C, P, N): P pixels per patch
    (row-major in the patch), N patches (row-major); :meth:`fold_patches` is its inverse. ``col2im`` and ``pixel``
    unfold with a strided depthwise convolution whose kernel is one-hot (exact: each output is one input times 1
    plus zeros); ``unfold`` uses ``F.unfold`` (ONNX: Gathers); ``reshape`` a 6-D reshape/transpose. ``col2im`` and
    ``unfold`` fold with ``F.fold`` (ONNX ``Col2Im``, opset >= 18), ``pixel`` with ``pixel_shuffle``
    (``DepthToSpace``), ``reshape`` with the 6-D transpose back.
    """

    def _init_folding(self, channels: int, patch: int, fold_impl: str) -> None:
        self.patch = patch
        self.fold_impl = fold_impl
        # Output channel c*P + (i*p + j) picks pixel (i, j) of channel c's patch. Not persistent, so the state_dict
        # stays that of the official checkpoints.
        area = patch * patch
        kernel = torch.zeros(channels * area, area)
        kernel[torch.arange(channels * area), torch.arange(channels * area) % area] = 1.0
        self.register_buffer("unfold_kernel", kernel.reshape(channels * area, 1, patch, patch), persistent=False)

    @property
    def fold_impl(self) -> str:
        return self._fold_impl

    @fold_impl.setter
    def fold_impl(self, value: str) -> None:
        if value not in FOLD_FORMS:
            raise ValueError(f"fold_impl must be one of {', '.join(FOLD_FORMS)}, not {value!r}")
        self._fold_impl = value

    def unfold_patches(self, fm: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, P, N)."""
        batch, channels, height, width = fm.shape
        p = self.patch
        if self._fold_impl == "unfold":
            return F.unfold(fm, kernel_size=p, stride=p).reshape(batch, channels, p * p, -1)
        n_h, n_w = height // p, width // p
        if self._fold_impl in ("col2im", "pixel"):
            picked = F.conv2d(fm, self.unfold_kernel, stride=p, groups=channels)
            return picked.reshape(batch, channels, p * p, n_h * n_w)
        x = fm.reshape(batch, channels, n_h, p, n_w, p).permute(0, 1, 3, 5, 2, 4)
        return x.reshape(batch, channels, p * p, n_h * n_w)

    def fold_patches(self, patches: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """(B, C, P, N) -> (B, C, H, W) for a map of ``size`` (H, W): the inverse of :meth:`unfold_patches`."""
        batch, channels, area, n_patches = patches.shape
        p = self.patch
        if self._fold_impl in ("col2im", "unfold"):
            return F.fold(patches.reshape(batch, channels * area, n_patches), size, kernel_size=p, stride=p)
        n_h, n_w = size[0] // p, size[1] // p
        if self._fold_impl == "pixel":
            return F.pixel_shuffle(patches.reshape(batch, channels * area, n_h, n_w), p)
        x = patches.reshape(batch, channels, p, p, n_h, n_w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(batch, channels, n_h * p, n_w * p)
