"""MobileNetV3 (Howard et al., ICCV 2019): large and small, laid out as torchvision's ``mobilenet_v3_*``.

Module names and registration order equal torchvision's, so its published ImageNet weights load with
``strict=True`` without importing torchvision (whose wheels are built against other torch versions). The
function is torchvision's too: BatchNorm with eps 1e-3, squeeze-excite with a ReLU bottleneck of
``make_divisible(C / 4, 8)`` channels and a hard-sigmoid gate, hard-swish from the third block of large and
the fourth of small.

Hard-swish and hard-sigmoid became ONNX operators at opset 14. Below that the TorchScript exporter writes
hard-sigmoid as ``HardSigmoid(alpha=1/6, beta=0.5)`` (an opset 6 operator) and hard-swish as ``x`` times that,
which is the definition of both (``relu6(x + 3) / 6``), so every opset gets the same function.
"""

from __future__ import annotations

import torch
from torch import nn

from mbbench.models.layers import make_divisible
from mbbench.models.registry import register_family

# One row per inverted-residual block: (kernel, expanded channels, out channels, squeeze-excite,
# activation "RE" ReLU / "HS" hard-swish, stride). Table 1 and 2 of the paper; torchvision's
# _mobilenet_v3_conf at width 1.0 (every width is already a multiple of 8).
MOBILENETV3_VARIANTS: dict[str, dict] = {
    "large": {
        "blocks": (
            (3, 16, 16, False, "RE", 1),
            (3, 64, 24, False, "RE", 2),
            (3, 72, 24, False, "RE", 1),
            (5, 72, 40, True, "RE", 2),
            (5, 120, 40, True, "RE", 1),
            (5, 120, 40, True, "RE", 1),
            (3, 240, 80, False, "HS", 2),
            (3, 200, 80, False, "HS", 1),
            (3, 184, 80, False, "HS", 1),
            (3, 184, 80, False, "HS", 1),
            (3, 480, 112, True, "HS", 1),
            (3, 672, 112, True, "HS", 1),
            (5, 672, 160, True, "HS", 2),
            (5, 960, 160, True, "HS", 1),
            (5, 960, 160, True, "HS", 1),
        ),
        "last_channel": 1280,
    },
    "small": {
        "blocks": (
            (3, 16, 16, True, "RE", 2),
            (3, 72, 24, False, "RE", 2),
            (3, 88, 24, False, "RE", 1),
            (5, 96, 40, True, "HS", 2),
            (5, 240, 40, True, "HS", 1),
            (5, 240, 40, True, "HS", 1),
            (5, 120, 48, True, "HS", 1),
            (5, 144, 48, True, "HS", 1),
            (5, 288, 96, True, "HS", 2),
            (5, 576, 96, True, "HS", 1),
            (5, 576, 96, True, "HS", 1),
        ),
        "last_channel": 1024,
    },
}
STEM_CHANNELS = 16
BN_EPS = 1e-3  # torchvision trains MobileNetV3 with eps 0.001 (momentum 0.01); the weights assume it
_ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}


def _conv_norm_act(
    in_channels: int, out_channels: int, kernel_size: int, stride: int = 1, groups: int = 1, act: str | None = None
) -> nn.Sequential:
    """Conv (no bias) + BatchNorm [+ activation] as children ``0``, ``1``, ``2``, like Conv2dNormActivation."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, (kernel_size - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_channels, eps=BN_EPS, momentum=0.01),
    ]
    if act is not None:
        layers.append(_ACTIVATIONS[act]())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Global average pool -> 1x1 ``fc1`` -> ReLU -> 1x1 ``fc2`` -> hard-sigmoid, times the input."""

    def __init__(self, channels: int, squeeze_channels: int) -> None:
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = nn.ReLU()
        self.scale_activation = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
        return scale * x


class InvertedResidual(nn.Module):
    """[1x1 expand] -> kxk depthwise -> [squeeze-excite] -> 1x1 project, residual when shapes allow."""

    def __init__(
        self, in_channels: int, kernel: int, expanded: int, out_channels: int, use_se: bool, act: str, stride: int
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if expanded != in_channels:
            layers.append(_conv_norm_act(in_channels, expanded, 1, act=act))
        layers.append(_conv_norm_act(expanded, expanded, kernel, stride, groups=expanded, act=act))
        if use_se:
            layers.append(SqueezeExcitation(expanded, make_divisible(expanded // 4, 8)))
        layers.append(_conv_norm_act(expanded, out_channels, 1))
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.use_residual else out


class MobileNetV3(nn.Module):
    """``features`` (stem, blocks, 1x1 conv to 6x the last width), average pool, two-layer ``classifier``."""

    def __init__(
        self,
        blocks: tuple[tuple, ...],
        last_channel: int,
        num_classes: int = 1000,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_norm_act(3, STEM_CHANNELS, 3, stride=2, act="HS")]
        channels = STEM_CHANNELS
        for kernel, expanded, out_channels, use_se, act, stride in blocks:
            layers.append(InvertedResidual(channels, kernel, expanded, out_channels, use_se, act, stride))
            channels = out_channels
        layers.append(_conv_norm_act(channels, 6 * channels, 1, act="HS"))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(
            nn.Linear(6 * channels, last_channel),
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(last_channel, num_classes),
        )

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.forward_features(x)).flatten(1)
        return self.classifier(x)


register_family(
    MobileNetV3,
    MOBILENETV3_VARIANTS,
    family="mobilenetv3",
    default_resolution=224,
    reparameterizable=False,
    name=lambda v: f"mobilenetv3-{v}",
    reference_stem=lambda v: f"mobilenetv3_{v}",
)
