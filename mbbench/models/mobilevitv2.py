"""MobileViT v2 (Mehta & Rastegari, 2022): separable self-attention, width multipliers 0.5-2.0.

Matches apple/ml-cvnets: module names equal the official checkpoints' keys and the forward pass is the same
function, including the bilinear (align_corners=True) resize *up* of block inputs whose size is not a
multiple of the 2x2 patch, with no resize back.

Some computations have several exactly equal forms that export to different ONNX graphs (the weights and the
``state_dict`` are the same in all of them):

- ``fold_impl`` (patch unfold/fold), named by the ONNX graph each produces: ``"unfold"`` is ml-cvnets' own
  ``F.unfold`` / ``F.fold`` (the default: the authors' code; ONNX im2col as Gathers, then ``Col2Im``, opset >= 18);
  ``"col2im"`` unfolds with a strided depthwise convolution whose kernel is one-hot (exact: each output is one
  input times 1 plus zeros) and folds with ``F.fold`` (``Col2Im``, opset >= 18); ``"pixel"`` unfolds with that
  convolution and folds with ``pixel_shuffle`` (ONNX ``DepthToSpace``), the form of ml-cvnets' CoreML-compatible
  path; ``"reshape"`` is a 6-D reshape/transpose both ways. The last two export at any opset. In ONNX Runtime the
  convolution unfold is cheaper than the Gathers and ``Col2Im`` cheaper than ``DepthToSpace``
  (``scripts/bench_export.py forms``).

For deployment, each block's ``fold_norm_affine()`` folds every GroupNorm's scale and shift into the 1x1
convolution that follows it (the transformer is pre-norm, so one always does):
``conv(g * n + b) = (W diag g) n + (W b + c)``. The exported graph then normalises with one op instead of
three, the same function up to float rounding. :func:`mbbench.models.deploy` walks the blocks.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mbbench.models.layers import (
    ConvLayer,
    CvnetsClassifier,
    GlobalPool,
    InvertedResidual,
    PatchFolding,
    make_divisible,
)
from mbbench.models.registry import register_family

ATTN_DEPTHS = (2, 4, 3)
PATCH = 2
WIDTHS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)


def mobilevitv2_config(width: float) -> dict:
    """Channel plan of MobileViT v2 at width multiplier ``width`` (plain data)."""
    stem = int(make_divisible(min(64, max(16, 32 * width)), 8, min_value=16))
    return {
        "stem": stem,
        "channels": (
            make_divisible(64 * width, 16),
            make_divisible(128 * width, 8),
            make_divisible(256 * width, 8),
            make_divisible(384 * width, 8),
            make_divisible(512 * width, 8),
        ),
        "dims": (make_divisible(128 * width, 8), make_divisible(192 * width, 8), make_divisible(256 * width, 8)),
    }


@torch.no_grad()
def _fold_affine_into(norm: nn.GroupNorm, conv: nn.Conv2d) -> nn.GroupNorm:
    """Fold ``norm``'s scale and shift into the 1x1 ``conv`` that consumes it; returns the affine-free norm."""
    weight = conv.weight.clone()
    shift = weight[:, :, 0, 0] @ norm.bias
    conv.weight.copy_(weight * norm.weight.reshape(1, -1, 1, 1))
    if conv.bias is None:
        conv.bias = nn.Parameter(shift)
    else:
        conv.bias.add_(shift)
    return nn.GroupNorm(norm.num_groups, norm.num_channels, eps=norm.eps, affine=False)


class LinearSelfAttention(nn.Module):
    """Separable self-attention on (B, d, P, N): O(N) context from one softmax-weighted key sum."""

    def __init__(self, embed_dim: int) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.qkv_proj = ConvLayer(embed_dim, 1 + 2 * embed_dim, 1, bias=True, use_norm=False, use_act=False)
        self.out_proj = ConvLayer(embed_dim, embed_dim, 1, bias=True, use_norm=False, use_act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        query, key, value = torch.split(self.qkv_proj(x), [1, self.embed_dim, self.embed_dim], dim=1)
        scores = torch.softmax(query, dim=-1)  # over the N patches
        context = (key * scores).sum(dim=-1, keepdim=True)
        return self.out_proj(F.relu(value) * context)


class LinearAttnFFN(nn.Module):
    """x + Attn(GN(x)), then x + FFN(GN(x)); GroupNorm(1) normalises each sample over all of (d, P, N)."""

    def __init__(self, embed_dim: int, ffn_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.pre_norm_attn = nn.Sequential(
            nn.GroupNorm(1, embed_dim), LinearSelfAttention(embed_dim), nn.Dropout(dropout)
        )
        self.pre_norm_ffn = nn.Sequential(
            nn.GroupNorm(1, embed_dim),
            ConvLayer(embed_dim, ffn_dim, 1, bias=True, use_norm=False, use_act=True),
            nn.Dropout(0.0),
            ConvLayer(ffn_dim, embed_dim, 1, bias=True, use_norm=False, use_act=False),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pre_norm_attn(x)
        return x + self.pre_norm_ffn(x)

    def fold_norm_affine(self) -> None:
        """Fold both norms' scale and shift into the qkv and first FFN convolutions (in place)."""
        if self.pre_norm_attn[0].affine:
            self.pre_norm_attn[0] = _fold_affine_into(self.pre_norm_attn[0], self.pre_norm_attn[1].qkv_proj.block.conv)
        if self.pre_norm_ffn[0].affine:
            self.pre_norm_ffn[0] = _fold_affine_into(self.pre_norm_ffn[0], self.pre_norm_ffn[1].block.conv)


class MobileViTBlockV2(PatchFolding):
    """Depthwise 3x3 + 1x1 local convs, separable attention over patches, 1x1 projection (no fusion)."""

    def __init__(self, channels: int, dim: int, depth: int, patch: int = PATCH, fold_impl: str = "unfold") -> None:
        super().__init__()
        self._init_folding(dim, patch, fold_impl)
        self.local_rep = nn.Sequential(
            ConvLayer(channels, channels, 3, groups=channels),
            ConvLayer(channels, dim, 1, use_norm=False, use_act=False),
        )
        ffn_dim = 2 * dim // 16 * 16
        self.global_rep = nn.Sequential(*[LinearAttnFFN(dim, ffn_dim) for _ in range(depth)], nn.GroupNorm(1, dim))
        self.conv_proj = ConvLayer(dim, channels, 1, use_act=False)

    def unfold(self, fm: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, P, N): P pixels per patch (row-major in the patch), N patches (row-major)."""
        return self.unfold_patches(fm)

    def fold(self, patches: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Inverse of :meth:`unfold` for a map of ``size`` (H, W)."""
        return self.fold_patches(patches, size)

    def fold_norm_affine(self) -> None:
        """Fold the final norm's scale and shift into ``conv_proj`` (in place).

        The fold between them only moves pixels within each channel, so a per-channel affine commutes with it.
        """
        norm = self.global_rep[-1]
        if norm.affine:
            self.global_rep[-1] = _fold_affine_into(norm, self.conv_proj.block.conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        p = self.patch
        if height % p or width % p:
            size = (int(math.ceil(height / p) * p), int(math.ceil(width / p) * p))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=True)
        fm = self.local_rep(x)
        size = (fm.shape[-2], fm.shape[-1])
        fm = self.fold(self.global_rep(self.unfold(fm)), size)
        return self.conv_proj(fm)


class MobileViTV2(CvnetsClassifier):
    def __init__(
        self,
        stem: int,
        channels: tuple[int, ...],
        dims: tuple[int, int, int],
        num_classes: int = 1000,
        fold_impl: str = "unfold",
        expansion: int = 2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv_1 = ConvLayer(3, stem, 3, stride=2)
        self.layer_1 = nn.Sequential(InvertedResidual(stem, channels[0], 1, expansion))
        self.layer_2 = nn.Sequential(
            InvertedResidual(channels[0], channels[1], 2, expansion),
            InvertedResidual(channels[1], channels[1], 1, expansion),
        )
        in_ch = channels[1]
        for index, (out_ch, dim, depth) in enumerate(zip(channels[2:], dims, ATTN_DEPTHS), start=3):
            layer = nn.Sequential(
                InvertedResidual(in_ch, out_ch, 2, expansion),
                MobileViTBlockV2(out_ch, dim, depth, fold_impl=fold_impl),
            )
            setattr(self, f"layer_{index}", layer)
            in_ch = out_ch
        self.conv_1x1_exp = nn.Identity()
        self.classifier = nn.Sequential(GlobalPool(), nn.Linear(in_ch, num_classes))


register_family(
    MobileViTV2,
    {width: mobilevitv2_config(width) for width in WIDTHS},
    family="mobilevitv2",
    default_resolution=256,
    reparameterizable=False,
    name=lambda width: f"mobilevitv2-{round(width * 100):03d}",
    reference_stem=lambda width: f"mobilevitv2_{width}",
)
