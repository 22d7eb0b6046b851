"""MobileOne (Vasu et al., CVPR 2023), s0-s4, with structural re-parameterization.

Matches apple/ml-mobileone: the same module names (so official ``*_unfused.pth.tar`` and fused ``*.pth.tar``
checkpoints load with ``strict=True``) and the same function. Each :class:`MobileOneBlock` owns its branches
and folds them into one ``reparam_conv`` in :meth:`MobileOneBlock.reparameterize`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbbench.models.registry import register_family

# Variant configs as data: stage 1-4 width multipliers, conv branches per block (k), squeeze-excite.
MOBILEONE_VARIANTS: dict[str, dict] = {
    "s0": {"width_multipliers": (0.75, 1.0, 1.0, 2.0), "num_conv_branches": 4, "use_se": False},
    "s1": {"width_multipliers": (1.5, 1.5, 2.0, 2.5), "num_conv_branches": 1, "use_se": False},
    "s2": {"width_multipliers": (1.5, 2.0, 2.5, 4.0), "num_conv_branches": 1, "use_se": False},
    "s3": {"width_multipliers": (2.0, 2.5, 3.0, 4.0), "num_conv_branches": 1, "use_se": False},
    "s4": {"width_multipliers": (3.0, 3.5, 3.5, 4.0), "num_conv_branches": 1, "use_se": True},
}
STAGE_PAIRS = (2, 8, 10, 1)


class SEBlock(nn.Module):
    """Squeeze-excite with a 1x1-conv bottleneck of ``int(C * rd_ratio)`` channels."""

    def __init__(self, channels: int, rd_ratio: float = 0.0625) -> None:
        super().__init__()
        hidden = int(channels * rd_ratio)
        self.reduce = nn.Conv2d(channels, hidden, 1, bias=True)
        self.expand = nn.Conv2d(hidden, channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3), keepdim=True)
        scale = torch.sigmoid(self.expand(F.relu(self.reduce(scale))))
        return x * scale


def _conv_bn(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    branch = nn.Sequential()
    branch.add_module(
        "conv",
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=False),
    )
    branch.add_module("bn", nn.BatchNorm2d(out_channels))
    return branch


def _fold_bn(kernel: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    """Fold eval-mode BatchNorm into the preceding bias-free conv: ``W*g/s`` and ``b - m*g/s``."""
    std = (bn.running_var + bn.eps).sqrt()
    scale = bn.weight / std
    return kernel * scale.reshape(-1, 1, 1, 1), bn.bias - bn.running_mean * scale


def _identity_kernel(channels: int, groups: int, kernel_size: int, like: torch.Tensor) -> torch.Tensor:
    """The kxk (grouped) conv kernel that returns its input: a 1 at the centre tap of each channel's own slice."""
    per_group = channels // groups
    kernel = torch.zeros(channels, per_group, kernel_size, kernel_size, dtype=like.dtype, device=like.device)
    index = torch.arange(channels, device=like.device)
    kernel[index, index % per_group, kernel_size // 2, kernel_size // 2] = 1.0
    return kernel


def _conv_with(kernel: torch.Tensor, bias: torch.Tensor, stride: int, groups: int) -> nn.Conv2d:
    """A conv with bias holding ``kernel`` and ``bias`` (padding keeps the size at stride 1)."""
    out_channels, per_group, size, _ = kernel.shape
    conv = nn.Conv2d(per_group * groups, out_channels, size, stride, size // 2, groups=groups, bias=True)
    conv = conv.to(device=kernel.device, dtype=kernel.dtype)
    with torch.no_grad():
        conv.weight.copy_(kernel)
        conv.bias.copy_(bias)
    return conv


class MobileOneBlock(nn.Module):
    """k 'kxk conv+BN' branches, a 1x1 'scale' branch and a BN-only skip, summed, then activation(SE(sum)).

    After :meth:`reparameterize` the block is a single ``reparam_conv`` (bias=True); SE and the activation stay.
    ``activation`` defaults to ReLU (MobileOne); FastViT passes GELU or none, drops the scale branch
    (``use_scale_branch=False``) or every conv branch (``num_conv_branches=0``: RepMixer's BN-only ``norm``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        num_conv_branches: int = 1,
        use_se: bool = False,
        inference_mode: bool = False,
        *,
        activation: nn.Module | None = None,
        use_scale_branch: bool = True,
    ) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.stride = stride
        self.groups = groups
        self.num_conv_branches = num_conv_branches
        # Registration order fixes the state_dict key order: se, then skip/conv/scale (as upstream).
        self.se = SEBlock(out_channels) if use_se else nn.Identity()
        self.activation = nn.ReLU() if activation is None else activation
        if inference_mode:
            self.reparam_conv = self._fused_conv()
        else:
            self.rbr_skip = nn.BatchNorm2d(in_channels) if in_channels == out_channels and stride == 1 else None
            self.rbr_conv = nn.ModuleList(
                _conv_bn(in_channels, out_channels, kernel_size, stride, groups) for _ in range(num_conv_branches)
            )
            with_scale = kernel_size > 1 and use_scale_branch
            self.rbr_scale = _conv_bn(in_channels, out_channels, 1, stride, groups) if with_scale else None

    @property
    def inference_mode(self) -> bool:
        return hasattr(self, "reparam_conv")

    def _fused_conv(self) -> nn.Conv2d:
        return nn.Conv2d(
            self.in_channels,
            self.out_channels,
            self.kernel_size,
            self.stride,
            self.kernel_size // 2,
            groups=self.groups,
            bias=True,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inference_mode:
            return self.activation(self.se(self.reparam_conv(x)))
        return self.activation(self.se(self.branch_sum(x)))

    def branch_sum(self, x: torch.Tensor) -> torch.Tensor:
        """The summed branches, before squeeze-excite and activation (training form only)."""
        branches = [*self.rbr_conv, self.rbr_scale, self.rbr_skip]
        outputs = [branch(x) for branch in branches if branch is not None]
        out = outputs[0]
        for other in outputs[1:]:
            out = out + other
        return out

    def fused_kernel_bias(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The single kxk kernel and bias equal to the sum of all branches in eval mode."""
        if self.inference_mode:
            return self.reparam_conv.weight, self.reparam_conv.bias
        reference = next(self.parameters())
        per_group = self.in_channels // self.groups
        shape = (self.out_channels, per_group, self.kernel_size, self.kernel_size)
        kernel = torch.zeros(shape, dtype=reference.dtype, device=reference.device)
        bias = torch.zeros(self.out_channels, dtype=reference.dtype, device=reference.device)
        for branch in self.rbr_conv:
            k, b = _fold_bn(branch.conv.weight, branch.bn)
            kernel, bias = kernel + k, bias + b
        if self.rbr_scale is not None:
            k, b = _fold_bn(self.rbr_scale.conv.weight, self.rbr_scale.bn)
            pad = self.kernel_size // 2
            kernel, bias = kernel + F.pad(k, [pad, pad, pad, pad]), bias + b
        if self.rbr_skip is not None:
            identity = _identity_kernel(self.in_channels, self.groups, self.kernel_size, kernel)
            k, b = _fold_bn(identity, self.rbr_skip)
            kernel, bias = kernel + k, bias + b
        return kernel, bias

    def branch_norms(self) -> tuple[list[nn.BatchNorm2d], nn.BatchNorm2d | None]:
        """The BatchNorms of the summed conv branches, and of the identity branch (None without a skip).

        Used by the random init to keep activations at a realistic scale; empty after re-parameterization.
        """
        if self.inference_mode:
            return [], None
        norms = [branch.bn for branch in self.rbr_conv]
        if self.rbr_scale is not None:
            norms.append(self.rbr_scale.bn)
        return norms, self.rbr_skip

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold every branch into ``reparam_conv`` and drop the branches (in place)."""
        if self.inference_mode:
            return
        kernel, bias = self.fused_kernel_bias()
        conv = _conv_with(kernel, bias, self.stride, self.groups)
        del self.rbr_conv, self.rbr_scale, self.rbr_skip
        self.reparam_conv = conv


class MobileOne(nn.Module):
    """MobileOne backbone + classifier; ``inference_mode=True`` builds the fused (deploy) form directly."""

    def __init__(
        self,
        width_multipliers: tuple[float, float, float, float],
        num_conv_branches: int = 1,
        use_se: bool = False,
        num_classes: int = 1000,
        inference_mode: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self._in_planes = min(64, int(64 * width_multipliers[0]))
        self._branches = num_conv_branches
        self._inference_mode = inference_mode
        # stage0 always has a single conv branch (upstream does not pass k to it).
        self.stage0 = MobileOneBlock(3, self._in_planes, 3, stride=2, inference_mode=inference_mode)
        se_pairs = (0, 0, STAGE_PAIRS[2] // 2 if use_se else 0, STAGE_PAIRS[3] if use_se else 0)
        for index, (base, pairs, wm, n_se) in enumerate(
            zip((64, 128, 256, 512), STAGE_PAIRS, width_multipliers, se_pairs), start=1
        ):
            setattr(self, f"stage{index}", self._make_stage(int(base * wm), pairs, n_se))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.linear = nn.Linear(int(512 * width_multipliers[3]), num_classes)

    def _make_stage(self, planes: int, pairs: int, se_pairs: int) -> nn.Sequential:
        blocks = []
        for index in range(pairs):
            use_se = index >= pairs - se_pairs
            stride = 2 if index == 0 else 1
            common = dict(num_conv_branches=self._branches, use_se=use_se, inference_mode=self._inference_mode)
            blocks.append(
                MobileOneBlock(self._in_planes, self._in_planes, 3, stride=stride, groups=self._in_planes, **common)
            )
            blocks.append(MobileOneBlock(self._in_planes, planes, 1, **common))
            self._in_planes = planes
        return nn.Sequential(*blocks)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stage0(x)
        x = self.stage1(x)
        x = self.stage2(x)
        x = self.stage3(x)
        return self.stage4(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.gap(self.forward_features(x)).flatten(1)
        return self.linear(x)


register_family(
    MobileOne,
    MOBILEONE_VARIANTS,
    family="mobileone",
    default_resolution=224,
    reparameterizable=True,
    name=lambda v: f"mobileone-{v}",
    reference_stem=lambda v: f"mobileone_{v}",
)
