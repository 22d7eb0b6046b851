"""``export_onnx``: a registry model (or any module) to one self-contained, verified ONNX file.

Every file mbbench writes is checked before it lands: it declares the asked opset and uses no newer op, it
passes ``onnx.checker``, and ONNX Runtime computes what PyTorch computes (within ``tolerance``, relative). The
``.onnx`` and its JSON manifest are written atomically; a failed or interrupted export leaves nothing.
"""

from __future__ import annotations

import copy
import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import onnx
import torch
from torch import nn

from mbbench._io import atomic_write_bytes, atomic_write_text, sha256_bytes
from mbbench.errors import MbbenchError, UserInputError, first_line
from mbbench.export.exporters import EXPORTERS, INPUT_NAME, OUTPUT_NAME, run_exporter
from mbbench.export.opset import (
    COL2IM_OPSET,
    DYNAMO_MIN_OPSET,
    OpsetError,
    check_opset_request,
    ops_newer_than,
    verify_opset,
)
from mbbench.export.parity import parity_errors
from mbbench.export.simplify import simplify_model

FOLDS = ("auto", "col2im", "reshape")
DEFAULT_OPSET = 17
MIN_RESOLUTION = 32  # five stride-2 stages: smaller inputs leave no pixels for the last stage
MAX_RESOLUTION = 4096
# fold path -> the models' fold_impl that produces it. The reshape path uses the "pixel" form (DepthToSpace
# fold, one-hot strided-conv unfold): measured faster than a 6-D Transpose, whose ONNX Runtime kernel scales
# badly with threads (scripts/bench_fold.py).
_FOLD_IMPL = {"col2im": "unfold", "reshape": "pixel"}


class ExportError(MbbenchError):
    """The model could not be exported as asked (the message says why and what would work)."""


class ParityError(ExportError):
    """ONNX Runtime's output differs from PyTorch's by more than the tolerance."""


@dataclass
class ExportResult:
    """What an export produced: the manifest written next to the ``.onnx`` file, as a dataclass."""

    model: str
    family: str | None
    path: str
    resolution: int
    batch: int
    dynamic_batch: bool
    opset: int
    exporter: str
    fold: str | None
    fold_impl: str | None
    norms_fused: bool | None
    reparameterized: bool
    weights: str | None
    seed: int | None
    nodes_before: int
    nodes_after: int
    simplified: bool
    simplify_error: str | None
    params: int
    macs: int
    parity_max_abs: float
    parity_max_rel: float
    tolerance: float
    sha256: str
    export_seconds: float
    input_name: str = INPUT_NAME
    output_name: str = OUTPUT_NAME
    input_shape: list = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    created: str = ""
    mbbench_version: str = ""
    versions: dict = field(default_factory=dict)
    skipped: bool = False

    @property
    def manifest_path(self) -> str:
        return str(Path(self.path).with_suffix(".json"))

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("skipped")
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_manifest(cls, path: str | Path) -> "ExportResult":
        data = json.loads(Path(path).read_text())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def versions() -> dict[str, str]:
    from importlib.metadata import version

    import onnxruntime

    import mbbench

    return {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "onnxsim": version("onnxsim"),
        "mbbench": mbbench.__version__,
    }


def output_filename(
    name: str, resolution: int, opset: int, reparameterized: bool = True, fold: str | None = None
) -> str:
    """``<name>-<resolution>-opset<N>[-unfused][-<fold>].onnx``."""
    parts = [name, str(resolution), f"opset{opset}"]
    if not reparameterized:
        parts.append("unfused")
    if fold:
        parts.append(fold)
    return "-".join(parts) + ".onnx"


def _has_fold(model: nn.Module) -> bool:
    return any(hasattr(m, "fold_impl") for m in model.modules())


def _has_branches(model: nn.Module) -> bool:
    return any(callable(getattr(m, "reparameterize", None)) for m in model.modules() if m is not model)


def _fold_candidates(fold: str, opset: int) -> list[str]:
    if fold == "col2im":
        if opset < COL2IM_OPSET:
            raise UserInputError(
                f"--fold col2im needs opset {COL2IM_OPSET} or newer (ONNX has no Col2Im at {opset}): "
                f"use --fold reshape or --opset {COL2IM_OPSET}"
            )
        return ["col2im"]
    if fold == "reshape":
        return ["reshape"]
    return ["col2im", "reshape"] if opset >= COL2IM_OPSET else ["reshape"]


def _exporter_order(exporter: str, opset: int) -> list[str]:
    if exporter in EXPORTERS:
        return [exporter]
    return ["dynamo", "torchscript"] if opset >= DYNAMO_MIN_OPSET else ["torchscript", "dynamo"]


def _check_output_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create output folder '{directory}': {exc.strerror}") from None
    if not directory.is_dir() or not os.access(directory, os.W_OK):
        raise UserInputError(f"output folder '{directory}' is not writable: choose another with --output-dir")


def export_onnx(
    model_or_name: str | nn.Module,
    path: str | Path | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    resolution: int | None = None,
    batch: int = 1,
    dynamic_batch: bool = False,
    weights: str | Path | None = None,
    reparam: bool = True,
    fold: str = "auto",
    fuse_norms: bool = True,
    exporter: str = "auto",
    simplify: bool = True,
    tolerance: float = 1e-4,
    output_dir: str | Path = "models",
    force: bool = False,
    seed: int = 0,
    name: str | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a registry model (by name) or a module to ONNX, verify it, and write it with its manifest.

    ``path`` defaults to ``output_dir/<name>-<resolution>-opset<N>[-unfused][-<fold>].onnx``. An existing file
    is kept (the result has ``skipped=True``) unless ``force``. ``fold`` (MobileViT v2): ``auto`` takes
    ``Col2Im`` where the opset has it and the exporter succeeds, else the exactly equal reshape form.
    ``fuse_norms`` (MobileViT v2): fold each GroupNorm's scale and shift into the 1x1 conv that follows it,
    so the graph normalises with one op instead of three (the same function up to float rounding; the parity
    check covers it). ``exporter``: ``auto`` uses TorchScript below opset 18 and dynamo from 18, each falling
    back to the other.
    Raises :class:`ExportError` (or :class:`~mbbench.errors.UserInputError`) with a one-line reason.
    """
    stage = on_stage or (lambda _stage: None)
    started = time.perf_counter()
    opset = check_opset_request(opset)
    if fold not in FOLDS:
        raise UserInputError(f"unknown fold '{fold}': choose one of {', '.join(FOLDS)}")
    if exporter not in ("auto", *EXPORTERS):
        raise UserInputError(f"unknown exporter '{exporter}': choose auto, torchscript or dynamo")
    if batch < 1:
        raise UserInputError(f"batch must be at least 1, not {batch}")
    if not tolerance > 0:
        raise UserInputError(f"tolerance must be positive, not {tolerance}")

    stage("building")
    from mbbench.models import (
        count_macs,
        count_params,
        create_model,
        is_reparameterized,
        model_info,
        reparameterize,
    )

    if isinstance(model_or_name, nn.Module):
        module = model_or_name.eval()
        info = None
        label = name or type(module).__name__.lower()
        if weights is not None:
            raise UserInputError("weights= applies to registry names; load the weights into your module yourself")
    else:
        info = model_info(model_or_name)
        label = info.name
    resolution = resolution or (info.default_resolution if info else 224)
    if not MIN_RESOLUTION <= resolution <= MAX_RESOLUTION:
        raise UserInputError(
            f"resolution {resolution} is outside {MIN_RESOLUTION}-{MAX_RESOLUTION}: the five stride-2 stages "
            f"need at least {MIN_RESOLUTION} pixels"
        )
    output_dir = Path(output_dir)

    # Decide the names before any work, so an existing file is skipped cheaply.
    if info is not None:
        with torch.device("meta"):
            probe = info.build()
    else:
        probe = module
    folds = _fold_candidates(fold, opset) if _has_fold(probe) else [None]
    reparameterized = reparam or not _has_branches(probe)
    if path is not None:
        targets = {f: Path(path) for f in folds}
    else:
        targets = {f: output_dir / output_filename(label, resolution, opset, reparameterized, f) for f in folds}
    existing = [p for p in targets.values() if p.exists()]
    if existing and not force:
        manifest = existing[0].with_suffix(".json")
        if manifest.exists():
            try:
                result = ExportResult.from_manifest(manifest)
                result.skipped = True
                return result
            except (ValueError, TypeError):
                pass
        raise UserInputError(f"'{existing[0]}' exists but has no readable manifest: use --force to re-export it")
    _check_output_dir(targets[folds[0]].parent)

    if info is not None:
        module = create_model(info.name, weights=weights, seed=seed)
        if not reparameterized and is_reparameterized(module):
            raise UserInputError(
                f"'{weights}' is a fused (inference-form) checkpoint: it has no branches to export with "
                "--no-reparam; use an unfused checkpoint or drop --no-reparam"
            )
    if reparam and _has_branches(module):
        module = reparameterize(module)
    module.eval()
    has_norms = any(callable(getattr(m, "fold_norm_affine", None)) for m in module.modules())
    if has_norms and fuse_norms:
        from mbbench.models import fold_norm_affine

        reference_module, module = module, fold_norm_affine(module)
    else:
        reference_module = module

    generator = torch.Generator().manual_seed(seed)
    example = torch.randn(batch, 3, resolution, resolution, generator=generator)
    attempts: list[str] = []
    exported = None
    chosen_fold = chosen_exporter = None
    needs: dict[str, int] = {}
    for fold_path in folds:
        if fold_path is not None:
            from mbbench.models import set_fold_impl

            set_fold_impl(module, _FOLD_IMPL[fold_path])
        for exporter_name in _exporter_order(exporter, opset):
            stage(f"exporting ({exporter_name}{', ' + fold_path if fold_path else ''})")
            try:
                candidate = run_exporter(exporter_name, module, example, opset, dynamic_batch)
                verify_opset(candidate, opset)
            except OpsetError as exc:
                if "does not have" in str(exc):
                    needs.update(ops_newer_than(candidate, opset))
                attempts.append(f"{exporter_name}{'/' + fold_path if fold_path else ''}: {exc}")
                continue
            except Exception as exc:  # exporter internals fail in many ways; try the next path
                attempts.append(f"{exporter_name}{'/' + fold_path if fold_path else ''}: {type(exc).__name__}: {first_line(exc)}")
                continue
            exported, chosen_fold, chosen_exporter = candidate, fold_path, exporter_name
            break
        if exported is not None:
            break
    if exported is None:
        hint = ""
        if needs:
            minimum = max(needs.values())
            hint = f" This model needs opset {minimum} or newer ({', '.join(sorted(needs))})."
        raise ExportError(f"could not export {label} at opset {opset}: {'; '.join(attempts)}.{hint}")

    nodes_before = len(exported.graph.node)
    simplify_error = None
    final = exported
    if simplify:
        stage("simplifying")
        final, simplify_error = simplify_model(exported)
        verify_opset(final, opset)
    onnx.checker.check_model(final)
    data = final.SerializeToString()

    stage("checking parity")
    with torch.no_grad():
        expected = reference_module(example).numpy()
    max_abs, max_rel = parity_errors(data, {INPUT_NAME: example.numpy()}, expected)
    if not max_rel <= tolerance:
        raise ParityError(
            f"{label}: ONNX Runtime differs from PyTorch by {max_rel:.2e} (relative; max abs {max_abs:.2e}), "
            f"above the tolerance {tolerance:g}; nothing was written"
        )
    if dynamic_batch:
        other = torch.randn(batch + 1, 3, resolution, resolution, generator=generator)
        with torch.no_grad():
            expected_other = reference_module(other).numpy()
        _, rel_other = parity_errors(data, {INPUT_NAME: other.numpy()}, expected_other)
        if not rel_other <= tolerance:
            raise ParityError(f"{label}: the dynamic-batch graph is wrong at batch {batch + 1} ({rel_other:.2e})")

    meta = copy.deepcopy(module).to("meta")
    result = ExportResult(
        model=label,
        family=info.family if info else None,
        path=str(targets[chosen_fold]),
        resolution=resolution,
        batch=batch,
        dynamic_batch=dynamic_batch,
        opset=opset,
        exporter=chosen_exporter,
        fold=chosen_fold,
        fold_impl=_FOLD_IMPL[chosen_fold] if chosen_fold else None,
        norms_fused=fuse_norms if has_norms else None,
        reparameterized=reparameterized,
        weights=str(weights) if weights is not None else None,
        seed=None if weights is not None else seed,
        nodes_before=nodes_before,
        nodes_after=len(final.graph.node),
        simplified=simplify and simplify_error is None,
        simplify_error=simplify_error,
        params=count_params(reference_module),
        macs=count_macs(meta, resolution),
        parity_max_abs=max_abs,
        parity_max_rel=max_rel,
        tolerance=tolerance,
        sha256=sha256_bytes(data),
        export_seconds=0.0,
        input_shape=["batch" if dynamic_batch else batch, 3, resolution, resolution],
        fallbacks=attempts,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        versions=versions(),
    )
    result.mbbench_version = result.versions["mbbench"]

    stage("writing")
    target = Path(result.path)
    result.export_seconds = round(time.perf_counter() - started, 3)
    atomic_write_bytes(target, data)
    try:
        atomic_write_text(target.with_suffix(".json"), result.to_json())
    except BaseException:
        target.unlink(missing_ok=True)  # a model without its manifest would be half an export
        raise
    return result
