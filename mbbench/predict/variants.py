"""Random architecture variants of MobileOne, MobileNetV3 and MobileViT: what a predictor learns from and is tested
on. The zoo's own 31 models are never among them, so predicting the zoo is a held-out test.

A variant is plain data (family, its constructor's arguments, the input resolution, a name that says all of it)
drawn from a seeded generator: widths, depths (MobileNetV3's block list), kernel sizes, expansion ratios, SE on or
off, activations, transformer widths, and the resolution. :func:`build` makes the PyTorch module (the family's
own class, MobileOne re-parameterized at export as its authors instruct).
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

FAMILIES = ("mobileone", "mobilenetv3", "mobilevit")
RESOLUTIONS = (128, 160, 192, 224, 256)


@dataclass(frozen=True)
class Variant:
    family: str
    config: dict[str, Any]
    resolution: int

    @property
    def name(self) -> str:
        digest = hashlib.sha256(json.dumps([self.family, self.config, self.resolution], sort_keys=True,
                                           default=list).encode()).hexdigest()[:8]
        return f"{self.family}-var-{digest}-{self.resolution}"


def random_variants(count: int, seed: int = 0, families: tuple[str, ...] = FAMILIES) -> list[Variant]:
    """``count`` different variants, the families taken in turn, from ``seed`` (the same seed, the same
    variants)."""
    return list(itertools.islice(iter_variants(seed, families), count))


def iter_variants(seed: int = 0, families: tuple[str, ...] = FAMILIES) -> Iterator[Variant]:
    """Variants without end, as :func:`random_variants` draws them (a draw equal to an earlier one is drawn
    again)."""
    rng = np.random.default_rng([seed, 26])
    seen: set[str] = set()
    while True:
        family = families[len(seen) % len(families)]
        variant = Variant(family, _DRAW[family](rng), int(rng.choice(RESOLUTIONS)))
        if variant.name not in seen:
            seen.add(variant.name)
            yield variant


def _mobileone(rng) -> dict[str, Any]:
    widths = sorted(float(w) for w in rng.choice([0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0], size=4))
    return {"width_multipliers": widths, "num_conv_branches": 1, "use_se": bool(rng.random() < 0.3)}


def _mobilenetv3(rng) -> dict[str, Any]:
    blocks, channels = [], 16
    strides_left = 4
    for _ in range(int(rng.integers(6, 15))):
        stride = 2 if strides_left and rng.random() < 0.35 else 1
        strides_left -= stride == 2
        out = int(min(192, max(16, channels * rng.choice([1.0, 1.0, 1.25, 1.5]) // 8 * 8)))
        expanded = int(max(out, channels) * rng.choice([2, 3, 4, 6]) // 8 * 8)
        blocks.append((int(rng.choice([3, 5])), expanded, out, bool(rng.random() < 0.5),
                       str(rng.choice(["RE", "HS"])), stride))
        channels = out
    return {"blocks": blocks, "last_channel": int(rng.choice([512, 1024, 1280]))}


def _mobilevit(rng) -> dict[str, Any]:
    base = rng.choice([16, 24, 32])
    channels = [int(base), int(base * 1.5), int(base * 2), int(base * 2.5), int(base * 3)]
    channels = [max(8, c // 8 * 8) for c in channels]
    dims = sorted(int(d) for d in rng.choice([48, 64, 80, 96, 120, 144], size=3))
    dims = [d // 4 * 4 for d in dims]  # 4 heads
    return {"expansion": int(rng.choice([2, 4])), "channels": channels, "dims": dims,
            "ffn": [2 * d for d in dims]}


_DRAW = {"mobileone": _mobileone, "mobilenetv3": _mobilenetv3, "mobilevit": _mobilevit}


def build(variant: Variant, seed: int = 0):
    """The variant's PyTorch module, seeded, in eval mode."""
    import torch

    from mbbench.models.mobilenetv3 import MobileNetV3
    from mbbench.models.mobileone import MobileOne
    from mbbench.models.mobilevit import MobileViT

    torch.manual_seed(seed)
    config = variant.config
    if variant.family == "mobileone":
        module = MobileOne(tuple(config["width_multipliers"]), config["num_conv_branches"], config["use_se"])
    elif variant.family == "mobilenetv3":
        module = MobileNetV3(tuple(tuple(b) for b in config["blocks"]), config["last_channel"])
    elif variant.family == "mobilevit":
        module = MobileViT(config["expansion"], tuple(config["channels"]), tuple(config["dims"]),
                           tuple(config["ffn"]))
    else:
        raise ValueError(f"unknown family {variant.family!r}")
    return module.eval()
