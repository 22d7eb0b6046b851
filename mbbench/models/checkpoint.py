"""Loading local checkpoints safely and explaining mismatches.

Files are read with ``torch.load(..., weights_only=True)``: a checkpoint that carries a pickled Python object is
refused before anything in it runs. Official layouts are accepted as they come: a plain ``state_dict``, one
wrapped under ``state_dict`` or ``model``, keys prefixed with ``module.`` (DataParallel) or ``encoder.``
(cvnets segmentation/detection checkpoints).
"""

from __future__ import annotations

import pickle
import tarfile
import zipfile
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


# A checkpoint holds the tensors plus a pickle of their layout, and a training checkpoint more: Adam's two
# moments and an EMA copy (3 more copies), training arguments. Four copies plus this much is the most a
# checkpoint of the model can hold; a "checkpoint" declaring more is refused before anything is inflated.
_SIZE_COPIES = 4
_SIZE_MARGIN_BYTES = 64 << 20


def read_state_dict(path: str | Path, expected_bytes: int | None = None) -> dict[str, torch.Tensor]:
    """Read ``path`` safely and return a flat ``{key: tensor}`` with wrappers and prefixes removed.

    ``expected_bytes`` (the model's state_dict size) bounds what is read: an archive whose declared content
    cannot fit it is refused before any tensor is inflated.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist or is not a file: give the path to a .pth/.pt file")
    _check_container(path, expected_bytes)
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
    state = unwrap_state_dict(obj, source=str(path))
    broken = [key for key, tensor in state.items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if broken:
        raise CheckpointError(
            f"checkpoint '{path}' holds NaN or infinite values in {len(broken)} tensor(s), e.g. '{broken[0]}': "
            "a model with them computes nothing; use another checkpoint"
        )
    return state


def _check_container(path: Path, expected_bytes: int | None) -> None:
    """Refuse what is not a torch.save file, and what declares more bytes than the model could hold."""
    limit = None if expected_bytes is None else _SIZE_COPIES * expected_bytes + _SIZE_MARGIN_BYTES
    too_big = (
        f"refused '{path}': it holds {{size:,}} bytes, more than the model's tensors could take "
        f"({expected_bytes:,} bytes, with room for optimizer state); it is not a checkpoint of this model"
    )
    if zipfile.is_zipfile(path):  # torch.save's format since 1.6; members may claim any inflated size
        try:
            with zipfile.ZipFile(path) as archive:
                declared = sum(member.file_size for member in archive.infolist())
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise CheckpointError(f"cannot read '{path}': a damaged zip archive ({first_line(exc, 120)})") from None
        if limit is not None and declared > limit:
            raise CheckpointError(too_big.format(size=declared))
        return
    size = path.stat().st_size
    if limit is not None and size > limit:  # the tar and raw-pickle formats store tensors uncompressed
        raise CheckpointError(too_big.format(size=size))
    with open(path, "rb") as fh:
        head = fh.read(512)
    if tarfile.is_tarfile(path) or head[:1] == b"\x80":  # legacy torch.save: a tar, or a protocol 2+ pickle
        return
    if not head:
        what = "an empty file"
    elif head[:2] == b"\x1f\x8b":
        what = "a gzip file (decompress it first)"
    elif _is_text(head):
        what = "a text file"
    else:
        what = "neither a zip archive (torch.save), a tar archive nor a pickle"
    raise CheckpointError(f"cannot read '{path}' as a PyTorch checkpoint: it is {what}")


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in head


def state_dict_bytes(model: nn.Module) -> int:
    """The bytes of ``model``'s state_dict tensors (works on the meta device)."""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values())


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
