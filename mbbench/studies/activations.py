"""The activation study: one plain CNN, identical except for its activation (MobileOne paper, activation table).

Activations (``ACTIVATIONS``, in the table's order, ReLU6 and Mish as extras): ReLU, GELU, SE-ReLU (MobileOne's
squeeze-excite block, then ReLU), SELU, Hard-Swish, SiLU (Swish), ARelu, Dynamic ReLU A and B, Dynamic Shift-Max,
ReLU6, Mish. The three that PyTorch does not ship are defined here from their papers.

The network (:class:`PlainCNN`) is ``depth`` layers of 3x3 conv + BatchNorm + activation in three stages of
``width``, 2x and 4x ``width`` channels, each stage opened by a stride-2 conv, then global average pooling
and a 1000-way linear classifier. The defaults (30 layers as in the paper, width 16, 64x64 input, so the
stages run at 32x32, 16x16 and 8x8) come to about 70 M MACs, a few milliseconds per forward pass on one laptop
core: the twelve variants are measured in about a minute. The paper's network is larger; what matters for
the ratios is the same: convolutions of the same cost around each activation.

Every variant is built from the same seed with its convolutions, norms and classifier registered before the
activations, so all variants share the very same convolution weights; only the activation (and the
BatchNorm statistics it induces, calibrated by :func:`mbbench.models.init.initialize`) differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mbbench.models.init import initialize
from mbbench.models.mobileone import SEBlock
from mbbench.studies._core import (
    StudyResult,
    StudySettings,
    Variant,
    check_positive,
    parse_names,
    ratio_study,
)
from mbbench.studies._summary import format_macs

STUDY = "activations"
BASELINE = "relu"
DEFAULT_DEPTH = 30
DEFAULT_WIDTH = 16
DEFAULT_RESOLUTION = 64
#: MobileOne's SE keeps int(C / 16) channels; below 16 channels it would have none.
MIN_WIDTH = 16


# --- the activations that PyTorch does not ship -----------------------------------------------------------------


class ARelu(nn.Module):
    """AReLU, attention-based ReLU (Chen et al., 2020): an element-wise attention on ReLU's two halves.

    ``x > 0: (1 + sigmoid(beta)) * x``, ``x <= 0: clamp(alpha, 0.01, 0.99) * x``, with learnable scalars
    ``alpha`` and ``beta`` initialised to the paper's 0.90 and 2.0. Written as the authors' code does,
    ``relu(x) * (1 + sigmoid(beta)) - relu(-x) * alpha``: that is the graph a deployment of it runs.
    """

    def __init__(self, alpha: float = 0.90, beta: float = 2.0) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(alpha))
        self.beta = nn.Parameter(torch.tensor(beta))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha.clamp(0.01, 0.99)
        beta = 1.0 + torch.sigmoid(self.beta)
        return F.relu(x) * beta - F.relu(-x) * alpha


class DynamicReLU(nn.Module):
    """Dynamic ReLU (Chen et al., ECCV 2020): ``y_c = max_k (a_c^k(x) * x_c + b_c^k(x))`` over K linear pieces.

    The slopes and intercepts come from a hyper-function of the whole input, like an SE block: global average
    pool -> FC (C -> C/``reduction``) -> ReLU -> FC -> ``2 * sigmoid - 1`` gives residuals in [-1, 1], scaled by
    lambda_a = 1 (slopes) and lambda_b = 0.5 (intercepts) and added to the initial a^1 = 1, a^2..K = 0,
    b = 0, so the function starts as a ReLU. Variant ``"A"`` shares one set of 2K coefficients across
    channels and space; ``"B"`` has its own per channel (2KC outputs). Both are spatially shared.
    """

    def __init__(self, channels: int, variant: str = "B", pieces: int = 2, reduction: int = 4) -> None:
        super().__init__()
        if variant not in ("A", "B"):
            raise ValueError(f"Dynamic ReLU variant must be 'A' or 'B', not {variant!r}")
        self.variant = variant
        self.pieces = pieces
        self.groups = 1 if variant == "A" else channels  # how many channel sets of coefficients
        self.fc1 = nn.Linear(channels, max(1, channels // reduction))
        self.fc2 = nn.Linear(max(1, channels // reduction), 2 * pieces * self.groups)
        self.register_buffer("lambdas", torch.tensor([1.0] * pieces + [0.5] * pieces))
        self.register_buffer("initial", torch.tensor([1.0] + [0.0] * (2 * pieces - 1)))

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 2K, groups, 1, 1): slopes a^1..a^K then intercepts b^1..b^K, per channel set."""
        theta = 2.0 * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3)))))) - 1.0
        coefs = theta.reshape(x.shape[0], self.groups, 2 * self.pieces) * self.lambdas + self.initial
        return coefs.transpose(1, 2).reshape(x.shape[0], 2 * self.pieces, self.groups, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coefs = self.coefficients(x)
        out = x * coefs[:, 0] + coefs[:, self.pieces]
        for k in range(1, self.pieces):
            out = torch.maximum(out, x * coefs[:, k] + coefs[:, self.pieces + k])
        return out


class DynamicShiftMax(nn.Module):
    """Dynamic Shift-Max (MicroNet, Li et al., ICCV 2021): ``y_i = max_k sum_j a^k_ij(x) * x_((i + j*C/G) mod C)``.

    J = 2 terms (the channel itself and its circular shift by C/G channels, G = ``groups``) and K = 2 pieces.
    The K*J*C coefficients come from an SE-like hyper-function: global average pool -> FC (C -> C/``reduction``)
    -> ReLU -> FC (-> K*J*C) -> hard sigmoid, mapped to residuals in [-``scale``, ``scale``] (the authors use 2)
    and added to the initial a^1_i0 = 1, all others 0, so it starts as a ReLU on the unshifted input.
    """

    def __init__(self, channels: int, groups: int = 4, pieces: int = 2, reduction: int = 4, scale: float = 2.0):
        super().__init__()
        if channels % groups:
            raise ValueError(f"Dynamic Shift-Max: {channels} channels do not split into {groups} groups")
        self.pieces, self.terms, self.scale = pieces, 2, scale
        self.shift = channels // groups
        self.fc1 = nn.Linear(channels, max(1, channels // reduction))
        self.fc2 = nn.Linear(max(1, channels // reduction), pieces * self.terms * channels)
        initial = torch.zeros(pieces, self.terms)
        initial[0, 0] = 1.0
        self.register_buffer("initial", initial.reshape(1, pieces, self.terms, 1, 1, 1))

    def coefficients(self, x: torch.Tensor) -> torch.Tensor:
        """(B, K, J, C, 1, 1): a^k_ij for piece k, term j (0: the channel, 1: its shifted partner), channel i."""
        batch, channels = x.shape[:2]
        hidden = F.relu(self.fc1(x.mean(dim=(2, 3))))
        residual = self.scale * (2.0 * F.hardsigmoid(self.fc2(hidden)) - 1.0)
        return residual.reshape(batch, self.pieces, self.terms, channels, 1, 1) + self.initial

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coefs = self.coefficients(x)
        # out[i] = x[(i + shift) mod C]: roll moves element i to i + shifts, hence the minus
        shifted = torch.roll(x, shifts=-self.shift, dims=1)
        out = coefs[:, 0, 0] * x + coefs[:, 0, 1] * shifted
        for k in range(1, self.pieces):
            out = torch.maximum(out, coefs[:, k, 0] * x + coefs[:, k, 1] * shifted)
        return out


# --- the activation table as data -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Activation:
    label: str
    make: Callable[[int], nn.Module]  # channels -> module


ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation("ReLU", lambda c: nn.ReLU()),
    "gelu": Activation("GELU", lambda c: nn.GELU()),
    "se-relu": Activation("SE-ReLU", lambda c: nn.Sequential(SEBlock(c), nn.ReLU())),
    "selu": Activation("SELU", lambda c: nn.SELU()),
    "hardswish": Activation("Hard-Swish", lambda c: nn.Hardswish()),
    "silu": Activation("SiLU (Swish)", lambda c: nn.SiLU()),
    "arelu": Activation("ARelu", lambda c: ARelu()),
    "dyrelu-a": Activation("DY-ReLU-A", lambda c: DynamicReLU(c, "A")),
    "dyrelu-b": Activation("DY-ReLU-B", lambda c: DynamicReLU(c, "B")),
    "dyshiftmax": Activation("Dynamic Shift-Max", lambda c: DynamicShiftMax(c)),
    "relu6": Activation("ReLU6", lambda c: nn.ReLU6()),
    "mish": Activation("Mish", lambda c: nn.Mish()),
}


def make_activation(name: str, channels: int) -> nn.Module:
    return ACTIVATIONS[name].make(channels)


# --- the network ----------------------------------------------------------------------------------------------


class PlainCNN(nn.Module):
    """``depth`` x (3x3 conv, BatchNorm, activation) in three stages (``width``, 2x, 4x channels), pool, classifier.

    Each stage opens with a stride-2 conv (the first one is the stem, from 3 channels). Modules are registered
    convs, norms, classifier, then activations, so a seeded init gives every variant the same weights for all
    but the activations.
    """

    def __init__(self, activation: str, depth: int = DEFAULT_DEPTH, width: int = DEFAULT_WIDTH,
                 num_classes: int = 1000) -> None:  # fmt: skip
        super().__init__()
        self.convs, self.norms, channels = nn.ModuleList(), nn.ModuleList(), []
        in_channels = 3
        for index in range(depth):
            stage = index * 3 // depth
            opens_stage = index == 0 or stage != (index - 1) * 3 // depth
            out_channels = width * 2**stage
            self.convs.append(nn.Conv2d(in_channels, out_channels, 3, 2 if opens_stage else 1, 1, bias=False))
            self.norms.append(nn.BatchNorm2d(out_channels))
            channels.append(out_channels)
            in_channels = out_channels
        self.classifier = nn.Linear(in_channels, num_classes)
        self.acts = nn.ModuleList(make_activation(activation, c) for c in channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv, norm, act in zip(self.convs, self.norms, self.acts):
            x = act(norm(conv(x)))
        return self.classifier(x.mean(dim=(2, 3)))


def build_network(activation: str, depth: int = DEFAULT_DEPTH, width: int = DEFAULT_WIDTH,
                  resolution: int = DEFAULT_RESOLUTION, seed: int = 0) -> PlainCNN:  # fmt: skip
    """The seeded network with ``activation``, in eval mode (BatchNorm calibrated at ``resolution``)."""
    return initialize(PlainCNN(activation, depth, width), seed=seed, calibration_size=resolution)


def study_variants(activations: Sequence[str], depth: int, width: int, resolution: int, seed: int) -> list[Variant]:
    return [
        Variant(f"act-{name}", "activation", name,
                lambda name=name: build_network(name, depth, width, resolution, seed), resolution)  # fmt: skip
        for name in activations
    ]


# --- the study ------------------------------------------------------------------------------------------------


def activation_study(
    activations: str | Sequence[str] | None = None,
    threads="1,2",
    rounds: int = 30,
    *,
    depth: int = DEFAULT_DEPTH,
    width: int = DEFAULT_WIDTH,
    resolution: int = DEFAULT_RESOLUTION,
    **settings: Any,
) -> StudyResult:
    """Export and measure the plain CNN once per activation; report latency and the ratio to ReLU.

    ``activations``: names from :data:`ACTIVATIONS` (a list or ``"relu,gelu"``; default all). ReLU is always
    measured, as the baseline. Writes ``activations.csv`` (+ ``.samples.csv``), ``activations.md`` and
    ``activations.png`` into ``output`` (default ``results/activations-<host>-<time>/``); the exported networks
    go to its ``models/``. ``metric`` (``"p50"`` or ``"mean"``) is the statistic the ratios compare.
    The other keyword arguments are the :class:`~mbbench.studies.StudySettings` every study takes.
    """
    from mbbench.export.api import MAX_RESOLUTION, MIN_RESOLUTION

    names = parse_names(activations, list(ACTIVATIONS), "activation")
    if BASELINE not in names:
        names.insert(0, BASELINE)
    check_positive("depth", depth, 1, 200)
    check_positive("width", width, MIN_WIDTH, 1024, why=" (MobileOne's SE block needs 16 channels)")
    check_positive("resolution", resolution, MIN_RESOLUTION, MAX_RESOLUTION)
    run = StudySettings.of(threads, rounds, settings)

    def setup(exports) -> list[str]:
        return [
            f"A {depth}-layer plain CNN (3x3 conv + BatchNorm + activation; widths {width}, {2 * width}, "
            f"{4 * width}; {resolution}x{resolution} input; {format_macs(exports[0].macs)} with ReLU), identical "
            f"except for its activation, exported at opset {run.opset} and measured with ONNX Runtime, "
            f"{run.rounds} rounds per thread count.",
        ]

    return ratio_study(
        STUDY, study_variants(names, depth, width, resolution, run.seed), f"act-{BASELINE}", run,
        title="mbbench study: activations", column="activation",
        describe={f"act-{n}": ACTIVATIONS[n].label for n in names}, setup=setup,
        plot_title=f"Activation study: {depth}-layer plain CNN, {resolution}x{resolution}", baseline_label="ReLU",
    )  # fmt: skip
