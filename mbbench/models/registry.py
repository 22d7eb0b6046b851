"""The model registry: the only way the rest of mbbench reaches a model.

Family modules register a builder per variant (plain data config + factory); :func:`create_model` resolves a
name (aliases and typos handled here), builds the model, initialises it and optionally loads a checkpoint.
"""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from mbbench.errors import UserInputError


class UnknownModelError(UserInputError, KeyError):
    """A model name that is not in the registry (the message suggests the closest one)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class ModelInfo:
    """Registry entry: how to build a model and the facts the CLI and export need about it."""

    name: str
    builder: Callable[..., nn.Module] = field(repr=False, compare=False)
    family: str
    default_resolution: int
    reparameterizable: bool
    reference_stem: str
    config: dict = field(default_factory=dict, compare=False)

    def build(self, **overrides) -> nn.Module:
        return self.builder(**overrides)


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(
    name: str,
    builder: Callable[..., nn.Module],
    *,
    family: str,
    default_resolution: int,
    reparameterizable: bool,
    reference_stem: str,
    config: dict | None = None,
) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} registered twice")
    _REGISTRY[name] = ModelInfo(
        name=name,
        builder=builder,
        family=family,
        default_resolution=default_resolution,
        reparameterizable=reparameterizable,
        reference_stem=reference_stem,
        config=dict(config or {}),
    )


def list_models(family: str | None = None) -> list[str]:
    """Registered model names in registry order (family, then size)."""
    return [name for name, info in _REGISTRY.items() if family is None or info.family == family]


_V2_WIDTH = re.compile(r"^mobilevit-?v2-?(\d+(?:\.\d+)?)$")


def _normalise(name: str) -> str:
    text = name.strip().lower().replace("_", "-").replace(" ", "-")
    match = _V2_WIDTH.match(text)
    if match:
        width = match.group(1)
        # "1.0" / "0.5" are widths; "100" / "050" / "50" are hundredths (timm's mobilevitv2_050).
        hundredths = round(float(width) * 100) if "." in width or width in {"1", "2"} else int(width)
        return f"mobilevitv2-{hundredths:03d}"
    return text


def resolve_name(name: str) -> str:
    """Map a model name or an obvious alias to its registry name, or raise :class:`UnknownModelError`."""
    if name in _REGISTRY:
        return name
    candidate = _normalise(name)
    if candidate in _REGISTRY:
        return candidate
    for info in _REGISTRY.values():
        if candidate == info.reference_stem.replace("_", "-"):
            return info.name
    close = difflib.get_close_matches(candidate, list(_REGISTRY), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "run 'mbbench list' to see the names."
    raise UnknownModelError(f"unknown model '{name}': {hint}")


def model_info(name: str) -> ModelInfo:
    return _REGISTRY[resolve_name(name)]


def reparameterize(model: nn.Module) -> nn.Module:
    """A deploy copy of ``model``: every module with a ``reparameterize()`` method folds its branches.

    Models with nothing to fold come back as a plain copy; the input model is never modified.
    """
    deployed = copy.deepcopy(model)
    for module in list(deployed.modules()):
        if module is not deployed and callable(getattr(module, "reparameterize", None)):
            module.reparameterize()
    return deployed.eval()


def is_reparameterized(model: nn.Module) -> bool:
    """True when no module of ``model`` has branches left to fold."""
    return not any(
        getattr(module, "inference_mode", True) is False for module in model.modules() if hasattr(module, "reparameterize")
    )
