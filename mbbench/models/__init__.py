"""The model zoo: MobileOne s0-s4, MobileViT v1 (xxs, xs, s) and MobileViT v2 (0.5-2.0).

Everything outside this package reaches a model through the registry: :func:`list_models`,
:func:`create_model`, :func:`reparameterize`.
"""

from mbbench.models import mobileone, mobilevit, mobilevitv2  # noqa: F401  (registers the families)
from mbbench.models.checkpoint import CheckpointError, read_state_dict
from mbbench.models.factory import create_model, find_matching_model, model_stats
from mbbench.models.mobilevitv2 import FOLD_IMPLS, fold_norm_affine, set_fold_impl
from mbbench.models.profile import count_macs, count_params
from mbbench.models.registry import (
    ModelInfo,
    UnknownModelError,
    is_reparameterized,
    list_models,
    model_info,
    reparameterize,
    resolve_name,
)

__all__ = [
    "CheckpointError",
    "FOLD_IMPLS",
    "ModelInfo",
    "UnknownModelError",
    "count_macs",
    "count_params",
    "create_model",
    "find_matching_model",
    "fold_norm_affine",
    "is_reparameterized",
    "list_models",
    "model_info",
    "model_stats",
    "read_state_dict",
    "reparameterize",
    "resolve_name",
    "set_fold_impl",
]
