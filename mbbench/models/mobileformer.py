"""Mobile-Former (Chen et al., "Mobile-Former: Bridging MobileNet and Transformer", CVPR 2022): 26M ... 508M.

A MobileNet (the *Mobile*) and a transformer over a handful of learned global tokens (the *Former*) run side by
side, joined in every block by a two-way bridge of light-weight cross attention. One block, in order:

1. ``mobile_to_former``: the tokens attend to the block's input feature map. Only the tokens are projected (a
   query projection, then an output projection back to the token width); the feature map serves as keys and
   values as it is, which is what makes the bridge cheap at high resolution.
2. ``former``: one post-norm transformer layer over the tokens (attention, then an FFN of expansion 2).
3. ``mobile``: an inverted bottleneck (1x1 -> 3x3 depthwise -> 1x1), whose activations are dynamic ReLUs with
   coefficients computed from the *first* token by a two-layer MLP (no pooling over the feature map). The
   downsampling block is depthwise (stride 2) -> 1x1 -> depthwise -> 1x1 instead, so that no 1x1 convolution
   runs at the higher resolution.
4. ``former_to_mobile``: every pixel attends to the tokens. Keys and values are projections of the tokens; the
   feature map is the query as it is, and the result is added to it.

The stem (3x3 conv, stride 2), a lite bottleneck (MicroNet's: depthwise expansion, then a 1x1 projection) and
the head (1x1 conv, global pooling, concatenation with the first token, two FC layers) complete the network.
The attention is written with explicit matmul + softmax so that it exports at every opset from 12, and so that
``count_macs`` counts its matmuls. Its cost is ``2 * T * H * W * C`` MACs per direction (T tokens): linear in the
pixel count, where MobileViT's self-attention over patches is quadratic in it.

There is no official code. The per-variant widths, expansions, token counts and head sizes below are the
paper's appendix tables. Where the paper is silent, the choices are those of an unofficial timm-based
implementation with ImageNet weights (github.com/AAboys/MobileFormer), which reproduces the paper's parameter
counts: the Former's attention projects only its queries (keys and values are the tokens themselves), the
Mobile->Former output is gated per channel by ``2 * hard_sigmoid(Linear(token))``, the dynamic ReLU has two
pieces with slopes only (``max(a1 x, a2 x)``), the bridge has 2 heads and the Former 4, ReLU6 is the static
activation and hard-swish that of the head, and Mobile-Former-26M's 1x1 convolutions are grouped (4 groups,
with channel shuffles).

Parameters are within 1% of the paper's table for all seven variants, and so are the MACs once the paper's
MAdds convention is applied: it also counts each dynamic ReLU's element-wise work (two multiplies and a max per
element), which ``count_macs`` leaves out for every family (``tests/models/test_mobileformer.py``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mbbench.models.registry import register_family

# The paper's appendix tables as data. ``lite``: the lite bottleneck's (depthwise-expanded width, out, stride);
# ``blocks``: one (exp, out, stride) per Mobile-Former block, exp being the width the Mobile sub-block expands to
# (for a stride-2 block, the width of its first, strided depthwise conv; its second one expands 4x ``out``);
# ``head``: (1x1 conv width, FC width); ``tokens`` x ``token_dim`` global tokens; ``groups`` of the 1x1 convs.
MOBILEFORMER_VARIANTS: dict[str, dict] = {
    "26m": {
        "stem": 8,
        "lite": (24, 12, 2),
        "blocks": ((36, 12, 1), (72, 24, 2), (72, 24, 1), (144, 48, 2), (192, 48, 1), (288, 64, 1),
                   (384, 96, 2), (576, 96, 1)),
        "head": (576, 1024), "tokens": 3, "token_dim": 128, "groups": 4,
    },
    "52m": {
        "stem": 8,
        "lite": (24, 12, 2),
        "blocks": ((36, 12, 1), (72, 24, 2), (72, 24, 1), (144, 48, 2), (192, 48, 1), (288, 64, 1),
                   (384, 96, 2), (576, 96, 1)),
        "head": (576, 1024), "tokens": 3, "token_dim": 128, "groups": 1,
    },
    "96m": {
        "stem": 12,
        "lite": (24, 12, 1),
        "blocks": ((72, 16, 2), (96, 32, 2), (96, 32, 1), (192, 64, 2), (256, 64, 1), (384, 88, 1),
                   (528, 128, 2), (768, 128, 1)),
        "head": (768, 1280), "tokens": 4, "token_dim": 128, "groups": 1,
    },
    "151m": {
        "stem": 12,
        "lite": (24, 12, 1),
        "blocks": ((72, 16, 2), (48, 16, 1), (96, 32, 2), (96, 32, 1), (192, 64, 2), (256, 64, 1),
                   (384, 88, 1), (528, 88, 1), (528, 128, 2), (768, 128, 1), (768, 128, 1)),
        "head": (768, 1280), "tokens": 6, "token_dim": 192, "groups": 1,
    },
    "214m": {
        "stem": 12,
        "lite": (24, 12, 1),
        "blocks": ((72, 20, 2), (60, 20, 1), (120, 40, 2), (160, 40, 1), (240, 80, 2), (320, 80, 1),
                   (480, 112, 1), (672, 112, 1), (672, 160, 2), (960, 160, 1), (960, 160, 1)),
        "head": (960, 1600), "tokens": 6, "token_dim": 192, "groups": 1,
    },
    "294m": {
        "stem": 16,
        "lite": (32, 16, 1),
        "blocks": ((96, 24, 2), (96, 24, 1), (144, 48, 2), (192, 48, 1), (288, 96, 2), (384, 96, 1),
                   (576, 128, 1), (768, 128, 1), (768, 192, 2), (1152, 192, 1), (1152, 192, 1)),
        "head": (1152, 1920), "tokens": 6, "token_dim": 192, "groups": 1,
    },
    "508m": {
        "stem": 24,
        "lite": (48, 24, 1),
        "blocks": ((144, 40, 2), (120, 40, 1), (240, 72, 2), (216, 72, 1), (432, 128, 2), (512, 128, 1),
                   (768, 176, 1), (1056, 176, 1), (1056, 240, 2), (1440, 240, 1), (1440, 240, 1)),
        "head": (1440, 1920), "tokens": 6, "token_dim": 192, "groups": 1,
    },
}  # fmt: skip
BRIDGE_HEADS = 2
FORMER_HEADS = 4
FFN_EXPANSION = 2
#: The strided block's second depthwise conv expands its output this many times.
DOWNSAMPLE_EXPANSION = 4
#: The dynamic ReLU's coefficient MLP narrows the token by this factor.
HYPER_REDUCTION = 4


def hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    # relu6(x + 3) / 6, as the reference implementation writes it: the same Add/Clip/Div graph at every opset
    # (ONNX's HardSwish only exists from opset 14).
    return F.relu6(x + 3.0) / 6.0


class HardSwish(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * hard_sigmoid(x)


class ChannelShuffle(nn.Module):
    """Interleave ``groups`` channel groups, so the next grouped 1x1 conv sees channels from every group."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        x = x.reshape(batch, self.groups, channels // self.groups, height, width)
        return x.transpose(1, 2).reshape(batch, channels, height, width)


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1, shuffle: int = 1) -> nn.Sequential:
    layers = nn.Sequential()
    layers.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False))
    layers.add_module("bn", nn.BatchNorm2d(out_ch))
    if shuffle > 1:
        layers.add_module("shuffle", ChannelShuffle(shuffle))
    return layers


class TokenDynamicReLU(nn.Module):
    """Dynamic ReLU whose coefficients come from a global token: ``y_c = max(a1_c x_c, a2_c x_c)``.

    Dynamic ReLU (Chen et al., ECCV 2020; :class:`mbbench.studies.activations.DynamicReLU` implements it for the
    activation study) computes its coefficients from the pooled feature map. Mobile-Former saves that pooling:
    its two-layer MLP reads the first global token. Two pieces, slopes only (no intercepts), hard-sigmoid
    residuals of range 2 around the initial ``a1 = 1, a2 = 0``, so that it starts as a ReLU.
    """

    def __init__(self, channels: int, token_dim: int, reduction: int = HYPER_REDUCTION) -> None:
        super().__init__()
        self.channels = channels
        self.hyper = nn.Sequential(
            nn.Linear(token_dim, token_dim // reduction), nn.ReLU(), nn.Linear(token_dim // reduction, 2 * channels)
        )

    def forward(self, x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        theta = 2.0 * hard_sigmoid(self.hyper(token))  # (B, 2C) in [0, 2]
        coefs = theta.reshape(-1, 2, self.channels, 1, 1)
        return torch.maximum(x * coefs[:, 0], x * (coefs[:, 1] - 1.0))


class LiteBottleneck(nn.Module):
    """MicroNet's lite bottleneck: depthwise 3x3 expansion + ReLU6, then a (grouped) 1x1 projection."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int, stride: int, groups: int) -> None:
        super().__init__()
        self.depthwise = _conv_bn(in_ch, hidden, 3, stride, groups=in_ch, shuffle=in_ch if groups > 1 else 1)
        self.act = nn.ReLU6()
        self.pointwise = _conv_bn(hidden, out_ch, 1, groups=groups)
        self.residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.act(self.depthwise(x)))
        return x + out if self.residual else out


class MobileSubBlock(nn.Module):
    """Inverted bottleneck, 1x1 -> 3x3 depthwise -> 1x1, dynamic ReLUs after the first two, residual if shapes allow."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int, token_dim: int, groups: int) -> None:
        super().__init__()
        self.expand = _conv_bn(in_ch, hidden, 1, groups=groups, shuffle=groups)
        self.act1 = TokenDynamicReLU(hidden, token_dim)
        self.depthwise = _conv_bn(hidden, hidden, 3, groups=hidden)
        self.act2 = TokenDynamicReLU(hidden, token_dim)
        self.project = _conv_bn(hidden, out_ch, 1, groups=groups, shuffle=groups)
        self.residual = in_ch == out_ch

    def dynamic_relus(self) -> tuple[TokenDynamicReLU, ...]:
        return self.act1, self.act2

    def forward(self, x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.expand(x), token)
        out = self.act2(self.depthwise(out), token)
        out = self.project(out)
        return x + out if self.residual else out


class DownsampleMobileSubBlock(nn.Module):
    """The strided form: depthwise 3x3 (stride 2, expanding) -> 1x1 -> depthwise 3x3 (expanding) -> 1x1.

    Each depthwise conv expands the channels and each 1x1 conv squeezes them, so no 1x1 conv runs before the
    downsampling; a residual joins the first 1x1's output to the second's.
    """

    def __init__(self, in_ch: int, hidden: int, out_ch: int, token_dim: int, groups: int) -> None:
        super().__init__()
        hidden2 = DOWNSAMPLE_EXPANSION * out_ch
        grouped = groups > 1
        self.depthwise1 = _conv_bn(in_ch, hidden, 3, 2, groups=in_ch, shuffle=in_ch if grouped else 1)
        self.act1 = TokenDynamicReLU(hidden, token_dim)
        self.project1 = _conv_bn(hidden, out_ch, 1, groups=groups)
        self.depthwise2 = _conv_bn(out_ch, hidden2, 3, groups=out_ch, shuffle=out_ch if grouped else 1)
        self.act2 = TokenDynamicReLU(hidden2, token_dim)
        self.project2 = _conv_bn(hidden2, out_ch, 1, groups=groups)

    def dynamic_relus(self) -> tuple[TokenDynamicReLU, ...]:
        return self.act1, self.act2

    def forward(self, x: torch.Tensor, token: torch.Tensor) -> torch.Tensor:
        mid = self.project1(self.act1(self.depthwise1(x), token))
        return mid + self.project2(self.act2(self.depthwise2(mid), token))


class MobileToFormer(nn.Module):
    """Tokens attend to the feature map: ``z + W_o [softmax(q_h(z) x_h^T / sqrt(C/h)) x_h]_h``, then LayerNorm.

    The feature map x (B, C, H, W) is key and value without any projection; heads split its channels.
    """

    def __init__(self, channels: int, token_dim: int, heads: int = BRIDGE_HEADS) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (channels // heads) ** -0.5
        self.q = nn.Linear(token_dim, channels)
        self.gate = nn.Linear(token_dim, channels)
        self.proj = nn.Linear(channels, token_dim)
        self.norm = nn.LayerNorm(token_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = z.shape
        channels = x.shape[1]
        q = self.q(z).reshape(batch, tokens, self.heads, -1).transpose(1, 2)  # (B, h, T, C/h)
        kv = x.reshape(batch, self.heads, channels // self.heads, -1)  # (B, h, C/h, HW)
        attn = torch.softmax(torch.matmul(q, kv) * self.scale, dim=-1)  # (B, h, T, HW)
        # (attn @ kv^T)^T = kv @ attn^T: transposes the small attention map instead of the feature map
        out = torch.matmul(kv, attn.transpose(-1, -2))  # (B, h, C/h, T)
        out = out.reshape(batch, channels, tokens).transpose(1, 2)  # (B, T, C)
        out = out * (2.0 * hard_sigmoid(self.gate(z)))
        return self.norm(z + self.proj(out))


class Former(nn.Module):
    """One post-norm transformer layer over the few tokens; attention projects queries (and its output) only."""

    def __init__(self, token_dim: int, heads: int = FORMER_HEADS, expansion: int = FFN_EXPANSION) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (token_dim // heads) ** -0.5
        self.q = nn.Linear(token_dim, token_dim)
        self.proj = nn.Linear(token_dim, token_dim)
        self.norm1 = nn.LayerNorm(token_dim)
        self.ffn = nn.Sequential(
            nn.Linear(token_dim, expansion * token_dim), nn.GELU(), nn.Linear(expansion * token_dim, token_dim)
        )
        self.norm2 = nn.LayerNorm(token_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = z.shape
        q = self.q(z).reshape(batch, tokens, self.heads, -1).transpose(1, 2)  # (B, h, T, d/h)
        kv = z.reshape(batch, tokens, self.heads, -1).transpose(1, 2)  # (B, h, T, d/h)
        attn = torch.softmax(torch.matmul(q, kv.transpose(-1, -2)) * self.scale, dim=-1)  # (B, h, T, T)
        out = torch.matmul(attn, kv).transpose(1, 2).reshape(batch, tokens, dim)
        z = self.norm1(z + self.proj(out))
        return self.norm2(z + self.ffn(z))


class FormerToMobile(nn.Module):
    """Pixels attend to the tokens: ``x + [softmax(x_h k_h(z)^T / sqrt(C/h)) v_h(z)]_h``; x is not projected."""

    def __init__(self, channels: int, token_dim: int, heads: int = BRIDGE_HEADS) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (channels // heads) ** -0.5
        self.k = nn.Linear(token_dim, channels)
        self.v = nn.Linear(token_dim, channels)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        tokens = z.shape[1]
        q = x.reshape(batch, self.heads, channels // self.heads, -1)  # (B, h, C/h, HW)
        k = self.k(z).reshape(batch, tokens, self.heads, -1).transpose(1, 2)  # (B, h, T, C/h)
        v = self.v(z).reshape(batch, tokens, self.heads, -1).permute(0, 2, 3, 1)  # (B, h, C/h, T)
        # Scores laid out (T, HW) and the softmax taken over the tokens, so the feature map is never transposed.
        attn = torch.softmax(torch.matmul(k, q) * self.scale, dim=-2)  # (B, h, T, HW)
        out = torch.matmul(v, attn)  # (B, h, C/h, HW)
        return x + out.reshape(batch, channels, height, width)


class MobileFormerBlock(nn.Module):
    """Mobile->Former, Former, Mobile (dynamic ReLU fed by the first token), Former->Mobile."""

    def __init__(self, in_ch: int, hidden: int, out_ch: int, stride: int, token_dim: int, groups: int) -> None:
        super().__init__()
        self.mobile_to_former = MobileToFormer(in_ch, token_dim)
        self.former = Former(token_dim)
        sub_block = DownsampleMobileSubBlock if stride == 2 else MobileSubBlock
        self.mobile = sub_block(in_ch, hidden, out_ch, token_dim, groups)
        self.former_to_mobile = FormerToMobile(out_ch, token_dim)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.former(self.mobile_to_former(x, z))
        x = self.mobile(x, z[:, 0])
        return self.former_to_mobile(x, z), z


class MobileFormerHead(nn.Module):
    """1x1 conv + ReLU6, global pooling + hard-swish, concatenated with the first token, FC + BN + hard-swish, FC."""

    def __init__(self, in_ch: int, conv_ch: int, fc_ch: int, token_dim: int, groups: int, num_classes: int,
                 dropout: float) -> None:  # fmt: skip
        super().__init__()
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.conv = _conv_bn(in_ch, conv_ch, 1, groups=groups)
        self.act = nn.ReLU6()
        self.pool_act = HardSwish()
        self.fc = nn.Linear(conv_ch + token_dim, fc_ch)
        self.norm = nn.BatchNorm1d(fc_ch)
        self.fc_act = HardSwish()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(fc_ch, num_classes)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        x = self.act(self.conv(self.shuffle(x)))
        pooled = self.pool_act(x.mean(dim=(2, 3)))
        x = self.fc_act(self.norm(self.fc(torch.cat((pooled, z[:, 0]), dim=1))))
        return self.classifier(self.dropout(x))


class MobileFormer(nn.Module):
    def __init__(
        self,
        stem: int,
        lite: tuple[int, int, int],
        blocks: tuple[tuple[int, int, int], ...],
        head: tuple[int, int],
        tokens: int,
        token_dim: int,
        groups: int = 1,
        num_classes: int = 1000,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.num_classes = num_classes
        # The global tokens: learned, input-independent; an Embedding so the seeded init covers them.
        self.tokens = nn.Embedding(tokens, token_dim)
        self.stem = nn.Sequential()
        self.stem.add_module("conv", nn.Conv2d(3, stem, 3, 2, 1, bias=False))
        self.stem.add_module("bn", nn.BatchNorm2d(stem))
        self.stem.add_module("act", nn.ReLU6())
        hidden, channels, stride = lite
        self.lite = LiteBottleneck(stem, hidden, channels, stride, groups)
        self.blocks = nn.ModuleList()
        for hidden, out_ch, stride in blocks:
            self.blocks.append(MobileFormerBlock(channels, hidden, out_ch, stride, token_dim, groups))
            channels = out_ch
        # One more Mobile->Former after the last block (as AAboys/MobileFormer), so the classifier's token has
        # seen the final feature map.
        self.mobile_to_former = MobileToFormer(channels, token_dim)
        self.head = MobileFormerHead(channels, *head, token_dim, groups, num_classes, dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A copy, not an expand: a view of a parameter made under no_grad still requires grad, and module hooks
        # (FlopCounterMode's module tracker) then look for a grad_fn it does not have.
        z = self.tokens.weight.unsqueeze(0).repeat(x.shape[0], 1, 1)
        x = self.lite(self.stem(x))
        for block in self.blocks:
            x, z = block(x, z)
        z = self.mobile_to_former(x, z)
        return self.head(x, z)


register_family(
    MobileFormer,
    MOBILEFORMER_VARIANTS,
    family="mobileformer",
    default_resolution=224,
    reparameterizable=False,
    name=lambda v: f"mobileformer-{v}",
    reference_stem=lambda v: f"mobile_former_{v}",
)
