"""``create_model``: build a registry model, initialise it, or load a local checkpoint into it."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from mbbench.models.checkpoint import (
    CheckpointError,
    describe_mismatch,
    is_fused_mobileone,
    read_state_dict,
    shape_signature,
    state_dict_bytes,
)
from mbbench.models.init import initialize
from mbbench.models.profile import count_macs, count_params
from mbbench.models.registry import _REGISTRY, reparameterize
from mbbench.models.zoo import model_info


def create_model(
    name: str,
    weights: str | Path | None = None,
    *,
    seed: int = 0,
    **overrides,
) -> nn.Module:
    """Build registry model ``name`` in eval mode.

    Without ``weights`` the model gets a seeded, latency-faithful random init (see :mod:`mbbench.models.init`).
    With ``weights`` (a local ``.pth``/``.pth.tar``/``.pt``) the checkpoint is loaded safely and strictly; a
    fused MobileOne checkpoint yields the re-parameterized (deploy) model. ``overrides`` go to the family's
    constructor (e.g. ``num_classes=10``, ``fold_impl="reshape"`` for MobileViT v2).
    """
    info = model_info(name)
    if weights is None:
        return initialize(info.build(**overrides), seed=seed)
    with torch.device("meta"):
        expected = state_dict_bytes(info.build(**overrides))
    state = read_state_dict(weights, expected_bytes=expected)
    model = info.build(**overrides)
    if info.reparameterizable and is_fused_mobileone(state):
        model = reparameterize(model)
    problem = describe_mismatch(shape_signature(model), shape_signature(state))
    if problem:
        match = find_matching_model(state)
        hint = (
            f"it matches '{match}' instead"
            if match and match != info.name
            else "it matches no registry model (check the file or pass num_classes=... for a different head)"
        )
        raise CheckpointError(f"checkpoint '{weights}' does not fit '{info.name}': {problem}; {hint}")
    model.load_state_dict(state, strict=True)
    return model.eval()


@lru_cache(maxsize=None)
def _signatures() -> dict[str, tuple[dict, ...]]:
    """Key/shape signatures of every registry model (training and, where it exists, deploy form)."""
    signatures = {}
    with torch.device("meta"):
        for name, info in _REGISTRY.items():
            model = info.build()
            forms = [shape_signature(model)]
            if info.reparameterizable:
                forms.append(shape_signature(reparameterize(model)))
            signatures[name] = tuple(forms)
    return signatures


def find_matching_model(state: dict[str, torch.Tensor]) -> str | None:
    """The registry model whose keys and shapes equal ``state``'s (ignoring the classifier size), if any."""
    found = shape_signature(state)
    body = {k: v for k, v in found.items() if not _is_head(k)}
    for name, forms in _signatures().items():
        for form in forms:
            if form == found:
                return name
    for name, forms in _signatures().items():
        for form in forms:
            if {k: v for k, v in form.items() if not _is_head(k)} == body:
                return name
    return None


def _is_head(key: str) -> bool:
    return key.startswith(("linear.", "classifier.", "head."))  # MobileOne, MobileNetV3 and cvnets, FastViT


@lru_cache(maxsize=None)
def model_stats(name: str, resolution: int | None = None) -> dict[str, int]:
    """Parameter counts (training and deploy form) and MACs of the deploy form at ``resolution``.

    Computed on the meta device: fast, no weights allocated.
    """
    info = model_info(name)
    resolution = resolution or info.default_resolution
    with torch.device("meta"):
        model = info.build()
        deploy = reparameterize(model) if info.reparameterizable else model
        return {
            "params": count_params(deploy),
            "params_train": count_params(model),
            "macs": count_macs(deploy, resolution),
            "resolution": resolution,
        }
