"""MobileViT v1 (Mehta & Rastegari, ICLR 2022): xxs, xs, s.

Matches apple/ml-cvnets: module names equal the official ``.pt`` checkpoints' keys, and the forward pass is the
same function, including the bilinear (align_corners=False) resize of feature maps whose size is not a
multiple of the 2x2 patch, and the resize back. Attention is written with explicit matmul + softmax (no
``scaled_dot_product_attention``) so that the TorchScript exporter can emit it at opset 12.

The patch unfold/fold has the exactly equal forms of MobileViT v2 (``fold_impl``, see
:class:`~mbbench.models.layers.PatchFolding`); the default, ``reshape``, is one 6-D reshape/transpose each way
(the same permutation as ml-cvnets' chain of reshapes and transposes). The other forms go through the (B, C, P, N)
layout of v2 and one 4-D transpose to the transformer's (B*P, N, C).
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
)
from mbbench.models.registry import register_family

# Per-variant data: MV2 expansion, (layer_1..layer_5 out channels), transformer dim d and ffn for layer_3..5.
MOBILEVIT_VARIANTS: dict[str, dict] = {
    "xxs": {"expansion": 2, "channels": (16, 24, 48, 64, 80), "dims": (64, 80, 96), "ffn": (128, 160, 192)},
    "xs": {"expansion": 4, "channels": (32, 48, 64, 80, 96), "dims": (96, 120, 144), "ffn": (192, 240, 288)},
    "s": {"expansion": 4, "channels": (32, 64, 96, 128, 160), "dims": (144, 192, 240), "ffn": (288, 384, 480)},
}
TRANSFORMER_DEPTHS = (2, 4, 3)
NUM_HEADS = 4
PATCH = 2


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention over (B, N, d) with one fused qkv projection, as in cvnets."""

    def __init__(self, embed_dim: int, num_heads: int) -> None:
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.scaling = self.head_dim**-0.5
        self.qkv_proj = nn.Linear(embed_dim, 3 * embed_dim)
        self.out_proj = nn.Linear(embed_dim, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        # Output features are laid out [3][heads][head_dim], which fixes the checkpoint's qkv order.
        qkv = self.qkv_proj(x).reshape(batch, tokens, 3, self.num_heads, self.head_dim)
        qkv = qkv.permute(2, 0, 3, 1, 4)  # (3, B, heads, N, head_dim)
        query, key, value = qkv[0] * self.scaling, qkv[1], qkv[2]
        attn = torch.softmax(torch.matmul(query, key.transpose(-1, -2)), dim=-1)
        out = torch.matmul(attn, value)  # (B, heads, N, head_dim)
        out = out.transpose(1, 2).reshape(batch, tokens, -1)
        return self.out_proj(out)


class TransformerEncoder(nn.Module):
    """Pre-norm transformer layer: x + MHA(LN(x)), then x + FFN(LN(x)) with SiLU."""

    def __init__(self, embed_dim: int, ffn_dim: int, num_heads: int = NUM_HEADS, dropout: float = 0.1) -> None:
        super().__init__()
        self.pre_norm_mha = nn.Sequential(
            nn.LayerNorm(embed_dim), MultiHeadAttention(embed_dim, num_heads), nn.Dropout(dropout)
        )
        self.pre_norm_ffn = nn.Sequential(
            nn.LayerNorm(embed_dim),
            nn.Linear(embed_dim, ffn_dim),
            nn.SiLU(),
            nn.Dropout(0.0),
            nn.Linear(ffn_dim, embed_dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.pre_norm_mha(x)
        return x + self.pre_norm_ffn(x)


class MobileViTBlock(PatchFolding):
    """Local 3x3 + 1x1 convs, global transformer over patches, projection and 3x3 fusion with the input."""

    def __init__(self, channels: int, dim: int, ffn_dim: int, depth: int, patch: int = PATCH,
                 fold_impl: str = "reshape") -> None:  # fmt: skip
        super().__init__()
        self._init_folding(dim, patch, fold_impl)
        self.local_rep = nn.Sequential()
        self.local_rep.add_module("conv_3x3", ConvLayer(channels, channels, 3))
        self.local_rep.add_module("conv_1x1", ConvLayer(channels, dim, 1, use_norm=False, use_act=False))
        self.global_rep = nn.Sequential(
            *[TransformerEncoder(dim, ffn_dim) for _ in range(depth)], nn.LayerNorm(dim)
        )
        self.conv_proj = ConvLayer(dim, channels, 1)
        self.fusion = ConvLayer(2 * channels, channels, 3)

    def unfold(self, fm: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """(B, C, H, W) -> (B*P, N, C) with P pixels per patch and N patches; resizes H, W up to the patch."""
        batch, channels, height, width = fm.shape
        p = self.patch
        new_h, new_w = int(math.ceil(height / p) * p), int(math.ceil(width / p) * p)
        resized = (new_h, new_w) != (height, width)
        if resized:
            fm = F.interpolate(fm, size=(new_h, new_w), mode="bilinear", align_corners=False)
        n_h, n_w = new_h // p, new_w // p
        if self.fold_impl == "reshape":
            x = fm.reshape(batch, channels, n_h, p, n_w, p)
            x = x.permute(0, 3, 5, 2, 4, 1)  # (B, ph, pw, n_h, n_w, C)
        else:
            x = self.unfold_patches(fm).permute(0, 2, 3, 1)  # (B, C, P, N) -> (B, P, N, C)
        patches = x.reshape(batch * p * p, n_h * n_w, channels)
        return patches, {"batch": batch, "size": (height, width), "grid": (n_h, n_w), "resized": resized}

    def fold(self, patches: torch.Tensor, info: dict) -> torch.Tensor:
        """Inverse of :meth:`unfold`, including the resize back to the original size."""
        p = self.patch
        n_h, n_w = info["grid"]
        batch = info["batch"]
        if self.fold_impl == "reshape":
            x = patches.reshape(batch, p, p, n_h, n_w, -1)
            x = x.permute(0, 5, 3, 1, 4, 2)  # (B, C, n_h, ph, n_w, pw)
            fm = x.reshape(batch, -1, n_h * p, n_w * p)
        else:
            x = patches.reshape(batch, p * p, n_h * n_w, -1).permute(0, 3, 1, 2)  # (B, P, N, C) -> (B, C, P, N)
            fm = self.fold_patches(x, (n_h * p, n_w * p))
        if info["resized"]:
            fm = F.interpolate(fm, size=info["size"], mode="bilinear", align_corners=False)
        return fm

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fm = self.local_rep(x)
        patches, info = self.unfold(fm)
        fm = self.fold(self.global_rep(patches), info)
        fm = self.conv_proj(fm)
        return self.fusion(torch.cat((x, fm), dim=1))


class MobileViT(CvnetsClassifier):
    def __init__(
        self,
        expansion: int,
        channels: tuple[int, ...],
        dims: tuple[int, int, int],
        ffn: tuple[int, int, int],
        num_classes: int = 1000,
        classifier_dropout: float = 0.1,
        fold_impl: str = "reshape",
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.conv_1 = ConvLayer(3, 16, 3, stride=2)
        self.layer_1 = nn.Sequential(InvertedResidual(16, channels[0], 1, expansion))
        self.layer_2 = nn.Sequential(
            InvertedResidual(channels[0], channels[1], 2, expansion),
            InvertedResidual(channels[1], channels[1], 1, expansion),
            InvertedResidual(channels[1], channels[1], 1, expansion),
        )
        in_ch = channels[1]
        for index, (out_ch, dim, ffn_dim, depth) in enumerate(
            zip(channels[2:], dims, ffn, TRANSFORMER_DEPTHS), start=3
        ):
            layer = nn.Sequential(
                InvertedResidual(in_ch, out_ch, 2, expansion), MobileViTBlock(out_ch, dim, ffn_dim, depth, fold_impl=fold_impl)
            )
            setattr(self, f"layer_{index}", layer)
            in_ch = out_ch
        exp_ch = min(4 * in_ch, 960)
        self.conv_1x1_exp = ConvLayer(in_ch, exp_ch, 1)
        self.classifier = nn.Sequential()
        self.classifier.add_module("global_pool", GlobalPool())
        self.classifier.add_module("dropout", nn.Dropout(classifier_dropout))
        self.classifier.add_module("fc", nn.Linear(exp_ch, num_classes))


register_family(
    MobileViT,
    MOBILEVIT_VARIANTS,
    family="mobilevit",
    default_resolution=256,
    reparameterizable=False,
    name=lambda v: f"mobilevit-{v}",
    reference_stem=lambda v: f"mobilevit_{v}",
)
