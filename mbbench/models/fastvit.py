"""FastViT (Vasu et al., ICCV 2023): t8, t12, s12, sa12, sa24, sa36, ma36, with structural re-parameterization.

Matches apple/ml-fastvit: the same module names (so its training-form checkpoints and the fused form its
``reparameterize_model`` produces both load with ``strict=True``) and the same function. The network is a
MobileOne-style convolutional stem, four stages of RepMixer blocks (the SA/MA variants end in a stage of
self-attention blocks behind a conditional positional encoding), large-kernel patch embeddings between stages
and a MobileOne head block with squeeze-excite. Every re-parameterizable block owns its fold:

- :class:`MobileOneBlock`: kxk conv+BN, 1x1 conv+BN and BN-only skip branches -> one conv (stem, embeddings, head).
- :class:`ReparamLargeKernelConv`: a 7x7 and a 3x3 depthwise conv+BN -> one 7x7 conv.
- :class:`RepMixer`: ``x + s * (mixer(x) - norm(x))`` with depthwise mixer and BN-only norm -> one 3x3 conv.
- :class:`RepCPE`: ``x + pe(x)`` (7x7 depthwise conv) -> one 7x7 conv.

The ConvFFN's 7x7 depthwise conv+BN and the attention blocks' BatchNorm are kept, as in the official fused form.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbbench.models.mobileone import MobileOneBlock as _MobileOneBlock
from mbbench.models.mobileone import (
    _conv_bn,
    _conv_with,
    _fold_bn,
    _identity_kernel,
)
from mbbench.models.registry import register_family

# Variant configs as data (paper Table 2; ml-fastvit's factories): blocks per stage, stage widths, ConvFFN
# expansion, whether the last stage uses self-attention (behind a RepCPE) instead of RepMixer, and the layer
# scale a training run starts from.
FASTVIT_VARIANTS: dict[str, dict] = {
    "t8": {"depths": (2, 2, 4, 2), "widths": (48, 96, 192, 384), "mlp_ratio": 3.0, "attention": False},
    "t12": {"depths": (2, 2, 6, 2), "widths": (64, 128, 256, 512), "mlp_ratio": 3.0, "attention": False},
    "s12": {"depths": (2, 2, 6, 2), "widths": (64, 128, 256, 512), "mlp_ratio": 4.0, "attention": False},
    "sa12": {"depths": (2, 2, 6, 2), "widths": (64, 128, 256, 512), "mlp_ratio": 4.0, "attention": True},
    "sa24": {"depths": (4, 4, 12, 4), "widths": (64, 128, 256, 512), "mlp_ratio": 4.0, "attention": True},
    "sa36": {
        "depths": (6, 6, 18, 6),
        "widths": (64, 128, 256, 512),
        "mlp_ratio": 4.0,
        "attention": True,
        "layer_scale_init": 1e-6,
    },
    "ma36": {
        "depths": (6, 6, 18, 6),
        "widths": (76, 152, 304, 608),
        "mlp_ratio": 4.0,
        "attention": True,
        "layer_scale_init": 1e-6,
    },
}
HEAD_DIM = 32  # attention heads are width / 32
REPMIXER_KERNEL = 3
EMBED_KERNEL, EMBED_SMALL_KERNEL = 7, 3
FFN_KERNEL = 7
CPE_KERNEL = 7
HEAD_RATIO = 2  # the head block doubles the last width


class MobileOneBlock(_MobileOneBlock):
    """ml-fastvit's MobileOne block: MobileOne's own (:mod:`mbbench.models.mobileone`) with what FastViT needs:
    GELU by default, an optional activation (``use_act``), an optional scale branch and zero conv branches
    (RepMixer's ``norm`` is a bare BatchNorm skip). After :meth:`reparameterize` it is one ``reparam_conv``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        groups: int = 1,
        *,
        num_conv_branches: int = 1,
        use_se: bool = False,
        use_act: bool = True,
        use_scale_branch: bool = True,
        inference_mode: bool = False,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride, groups, num_conv_branches, use_se, inference_mode,
            activation=nn.GELU() if use_act else nn.Identity(), use_scale_branch=use_scale_branch,
        )  # fmt: skip


class ReparamLargeKernelConv(nn.Module):
    """A large-kernel conv+BN plus a small-kernel conv+BN on the same input (RepLKNet), summed.

    No activation: ml-fastvit's forward computes one and discards the result (``self.activation(out)`` is not
    assigned), so its trained weights expect none, and timm's port keeps it off for the same reason.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int,
        groups: int,
        small_kernel: int,
        inference_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.groups = groups
        if inference_mode:
            self.lkb_reparam = nn.Conv2d(
                in_channels, out_channels, kernel_size, stride, kernel_size // 2, groups=groups, bias=True
            )
        else:
            self.lkb_origin = _conv_bn(in_channels, out_channels, kernel_size, stride, groups)
            self.small_conv = _conv_bn(in_channels, out_channels, small_kernel, stride, groups)

    @property
    def inference_mode(self) -> bool:
        return hasattr(self, "lkb_reparam")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inference_mode:
            return self.lkb_reparam(x)
        return self.lkb_origin(x) + self.small_conv(x)

    def branch_norms(self) -> tuple[list[nn.BatchNorm2d], None]:
        if self.inference_mode:
            return [], None
        return [self.lkb_origin.bn, self.small_conv.bn], None

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold both branches into one large-kernel ``lkb_reparam`` (the small kernel zero-padded)."""
        if self.inference_mode:
            return
        kernel, bias = _fold_bn(self.lkb_origin.conv.weight, self.lkb_origin.bn)
        small, small_bias = _fold_bn(self.small_conv.conv.weight, self.small_conv.bn)
        pad = (self.kernel_size - small.shape[-1]) // 2
        conv = _conv_with(kernel + F.pad(small, [pad] * 4), bias + small_bias, self.stride, self.groups)
        del self.lkb_origin, self.small_conv
        self.lkb_reparam = conv


class RepMixer(nn.Module):
    """Token mixing ``x + layer_scale * (mixer(x) - norm(x))``: depthwise, so foldable into one conv.

    ``mixer`` is a depthwise MobileOne block (3x3, 1x1 and skip branches) and ``norm`` a BN-only one; the
    difference replaces the usual ``x + mix(norm(x))`` so that the skip connection folds away too.
    """

    def __init__(
        self, dim: int, kernel_size: int = REPMIXER_KERNEL, layer_scale_init: float = 1e-5, inference_mode: bool = False
    ) -> None:
        super().__init__()
        self.dim = dim
        self.kernel_size = kernel_size
        if inference_mode:
            self.reparam_conv = nn.Conv2d(dim, dim, kernel_size, 1, kernel_size // 2, groups=dim, bias=True)
        else:
            common = dict(groups=dim, use_act=False)
            self.norm = MobileOneBlock(dim, dim, kernel_size, num_conv_branches=0, use_scale_branch=False, **common)
            self.mixer = MobileOneBlock(dim, dim, kernel_size, **common)
            self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale_init))

    @property
    def inference_mode(self) -> bool:
        return hasattr(self, "reparam_conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inference_mode:
            return self.reparam_conv(x)
        return x + self.layer_scale * (self.mixer(x) - self.norm(x))

    def layer_scales(self) -> list[nn.Parameter]:
        return [] if self.inference_mode else [self.layer_scale]

    @torch.no_grad()
    def reparameterize(self) -> None:
        """Fold skip, mixer and norm into one depthwise ``reparam_conv`` (in place)."""
        if self.inference_mode:
            return
        mixer_kernel, mixer_bias = self.mixer.fused_kernel_bias()
        norm_kernel, norm_bias = self.norm.fused_kernel_bias()
        identity = _identity_kernel(self.dim, self.dim, self.kernel_size, mixer_kernel)
        scale = self.layer_scale.reshape(-1)
        kernel = identity + scale.reshape(-1, 1, 1, 1) * (mixer_kernel - norm_kernel)
        conv = _conv_with(kernel, scale * (mixer_bias - norm_bias), 1, self.dim)
        del self.mixer, self.norm, self.layer_scale
        self.reparam_conv = conv


class ConvFFN(nn.Module):
    """7x7 depthwise conv + BN, then a 1x1 -> GELU -> 1x1 MLP (``mlp_ratio`` expansion)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.conv = _conv_bn(dim, dim, FFN_KERNEL, groups=dim)
        self.fc1 = nn.Conv2d(dim, hidden, 1)
        self.act = nn.GELU()
        self.fc2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(self.conv(x))))


class RepCPE(nn.Module):
    """Conditional positional encoding ``x + pe(x)`` (a 7x7 depthwise conv with bias), foldable into one conv."""

    def __init__(self, dim: int, kernel_size: int = CPE_KERNEL, inference_mode: bool = False) -> None:
        super().__init__()
        self.dim = dim
        self.kernel_size = kernel_size
        name = "reparam_conv" if inference_mode else "pe"
        self.add_module(name, nn.Conv2d(dim, dim, kernel_size, 1, kernel_size // 2, groups=dim, bias=True))

    @property
    def inference_mode(self) -> bool:
        return hasattr(self, "reparam_conv")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inference_mode:
            return self.reparam_conv(x)
        return x + self.pe(x)

    @torch.no_grad()
    def reparameterize(self) -> None:
        if self.inference_mode:
            return
        identity = _identity_kernel(self.dim, self.dim, self.kernel_size, self.pe.weight)
        conv = _conv_with(identity + self.pe.weight, self.pe.bias, 1, self.dim)
        del self.pe
        self.reparam_conv = conv


class MHSA(nn.Module):
    """Multi-head self-attention over the pixels of a (B, C, H, W) map; heads of 32 channels, no qkv bias.

    Written with explicit matmul + softmax (no ``scaled_dot_product_attention``) so that the TorchScript
    exporter emits it at every opset and the MAC counter sees the attention matmuls.
    """

    def __init__(self, dim: int, head_dim: int = HEAD_DIM) -> None:
        super().__init__()
        if dim % head_dim:
            raise ValueError(f"width {dim} is not a multiple of the head size {head_dim}")
        self.head_dim = head_dim
        self.num_heads = dim // head_dim
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)  # (B, N, C)
        # Output features are laid out [3][heads][head_dim], which fixes the checkpoint's qkv order.
        qkv = self.qkv(tokens).reshape(batch, height * width, 3, self.num_heads, self.head_dim)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, heads, N, head_dim)
        attn = torch.softmax(torch.matmul(query * self.scale, key.transpose(-2, -1)), dim=-1)
        out = torch.matmul(attn, value).transpose(1, 2).reshape(batch, height * width, channels)
        return self.proj(out).transpose(1, 2).reshape(batch, channels, height, width)


class RepMixerBlock(nn.Module):
    """RepMixer token mixing, then ``x + layer_scale * ConvFFN(x)``."""

    def __init__(self, dim: int, mlp_ratio: float, layer_scale_init: float, inference_mode: bool = False) -> None:
        super().__init__()
        self.token_mixer = RepMixer(dim, layer_scale_init=layer_scale_init, inference_mode=inference_mode)
        self.convffn = ConvFFN(dim, int(dim * mlp_ratio))
        self.layer_scale = nn.Parameter(torch.full((dim, 1, 1), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.token_mixer(x)
        return x + self.layer_scale * self.convffn(x)

    def layer_scales(self) -> list[nn.Parameter]:
        return [self.layer_scale]


class AttentionBlock(nn.Module):
    """``x + s1 * MHSA(BN(x))``, then ``x + s2 * ConvFFN(x)``."""

    def __init__(self, dim: int, mlp_ratio: float, layer_scale_init: float) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(dim)
        self.token_mixer = MHSA(dim)
        self.convffn = ConvFFN(dim, int(dim * mlp_ratio))
        self.layer_scale_1 = nn.Parameter(torch.full((dim, 1, 1), layer_scale_init))
        self.layer_scale_2 = nn.Parameter(torch.full((dim, 1, 1), layer_scale_init))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.layer_scale_1 * self.token_mixer(self.norm(x))
        return x + self.layer_scale_2 * self.convffn(x)

    def layer_scales(self) -> list[nn.Parameter]:
        return [self.layer_scale_1, self.layer_scale_2]


class PatchEmbed(nn.Module):
    """Downsampling between stages: a stride-2 7x7 (+3x3) depthwise conv to the new width, then a 1x1 block."""

    def __init__(self, in_channels: int, out_channels: int, inference_mode: bool = False) -> None:
        super().__init__()
        self.proj = nn.Sequential(
            ReparamLargeKernelConv(
                in_channels,
                out_channels,
                EMBED_KERNEL,
                stride=2,
                groups=in_channels,
                small_kernel=EMBED_SMALL_KERNEL,
                inference_mode=inference_mode,
            ),
            MobileOneBlock(out_channels, out_channels, 1, inference_mode=inference_mode),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class FastViT(nn.Module):
    """FastViT backbone + classifier; ``inference_mode=True`` builds the fused (deploy) form directly.

    ``network`` holds, per stage, [RepCPE,] the blocks, and (between stages) a :class:`PatchEmbed`, as one
    flat ``ModuleList`` whose indices are the checkpoint's.
    """

    def __init__(
        self,
        depths: tuple[int, ...],
        widths: tuple[int, ...],
        mlp_ratio: float,
        attention: bool,
        layer_scale_init: float = 1e-5,
        num_classes: int = 1000,
        inference_mode: bool = False,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        stem_width = widths[0]
        self.patch_embed = nn.Sequential(
            MobileOneBlock(3, stem_width, 3, stride=2, inference_mode=inference_mode),
            MobileOneBlock(stem_width, stem_width, 3, stride=2, groups=stem_width, inference_mode=inference_mode),
            MobileOneBlock(stem_width, stem_width, 1, inference_mode=inference_mode),
        )
        network: list[nn.Module] = []
        last = len(depths) - 1
        for index, (depth, width) in enumerate(zip(depths, widths)):
            if attention and index == last:
                network.append(RepCPE(width, inference_mode=inference_mode))
                blocks = [AttentionBlock(width, mlp_ratio, layer_scale_init) for _ in range(depth)]
            else:
                blocks = [RepMixerBlock(width, mlp_ratio, layer_scale_init, inference_mode) for _ in range(depth)]
            network.append(nn.Sequential(*blocks))
            if index < last:
                network.append(PatchEmbed(width, widths[index + 1], inference_mode=inference_mode))
        self.network = nn.ModuleList(network)
        head_width = int(widths[-1] * HEAD_RATIO)
        self.conv_exp = MobileOneBlock(
            widths[-1], head_width, 3, groups=widths[-1], use_se=True, inference_mode=inference_mode
        )
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(head_width, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        for module in self.network:
            x = module(x)
        return self.conv_exp(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.gap(self.forward_features(x)).flatten(1))


register_family(
    FastViT,
    FASTVIT_VARIANTS,
    family="fastvit",
    default_resolution=256,
    reparameterizable=True,
    name=lambda v: f"fastvit-{v}",
    reference_stem=lambda v: f"fastvit_{v}",
)
