"""Loading local checkpoints safely and explaining mismatches.

Files are read with ``torch.load(..., weights_only=True)``: a checkpoint that carries a pickled Python object is
refused before anything in it runs. Official layouts are accepted as they come: a plain ``state_dict``, one
wrapped under ``state_dict`` or ``model``, keys prefixed with ``module.`` (DataParallel) or ``encoder.``
(cvnets segmentation/detection checkpoints).
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from mbbench.errors import UserInputError, first_line

_WRAPPERS = ("state_dict", "model")
_PREFIXES = ("module.", "encoder.")
_SUFFIXES = (".pth", ".pth.tar", ".pt", ".tar", ".bin", ".ckpt")


class CheckpointError(UserInputError):
    """A checkpoint file that cannot be read, is unsafe, or does not fit the model."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read ``path`` safely and return a flat ``{key: tensor}`` with wrappers and prefixes removed."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist or is not a file: give the path to a .pth/.pt file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "GLOBAL" in line), None)
        if detail is None:  # not a pickled object graph at all: plain garbage
            raise CheckpointError(f"cannot read '{path}' as a PyTorch checkpoint (not a torch.save file)") from None
        raise CheckpointError(
            f"refused to load '{path}': it holds a pickled Python object that safe loading (weights_only=True) "
            f"does not allow ({detail[:160]}); only a plain state_dict of tensors can be loaded"
        ) from None
    except Exception as exc:  # an untrusted file can fail in any way; none of it may escape as a traceback
        raise CheckpointError(
            f"cannot read '{path}' as a PyTorch checkpoint ({type(exc).__name__}: {first_line(exc, 160)})"
        ) from None
    return unwrap_state_dict(obj, source=str(path))


def unwrap_state_dict(obj: object, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Find the tensor mapping inside a loaded checkpoint and strip a common ``module.``/``encoder.`` prefix."""
    for _ in range(2):  # e.g. {"model": {"state_dict": ...}} occurs in the wild
        if isinstance(obj, Mapping) and not _is_tensor_mapping(obj):
            inner = next((obj[k] for k in _WRAPPERS if k in obj and isinstance(obj[k], Mapping)), None)
            if inner is None:
                break
            obj = inner
    if not isinstance(obj, Mapping) or not _is_tensor_mapping(obj):
        raise CheckpointError(
            f"'{source}' holds no state_dict (expected a mapping of tensors, possibly under 'state_dict' or 'model')"
        )
    state = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    for prefix in _PREFIXES:
        if state and all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state


def _is_tensor_mapping(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())


def is_fused_mobileone(state: Mapping[str, torch.Tensor]) -> bool:
    """True for a MobileOne inference-form checkpoint (``reparam_conv`` instead of branches)."""
    return any(".reparam_conv." in k or k.startswith("reparam_conv.") for k in state)


def shape_signature(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> dict[str, tuple[int, ...]]:
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    return {k: tuple(v.shape) for k, v in state.items()}


def describe_mismatch(
    expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]], examples: int = 3
) -> str | None:
    """One sentence on how ``found`` differs from ``expected``, or None when keys and shapes all match."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    misshaped = [k for k in expected if k in found and tuple(found[k]) != tuple(expected[k])]
    if not (missing or unexpected or misshaped):
        return None
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if keys:
            shown = ", ".join(
                f"{k} {list(found[k])} vs {list(expected[k])}" if label == "mis-shaped" else k for k in keys[:examples]
            )
            more = f", +{len(keys) - examples} more" if len(keys) > examples else ""
            parts.append(f"{len(keys)} {label} ({shown}{more})")
    return "; ".join(parts)
