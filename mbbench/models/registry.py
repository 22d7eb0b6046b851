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
    )


def _load_families() -> None:
    # The family modules register themselves on import; importing one twice is a dictionary look-up.
    from mbbench.models import (  # noqa: F401
        fastvit,
        mobileformer,
        mobilenetv3,
        mobileone,
        mobilevit,
        mobilevitv2,
    )


#: Registry order, whichever family module happened to be imported first.
FAMILY_ORDER = ("mobilenetv3", "mobileone", "fastvit", "mobilevit", "mobilevitv2", "mobileformer")


def list_models(family: str | None = None) -> list[str]:
    """Registered model names in registry order (family, then size)."""
    _load_families()
    names = [name for name, info in _REGISTRY.items() if family is None or info.family == family]
    return sorted(names, key=lambda name: FAMILY_ORDER.index(_REGISTRY[name].family))  # stable: size within


_V2_WIDTH = re.compile(r"^mobilevit-?v2-?(\d+(?:\.\d+)?)$")
# torchvision's mobilenet_v3_large, timm's mobilenetv3_large_100 (width 1.0, the only one in the zoo).
_MOBILENETV3 = re.compile(r"^mobilenet-?v3-?(large|small)(?:-100|-1\.0)?$")


def _normalise(name: str) -> str:
    text = name.strip().lower().replace("_", "-").replace(" ", "-")
    match = _V2_WIDTH.match(text)
    if match:
        width = match.group(1)
        # "1.0" / "0.5" are widths; "100" / "050" / "50" are hundredths (timm's mobilevitv2_050).
        hundredths = round(float(width) * 100) if "." in width or width in {"1", "2"} else int(width)
        return f"mobilevitv2-{hundredths:03d}"
    match = _MOBILENETV3.match(text)
    if match:
        return f"mobilenetv3-{match.group(1)}"
    return text


def resolve_name(name: str) -> str:
    """Map a model name or an obvious alias to its registry name, or raise :class:`UnknownModelError`."""
    _load_families()
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


#: The deployment transforms a block can offer, each a method or attribute on the block (the network knows
#: nothing about export): MobileOne folds its branches, MobileViT v2 switches its patch fold between exactly
#: equal forms and folds its GroupNorm affines into the next convolution.
DEPLOY_TRANSFORMS = ("reparameterize", "fold", "fuse_norms")


def _offers(module: nn.Module, transform: str) -> bool:
    if transform == "fold":
        return hasattr(type(module), "fold_impl")
    method = "fold_norm_affine" if transform == "fuse_norms" else transform
    return callable(getattr(module, method, None))


def deploy_transforms(model: nn.Module) -> frozenset[str]:
    """Which of :data:`DEPLOY_TRANSFORMS` some block of ``model`` offers."""
    blocks = [m for m in model.modules() if m is not model]
    return frozenset(t for t in DEPLOY_TRANSFORMS if any(_offers(m, t) for m in blocks))


def deploy(
    model: nn.Module, *, reparameterize: bool = True, fold: str | None = None, fuse_norms: bool = False
) -> nn.Module:
    """A deploy copy of ``model`` with the asked block transforms applied; the input model is never modified.

    ``reparameterize``: fold every multi-branch block into one conv. ``fold``: switch every patch fold to that
    form (``col2im``, ``pixel`` or ``reshape``, all exactly equal). ``fuse_norms``: fold norm affines into the
    following conv (same function up to float rounding; not for loading checkpoints, the norms lose their
    parameters). Transforms a model does not offer are no-ops.
    """
    deployed = copy.deepcopy(model)
    for module in list(deployed.modules()):
        if module is deployed:
            continue
        if reparameterize and _offers(module, "reparameterize"):
            module.reparameterize()
        if fold is not None and _offers(module, "fold"):
            module.fold_impl = fold
        if fuse_norms and _offers(module, "fuse_norms"):
            module.fold_norm_affine()
    return deployed.eval()


def reparameterize(model: nn.Module) -> nn.Module:
    """A deploy copy of ``model`` in which every multi-branch block is folded (see :func:`deploy`).

    Models with nothing to fold come back as a plain copy; the input model is never modified.
    """
    return deploy(model, reparameterize=True)


def is_reparameterized(model: nn.Module) -> bool:
    """True when no module of ``model`` has branches left to fold."""
    return not any(
        getattr(module, "inference_mode", True) is False for module in model.modules() if hasattr(module, "reparameterize")
    )
