"""The model registry: where the families register their variants, and the deploy transforms.

As in timm's ``_registry``, this module imports no family: each family module calls :func:`register_family`
with its network class and its variants as plain data, and :mod:`mbbench.models.zoo` imports the families and
answers the look-ups (:func:`~mbbench.models.zoo.list_models`, :func:`~mbbench.models.zoo.resolve_name`,
:func:`~mbbench.models.zoo.model_info`). No import cycle.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass, field
from collections.abc import Callable, Mapping

from torch import nn

from mbbench.errors import OptionError


class UnknownModelError(OptionError, KeyError):
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


def register_family(
    network: Callable[..., nn.Module],
    variants: Mapping[object, Mapping[str, object]],
    *,
    family: str,
    default_resolution: int,
    reparameterizable: bool,
    name: Callable[[object], str],
    reference_stem: Callable[[object], str],
) -> None:
    """Register every variant of a family: ``network(**config, **overrides)`` builds variant ``name(key)`` from
    its ``config`` (plain data); ``reference_stem(key)`` names the official checkpoint's key/shape manifest."""
    for key, config in variants.items():
        register_model(
            name(key),
            functools.partial(_build, network, dict(config)),
            family=family,
            default_resolution=default_resolution,
            reparameterizable=reparameterizable,
            reference_stem=reference_stem(key),
        )


def _build(network: Callable[..., nn.Module], config: dict, **overrides) -> nn.Module:
    return network(**{**config, **overrides})


#: The deployment transforms a block can offer, each a method or attribute on the block (the network knows
#: nothing about export): MobileOne folds its branches, MobileViT v2 switches its patch fold between exactly
#: equal forms (v1 too) and folds its GroupNorm affines into the next convolution.
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
    form (``col2im``, ``unfold``, ``pixel`` or ``reshape``, all exactly equal). ``fuse_norms``: fold norm affines into the
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
