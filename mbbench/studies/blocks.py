"""The blocks study: what SE blocks, skip connections and multi-branch blocks cost in a backbone-like stack.

The stack (:class:`BlockStack`) is MobileOne's: a stride-2 3x3 stem block, then three stages of ``pairs``
(3x3 depthwise, 1x1 pointwise) :class:`~mbbench.models.mobileone.MobileOneBlock` pairs at ``width``, 2x and 4x
``width`` channels, each stage opened by a stride-2 depthwise block; global average pooling and a 1000-way
classifier. The variants (``VARIANTS``):

- ``block-plain``: every block re-parameterized to one conv + ReLU, no SE, no skip connection;
- ``block-se``: the same with MobileOne's squeeze-excite in every block (its global pooling is a reduction
  over the whole feature map that every output element waits for);
- ``block-skip``: the same with an identity skip connection around every block whose input and output
  shapes match, ``x + block(x)`` (an extra read of ``x`` and an Add per block: memory traffic);
- ``block-se-skip``: both;
- ``block-branches-k1`` / ``-k4``: the multi-branch training form, not re-parameterized: k 3x3 (or 1x1)
  conv+BN branches, a 1x1 conv+BN branch on 3x3 blocks and a BatchNorm identity branch where shapes match,
  summed. ``block-plain`` is exactly ``block-branches-k1`` folded (same seed, same weights).

The defaults (width 32, 4 pairs per stage, 224x224 input: 25 blocks, the stages at 56x56, 28x28 and 14x14
like MobileOne's first three) come to about 50 M MACs re-parameterized, a few milliseconds per forward pass
on one core.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from mbbench.models import reparameterize
from mbbench.models.init import initialize
from mbbench.models.mobileone import MobileOneBlock
from mbbench.studies._core import (
    StudyResult,
    StudySettings,
    Variant,
    check_positive,
    parse_names,
    ratio_study,
)
from mbbench.studies._summary import format_macs

STUDY = "blocks"
BASELINE = "plain"
DEFAULT_WIDTH = 32
DEFAULT_PAIRS = 4
DEFAULT_RESOLUTION = 224
MIN_WIDTH = 16  # MobileOne's SE keeps int(C / 16) channels


@dataclass(frozen=True)
class BlockVariant:
    """A stack configuration as data: what the blocks contain and whether they are folded for deployment."""

    label: str
    factor: str
    value: str
    use_se: bool = False
    skip: bool = False
    branches: int = 1
    reparameterized: bool = True


VARIANTS: dict[str, BlockVariant] = {
    "plain": BlockVariant("plain (re-parameterized)", "baseline", "plain"),
    "se": BlockVariant("SE in every block", "se", "every block", use_se=True),
    "skip": BlockVariant("skip connections", "skip", "identity", skip=True),
    "se-skip": BlockVariant("SE + skip connections", "se+skip", "every block", use_se=True, skip=True),
    "branches-k1": BlockVariant("multi-branch, k=1 (unfused)", "branches", "1", reparameterized=False),
    "branches-k4": BlockVariant("multi-branch, k=4 (unfused)", "branches", "4", branches=4, reparameterized=False),
}


class BlockStack(nn.Module):
    """MobileOne-style stem + three stages of (depthwise, pointwise) block pairs + pooled classifier.

    ``skip`` adds ``x + block(x)`` around every block whose input and output shapes match; ``use_se`` puts
    MobileOne's SE block in every block; ``branches`` is MobileOne's k (conv branches per block).
    """

    def __init__(self, width: int = DEFAULT_WIDTH, pairs: int = DEFAULT_PAIRS, branches: int = 1,
                 use_se: bool = False, skip: bool = False, num_classes: int = 1000) -> None:  # fmt: skip
        super().__init__()
        common = dict(num_conv_branches=branches, use_se=use_se)
        blocks = [MobileOneBlock(3, width, 3, stride=2, **common)]
        residual = [False]
        channels = width
        for stage in range(3):
            planes = width * 2**stage
            for index in range(pairs):
                stride = 2 if index == 0 else 1
                blocks.append(MobileOneBlock(channels, channels, 3, stride=stride, groups=channels, **common))
                residual.append(skip and stride == 1)
                blocks.append(MobileOneBlock(channels, planes, 1, **common))
                residual.append(skip and channels == planes)
                channels = planes
        self.blocks = nn.ModuleList(blocks)
        self.residual = residual
        self.classifier = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, residual in zip(self.blocks, self.residual):
            x = x + block(x) if residual else block(x)
        return self.classifier(x.mean(dim=(2, 3)))


def build_network(variant: str, width: int = DEFAULT_WIDTH, pairs: int = DEFAULT_PAIRS,
                  resolution: int = DEFAULT_RESOLUTION, seed: int = 0) -> nn.Module:  # fmt: skip
    """The seeded stack of ``variant`` (a key of :data:`VARIANTS`) in its deploy form, eval mode."""
    spec = VARIANTS[variant]
    stack = BlockStack(width, pairs, spec.branches, spec.use_se, spec.skip)
    stack = initialize(stack, seed=seed, calibration_size=resolution)
    return reparameterize(stack) if spec.reparameterized else stack


def study_variants(names: Sequence[str], width: int, pairs: int, resolution: int, seed: int) -> list[Variant]:
    return [
        Variant(f"block-{name}", VARIANTS[name].factor, VARIANTS[name].value,
                lambda name=name: build_network(name, width, pairs, resolution, seed), resolution,
                reparam=VARIANTS[name].reparameterized)  # fmt: skip
        for name in names
    ]


def block_study(
    variants: str | Sequence[str] | None = None,
    threads="1,2",
    rounds: int = 30,
    *,
    width: int = DEFAULT_WIDTH,
    pairs: int = DEFAULT_PAIRS,
    resolution: int = DEFAULT_RESOLUTION,
    **settings: Any,
) -> StudyResult:
    """Export and measure the stack in each variant; report latency and the ratio to ``block-plain``.

    ``variants``: keys of :data:`VARIANTS` (a list or ``"plain,se"``; default all); the plain stack is always
    measured, as the baseline. Writes ``blocks.csv`` (+ ``.samples.csv``), ``blocks.md`` and ``blocks.png``
    into ``output`` (default ``results/blocks-<host>-<time>/``); the exported networks go to its ``models/``.
    ``metric`` (``"p50"`` or ``"mean"``) is the statistic the ratios compare.
    The other keyword arguments are the :class:`~mbbench.studies.StudySettings` every study takes.
    """
    from mbbench.export.api import MAX_RESOLUTION, MIN_RESOLUTION

    names = parse_names(variants, list(VARIANTS), "block variant")
    if BASELINE not in names:
        names.insert(0, BASELINE)
    check_positive("width", width, MIN_WIDTH, 1024, why=" (MobileOne's SE block needs 16 channels)")
    check_positive("pairs", pairs, 1, 64)
    check_positive("resolution", resolution, MIN_RESOLUTION, MAX_RESOLUTION)
    run = StudySettings.of(threads, rounds, settings)

    def setup(exports) -> list[str]:
        plain = next(r for r in exports if r.model == f"block-{BASELINE}")
        return [
            f"A MobileOne-style stack: stem + 3 stages x {pairs} (3x3 depthwise, 1x1 pointwise) block pairs, widths "
            f"{width}, {2 * width}, {4 * width}, {resolution}x{resolution} input ({format_macs(plain.macs)} "
            f"re-parameterized), exported at opset {run.opset} and measured with ONNX Runtime, {run.rounds} rounds "
            "per thread count. block-plain is block-branches-k1 folded into single convolutions.",
        ]

    return ratio_study(
        STUDY, study_variants(names, width, pairs, resolution, run.seed), f"block-{BASELINE}", run,
        title="mbbench study: blocks", column="configuration",
        describe={f"block-{n}": VARIANTS[n].label for n in names}, setup=setup,
        plot_title=f"Block study: MobileOne-style stack, {resolution}x{resolution}", baseline_label="plain",
    )  # fmt: skip
