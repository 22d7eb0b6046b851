"""``export_onnx``: a registry model (or any module) to one self-contained, verified ONNX file.

Every file mbbench writes is checked before it lands: it declares the asked opset and uses no newer op, it
passes ``onnx.checker``, and ONNX Runtime computes what PyTorch computes (within ``tolerance``, relative). The
``.onnx`` and its JSON manifest are staged under temporary names and renamed only when both are complete.

An export runs as named phases, each a function of this module: :func:`plan_export` (targets, skip what
exists), :func:`prepare_module` (create, re-parameterize, fuse norms), :func:`export_first_working` (the first
fold x exporter that keeps to the opset), :func:`verify_export` (simplify, checker, opset, parity) and
:func:`make_precisions` (FP16/INT8 variants of the verified graph, judged by their fidelity to it: see
:mod:`mbbench.export.precision`) and :func:`write_export`. A new phase is one more function between two of these.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import re
import time
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import torch
from torch import nn

from mbbench._io import TMP_SUFFIX, clean_stale_temps, sha256_bytes, sha256_file, stage_bytes
from mbbench.errors import MbbenchError, UserInputError, first_line
from mbbench.export import options as opts
from mbbench.export.exporters import EXPORTERS, INPUT_NAME, OUTPUT_NAME, run_exporter
from mbbench.export.opset import COL2IM_OPSET, DYNAMO_MIN_OPSET, OpsetError, ops_newer_than, verify_opset
from mbbench.export.options import DEFAULT_OPSET, FOLDS, MAX_RESOLUTION, MIN_RESOLUTION  # noqa: F401  (public)
from mbbench.export.options import PRECISIONS
from mbbench.export.parity import parity_errors
from mbbench.export.simplify import simplify_model

_MANIFEST_MAX_BYTES = 1 << 20  # a manifest is a few kB; anything bigger is not one


class ExportError(MbbenchError):
    """The model could not be exported as asked (the message says why and what would work)."""


class ParityError(ExportError):
    """ONNX Runtime's output differs from PyTorch's by more than the tolerance."""


class FidelityError(ExportError):
    """A precision variant keeps less of the FP32 graph's function than ``min_cosine`` asks."""


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
    #: ``fp32`` (the verified graph; parity_* compare it with PyTorch) or a variant derived from it, whose
    #: fidelity_* compare it with that FP32 graph on held-out inputs (parity_* are then the FP32 graph's).
    precision: str = "fp32"
    calibration: str | None = None
    calibration_method: str | None = None
    calibration_size: int | None = None
    keep_float: list[str] = field(default_factory=list)
    fidelity_cosine: float | None = None
    fidelity_sqnr_db: float | None = None
    fidelity_max_abs: float | None = None
    fidelity_top1: float | None = None
    fidelity_top5: float | None = None
    fidelity_inputs: int | None = None
    fidelity_source: str | None = None
    #: the checkpoint's sha256 (None for random init): what reuse compares, since a path can hold other weights
    weights_sha256: str | None = None
    #: the fingerprint of the code and tool versions that made the file (:func:`toolchain_fingerprint`)
    toolchain: str | None = None
    skipped: bool = False
    #: why an existing file of the same name was made again (it was made by other code or tool versions)
    remade: str | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("skipped")
        data.pop("remade")
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_manifest(cls, path: str | Path) -> "ExportResult":
        """Read and validate a manifest; raise :class:`ManifestError` (one sentence) for anything else."""
        path = Path(path)
        if not path.is_file():
            raise ManifestError(f"'{path}' is not a regular file")
        if path.stat().st_size > _MANIFEST_MAX_BYTES:
            raise ManifestError(f"'{path}' is too large to be an export manifest")
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ManifestError(f"'{path}' is not JSON ({first_line(exc, 80)})") from None
        return cls(**_validated(data, path))


class ManifestError(UserInputError):
    """A manifest that is not one mbbench wrote (malformed, tampered with, or not matching its file)."""


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: object) -> bool:
    return isinstance(value, str)


def _optional(check: Callable[[object], bool]) -> Callable[[object], bool]:
    return lambda value: value is None or check(value)


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")  # registry names and the stems studies give
_MANIFEST_FIELDS: dict[str, Callable[[object], bool]] = {
    "model": lambda v: isinstance(v, str) and bool(_NAME.match(v)),
    "family": _optional(_text),
    "path": _text,
    "resolution": _integer,
    "batch": _integer,
    "dynamic_batch": lambda v: isinstance(v, bool),
    "opset": _integer,
    "exporter": lambda v: v in EXPORTERS,
    "fold": _optional(lambda v: v in FOLDS),
    "norms_fused": _optional(lambda v: isinstance(v, bool)),
    "reparameterized": lambda v: isinstance(v, bool),
    "weights": _optional(_text),
    "seed": _optional(_integer),
    "nodes_before": _integer,
    "nodes_after": _integer,
    "simplified": lambda v: isinstance(v, bool),
    "simplify_error": _optional(_text),
    "params": _integer,
    "macs": _integer,
    "parity_max_abs": _number,
    "parity_max_rel": _number,
    "tolerance": _number,
    "sha256": lambda v: isinstance(v, str) and bool(re.fullmatch(r"[0-9a-f]{64}", v)),
    "export_seconds": _number,
    "input_name": _text,
    "output_name": _text,
    "input_shape": lambda v: isinstance(v, list),
    "fallbacks": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "created": _text,
    "mbbench_version": _text,
    "versions": lambda v: isinstance(v, dict),
    "precision": lambda v: v in PRECISIONS,
    "calibration": _optional(_text),
    "calibration_method": _optional(_text),
    "calibration_size": _optional(_integer),
    "keep_float": lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "fidelity_cosine": _optional(_number),
    "fidelity_sqnr_db": _optional(_number),
    "fidelity_max_abs": _optional(_number),
    "fidelity_top1": _optional(_number),
    "fidelity_top5": _optional(_number),
    "fidelity_inputs": _optional(_integer),
    "fidelity_source": _optional(_text),
    "weights_sha256": _optional(lambda v: isinstance(v, str) and bool(re.fullmatch(r"[0-9a-f]{64}", v))),
    "toolchain": _optional(_text),
}
_REQUIRED = [f.name for f in fields(ExportResult) if f.default is MISSING and f.default_factory is MISSING]


def _validated(data: object, path: Path) -> dict:
    if not isinstance(data, dict):
        raise ManifestError(f"'{path}' holds a JSON {type(data).__name__}, not an export manifest")
    if data.get("fold_impl") == "pixel" and data.get("fold") == "reshape":
        data = {**data, "fold": "pixel"}  # manifests before the fold forms were named by the graph they produce
    missing = [name for name in _REQUIRED if name not in data]
    if missing:
        raise ManifestError(f"'{path}' lacks {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}")
    wrong = [name for name, check in _MANIFEST_FIELDS.items() if name in data and not check(data[name])]
    if wrong:
        raise ManifestError(f"'{path}' has a field of the wrong type or value: {', '.join(wrong[:3])}")
    return {name: data[name] for name in _MANIFEST_FIELDS if name in data}


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


#: The code whose change can change an exported file: the model zoo and the exporter.
_TOOLCHAIN_PACKAGES = ("models", "export")


@functools.lru_cache(maxsize=1)
def toolchain_fingerprint() -> str:
    """A short sha256 of what makes an export: mbbench's model and export code, and the torch, onnx, onnxsim
    and onnxruntime versions. An existing file made under another fingerprint is made again rather than reused
    (the same options with other code can give another graph); the version string alone would not tell a
    development tree's changes apart."""
    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for name, version in sorted(versions().items()):
        if name != "mbbench":
            digest.update(f"{name}={version}\0".encode())
    for folder in _TOOLCHAIN_PACKAGES:
        for source in sorted((package / folder).glob("*.py")):
            digest.update(source.name.encode() + b"\0" + hashlib.sha256(source.read_bytes()).digest())
    return digest.hexdigest()[:16]


def output_filename(
    name: str, resolution: int, opset: int, reparameterized: bool = True, fold: str | None = None,
    precision: str = "fp32",
) -> str:  # fmt: skip
    """``<name>-<resolution>-opset<N>[-unfused][-<fold>][-<precision>].onnx`` (no suffix for fp32)."""
    parts = [name, str(resolution), f"opset{opset}"]
    if not reparameterized:
        parts.append("unfused")
    if fold:
        parts.append(fold)
    if precision != "fp32":
        parts.append(precision)
    return "-".join(parts) + ".onnx"


# --- plan ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportOptions:
    """Every option of an export, validated (see :mod:`mbbench.export.options` for the ranges)."""

    opset: int = DEFAULT_OPSET
    resolution: int | None = None
    batch: int = 1
    dynamic_batch: bool = False
    weights: str | Path | None = None
    reparam: bool = True
    fold: str = "auto"
    fuse_norms: bool = True
    exporter: str = "auto"
    simplify: bool = True
    tolerance: float = 1e-4
    output_dir: str | Path = "models"
    force: bool = False
    seed: int = 0
    precisions: tuple[str, ...] = ("fp32",)
    calibration: str | Path = "random"
    calibration_size: int = opts.DEFAULT_CALIBRATION_SIZE
    calibration_method: str = "minmax"
    keep_float: tuple[str, ...] = ()
    fidelity_inputs: int = opts.DEFAULT_FIDELITY_INPUTS
    min_cosine: float | None = None

    def checked(self) -> "ExportOptions":
        from mbbench.export.calibration import RANDOM, check_calibration, check_enough_images
        from mbbench.export.precision import check_int8_opset, check_keep_float_ops

        checked = replace(
            self,
            opset=opts.check_opset(self.opset),
            resolution=None if self.resolution is None else opts.check_resolution(self.resolution),
            batch=opts.check_batch(self.batch),
            fold=opts.check_fold(self.fold),
            exporter=opts.check_exporter(self.exporter),
            tolerance=opts.check_tolerance(self.tolerance),
            seed=opts.check_seed(self.seed),
            precisions=opts.check_precisions(self.precisions),
            calibration_size=opts.check_calibration_size(self.calibration_size),
            calibration_method=opts.check_calibration_method(self.calibration_method),
            keep_float=opts.check_keep_float(self.keep_float),
            fidelity_inputs=opts.check_fidelity_inputs(self.fidelity_inputs),
            min_cosine=None if self.min_cosine is None else opts.check_min_cosine(self.min_cosine),
        )
        if checked.weights is not None:
            weights = Path(checked.weights)
            # a missing checkpoint is an error whatever is on disk: an existing export must not stand in for it
            if not weights.is_file():
                what = "does not exist" if not weights.exists() else "is not a regular file"
                raise UserInputError(f"checkpoint '{weights}' {what}: give the path to a .pth/.pth.tar/.pt file")
        check_keep_float_ops(checked.keep_float)
        if "int8" in checked.precisions:
            check_int8_opset(checked.opset)
        if any(p != "fp32" for p in checked.precisions):  # a folder is read (so checked) only when a variant needs it
            checked = replace(checked, calibration=check_calibration(checked.calibration))
            if checked.calibration != RANDOM:
                used = checked.calibration_size if "int8" in checked.precisions else 0
                check_enough_images(checked.calibration, used, checked.batch)
        return checked


@dataclass
class ExportPlan:
    """What will be exported and where: the label, input size, fold candidates and their target files."""

    options: ExportOptions
    label: str
    family: str | None
    resolution: int
    transforms: frozenset[str]
    reparameterized: bool
    targets: dict[str | None, Path]
    #: the caller named the file (``path``): a single precision is written there, not under a suffixed name
    named: bool = False
    #: the checkpoint's sha256 (None for random init), hashed once when the plan is made
    weights_sha256: str | None = None
    #: :func:`toolchain_fingerprint` of this process
    toolchain: str = ""
    #: precision -> why its existing file is made again (see :func:`find_existing`)
    remade: dict[str, str] = field(default_factory=dict)

    @property
    def folds(self) -> list[str | None]:
        return list(self.targets)

    def target(self, fold: str | None, precision: str = "fp32") -> Path:
        """The file of ``precision``: the FP32 file's name with ``-<precision>`` before ``.onnx``."""
        base = self.targets[fold]
        if precision == "fp32" or (self.named and len(self.options.precisions) == 1):
            return base
        return base.with_name(f"{base.stem}-{precision}{base.suffix}")


def _fold_candidates(fold: str, opset: int) -> list[str]:
    if fold in ("col2im", "unfold") and opset < COL2IM_OPSET:
        raise UserInputError(
            f"--fold {fold} needs opset {COL2IM_OPSET} or newer (ONNX has no Col2Im at {opset}): "
            f"use --fold pixel or --opset {COL2IM_OPSET}"
        )
    if fold != "auto":
        return [fold]
    # The fastest form measured at 1 and 2 threads (scripts/bench_export.py forms): the one-hot Conv unfold with
    # Col2Im where the opset has it, else with DepthToSpace ("pixel"); ml-cvnets' F.unfold ("unfold") pays for its
    # Gathers, and ONNX Runtime's 6-D Transpose ("reshape") scales badly with threads.
    return ["col2im", "pixel"] if opset >= COL2IM_OPSET else ["pixel"]


def _exporter_order(exporter: str, opset: int) -> list[str]:
    if exporter in EXPORTERS:
        return [exporter]
    return ["dynamo", "torchscript"] if opset >= DYNAMO_MIN_OPSET else ["torchscript", "dynamo"]


def plan_export(
    model_or_name: str | nn.Module, path: str | Path | None, options: ExportOptions, name: str | None = None
) -> ExportPlan:
    """Decide the names before any work, so that an existing export is found cheaply."""
    from mbbench.models import deploy_transforms, model_info

    if isinstance(model_or_name, nn.Module):
        if options.weights is not None:
            raise UserInputError("weights= applies to registry names; load the weights into your module yourself")
        label, family, default_resolution = name or type(model_or_name).__name__.lower(), None, 224
        transforms = deploy_transforms(model_or_name)
    else:
        info = model_info(model_or_name)
        label, family, default_resolution = info.name, info.family, info.default_resolution
        with torch.device("meta"):
            transforms = deploy_transforms(info.build())
    resolution = default_resolution if options.resolution is None else options.resolution
    folds = _fold_candidates(options.fold, options.opset) if "fold" in transforms else [None]
    reparameterized = options.reparam or "reparameterize" not in transforms
    if path is not None:
        targets = {fold: Path(path) for fold in folds}
    else:
        directory = Path(options.output_dir)
        targets = {fold: directory / output_filename(label, resolution, options.opset, reparameterized, fold)
                   for fold in folds}  # fmt: skip
    weights_sha256 = sha256_file(options.weights) if options.weights is not None else None
    return ExportPlan(options, label, family, resolution, transforms, reparameterized, targets, path is not None,
                      weights_sha256=weights_sha256, toolchain=toolchain_fingerprint())


def find_existing(plan: ExportPlan, precision: str = "fp32") -> ExportResult | None:
    """The ``precision`` export already in place for ``plan`` (``skipped=True``), None if there is none or ``force``.

    An existing file is reused only when its manifest describes that very file and everything that defines it
    matches what is asked now (:func:`definition_differences`). A file made from other inputs (other weights,
    seed, batch, calibration, ...) is refused with what differs, never reused and never silently replaced:
    ``--force`` replaces it. A file that is there but cannot be vouched for (no manifest, a manifest that is
    malformed, tampered with or does not describe that very file) is refused as well. One made by other code or
    tool versions from the same inputs is made again (the result's ``remade`` says why).
    """
    for fold in plan.folds:
        target = plan.target(fold, precision)
        manifest = target.with_suffix(".json")
        for path in (target, manifest):
            if (path.exists() or path.is_symlink()) and not path.is_file():
                raise UserInputError(f"'{path}' exists and is not a regular file: move it away or choose another folder")
        if plan.options.force or not target.exists():
            continue
        if not manifest.exists():
            raise UserInputError(f"'{target}' exists but has no manifest: use --force to re-export it")
        try:
            result = ExportResult.from_manifest(manifest)
            _check_describes(result, plan, fold, target, precision)
        except ManifestError as exc:
            raise UserInputError(f"'{target}' exists but cannot be reused: {exc}; use --force to re-export it") from None
        differences = definition_differences(result, plan, precision)
        if differences:
            shown = "; ".join(differences[:3]) + (f"; and {len(differences) - 3} more" if len(differences) > 3 else "")
            raise UserInputError(
                f"'{target}' exists but was made from other inputs ({shown}); --force replaces it, or export into "
                "another --models-dir"
            )
        if result.toolchain != plan.toolchain:
            plan.remade[precision] = (
                "made by other mbbench code or tool versions" if result.toolchain else "made before mbbench recorded "
                "its toolchain")
            return None
        result.path, result.skipped = str(target), True
        return result
    return None


def _check_describes(result: ExportResult, plan: ExportPlan, fold: str | None, target: Path, precision: str) -> None:
    """The manifest is the one of this file name (model, resolution, opset, fold, precision) and of these bytes."""
    expected = {"model": plan.label, "resolution": plan.resolution, "opset": plan.options.opset, "fold": fold,
                "precision": precision}  # fmt: skip
    for key, value in expected.items():
        if getattr(result, key) != value:
            raise ManifestError(f"its manifest says {key} {getattr(result, key)!r}, not {value!r}")
    if sha256_file(target) != result.sha256:
        # Also what a crash between the two renames of write_export leaves: a new .onnx and the old manifest.
        raise ManifestError("the file's sha256 differs from its manifest's (changed, or an interrupted export)")


def _weights_text(path: object, sha: object) -> str:
    if path is None and sha is None:
        return "random init"
    return f"weights {str(path)!r}" + (f" (sha256 {str(sha)[:12]})" if sha else " (unknown sha256)")


def definition_differences(result: ExportResult, plan: ExportPlan, precision: str) -> list[str]:
    """What defines the file and differs between its manifest and ``plan``, in words ("batch 1, asked 2").

    Everything the file depends on beyond its name: the weights (by sha256, since one path can hold other
    weights), the seed of a random init (and of a random calibration), batch and dynamic batch, the exporter
    when one is named, simplification, norm fusion, a tolerance the recorded parity does not meet, and for a
    variant its calibration and kept-float ops. (How many inputs the fidelity was measured on does not change
    the file; the manifest records it beside the figures.)
    """
    options = plan.options
    found: list[str] = []

    def differs(what: str, recorded: object, asked: object) -> None:
        if recorded != asked:
            found.append(f"{what} {recorded!r}, asked {asked!r}")

    if (result.weights_sha256 or None) != plan.weights_sha256 or (result.weights is None) != (options.weights is None):
        found.append(f"{_weights_text(result.weights, result.weights_sha256)}, asked "
                     f"{_weights_text(options.weights, plan.weights_sha256)}")  # fmt: skip
    random_calibration = precision == "int8" and options.calibration == "random"
    if options.weights is None or random_calibration:
        differs("seed", result.seed, options.seed)
    differs("batch", result.batch, options.batch)
    differs("dynamic batch", result.dynamic_batch, options.dynamic_batch)
    differs("re-parameterized", result.reparameterized, plan.reparameterized)
    if options.exporter != "auto":
        differs("exporter", result.exporter, options.exporter)
    differs("simplify", result.simplified or result.simplify_error is not None, options.simplify)
    if "fuse_norms" in plan.transforms:
        differs("fused norms", result.norms_fused, options.fuse_norms)
    if not result.parity_max_rel <= options.tolerance:
        found.append(f"parity {result.parity_max_rel:.2e}, above the asked tolerance {options.tolerance:g}")
    if precision != "fp32":
        differs("keep-float", result.keep_float, list(options.keep_float) if precision.startswith("int8") else [])
    if precision == "int8":
        differs("calibration", result.calibration, calibration_label(options.calibration))
        differs("calibration size", result.calibration_size, options.calibration_size)
        differs("calibration method", result.calibration_method, options.calibration_method)
    return found


def _check_output_dir(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create output folder '{directory}': {exc.strerror}") from None
    if not directory.is_dir() or not os.access(directory, os.W_OK):
        raise UserInputError(f"output folder '{directory}' is not writable: choose another with --output-dir")


# --- prepare ---------------------------------------------------------------------------------------------------


def prepare_module(model_or_name: str | nn.Module, plan: ExportPlan) -> tuple[nn.Module, nn.Module]:
    """``(reference, deploy)``: the module PyTorch checks against, and the one that is exported.

    Both are re-parameterized as asked; ``deploy`` also has its norm affines fused (when asked and offered).
    """
    from mbbench.models import create_model, deploy, is_reparameterized

    options = plan.options
    if isinstance(model_or_name, nn.Module):
        module = model_or_name.eval()
    else:
        module = create_model(plan.label, weights=options.weights, seed=options.seed)
        if not plan.reparameterized and is_reparameterized(module):
            raise UserInputError(
                f"'{options.weights}' is a fused (inference-form) checkpoint: it has no branches to export with "
                "--no-reparam; use an unfused checkpoint or drop --no-reparam"
            )
    if options.reparam and "reparameterize" in plan.transforms:
        module = deploy(module, reparameterize=True)
    reference = module.eval()
    if options.fuse_norms and "fuse_norms" in plan.transforms:
        return reference, deploy(reference, reparameterize=False, fuse_norms=True)
    return reference, reference


# --- export ----------------------------------------------------------------------------------------------------


@dataclass
class Exported:
    model: onnx.ModelProto
    fold: str | None
    exporter: str
    attempts: list[str]


def export_first_working(
    plan: ExportPlan, module: nn.Module, example: torch.Tensor, stage: Callable[[str], None]
) -> Exported:
    """Try each fold form x exporter in order; the first graph that keeps to the opset wins."""
    from mbbench.models import deploy

    options = plan.options
    attempts: list[str] = []
    needs: dict[str, int] = {}
    for fold in plan.folds:
        candidate_module = module if fold is None else deploy(module, reparameterize=False, fold=fold)
        for exporter in _exporter_order(options.exporter, options.opset):
            how = f"{exporter}{'/' + fold if fold else ''}"
            stage(f"exporting ({exporter}{', ' + fold if fold else ''})")
            try:
                candidate = run_exporter(exporter, candidate_module, example, options.opset, options.dynamic_batch)
                verify_opset(candidate, options.opset)
            except OpsetError as exc:
                needs.update(ops_newer_than(candidate, options.opset))
                attempts.append(f"{how}: {exc}")
                continue
            except Exception as exc:  # exporter internals fail in many ways; try the next path
                attempts.append(f"{how}: {type(exc).__name__}: {first_line(exc)}")
                continue
            return Exported(candidate, fold, exporter, attempts)
    hint = ""
    if needs:
        hint = f" This model needs opset {max(needs.values())} or newer ({', '.join(sorted(needs))})."
    raise ExportError(f"could not export {plan.label} at opset {options.opset}: {'; '.join(attempts)}.{hint}")


# --- verify ----------------------------------------------------------------------------------------------------


@dataclass
class Verified:
    data: bytes
    nodes_after: int
    simplify_error: str | None
    max_abs: float
    max_rel: float


def verify_export(
    plan: ExportPlan, exported: Exported, reference: nn.Module, example: torch.Tensor,
    generator: torch.Generator, stage: Callable[[str], None],
) -> Verified:  # fmt: skip
    """Simplify, then prove the final graph: checker, opset, and parity with PyTorch (also at a second batch)."""
    options = plan.options
    final, simplify_error = exported.model, None
    if options.simplify:
        stage("simplifying")
        final, simplify_error = simplify_model(exported.model)
        verify_opset(final, options.opset)
    onnx.checker.check_model(final)
    data = final.SerializeToString()

    stage("checking parity")
    with torch.no_grad():
        expected = reference(example).numpy()
    max_abs, max_rel = parity_errors(data, {INPUT_NAME: example.numpy()}, expected)
    if not (math.isfinite(max_rel) and np.isfinite(expected).all()):
        raise ParityError(f"{plan.label}: the model's output holds NaN or infinite values (PyTorch's or ONNX "
                          "Runtime's), so parity cannot be checked; nothing was written")  # fmt: skip
    if not max_rel <= options.tolerance:
        raise ParityError(
            f"{plan.label}: ONNX Runtime differs from PyTorch by {max_rel:.2e} (relative; max abs {max_abs:.2e}), "
            f"above the tolerance {options.tolerance:g}; nothing was written"
        )
    if options.dynamic_batch:
        other = torch.randn(options.batch + 1, *example.shape[1:], generator=generator)
        with torch.no_grad():
            expected_other = reference(other).numpy()
        _, rel_other = parity_errors(data, {INPUT_NAME: other.numpy()}, expected_other)
        if not rel_other <= options.tolerance:
            raise ParityError(f"{plan.label}: the dynamic-batch graph is wrong at batch {options.batch + 1} "
                              f"({rel_other:.2e})")  # fmt: skip
    return Verified(data, len(final.graph.node), simplify_error, max_abs, max_rel)


def _result(plan: ExportPlan, exported: Exported, verified: Verified, reference: nn.Module) -> ExportResult:
    import copy

    from mbbench.models import count_macs, count_params

    options = plan.options
    meta = copy.deepcopy(reference).to("meta")
    all_versions = versions()
    return ExportResult(
        model=plan.label,
        family=plan.family,
        path=str(plan.targets[exported.fold]),
        resolution=plan.resolution,
        batch=options.batch,
        dynamic_batch=options.dynamic_batch,
        opset=options.opset,
        exporter=exported.exporter,
        fold=exported.fold,
        norms_fused=options.fuse_norms if "fuse_norms" in plan.transforms else None,
        reparameterized=plan.reparameterized,
        weights=str(options.weights) if options.weights is not None else None,
        weights_sha256=plan.weights_sha256,
        seed=options.seed,
        nodes_before=len(exported.model.graph.node),
        nodes_after=verified.nodes_after,
        simplified=options.simplify and verified.simplify_error is None,
        simplify_error=verified.simplify_error,
        params=count_params(reference),
        macs=count_macs(meta, plan.resolution),
        parity_max_abs=verified.max_abs,
        parity_max_rel=verified.max_rel,
        tolerance=options.tolerance,
        sha256=sha256_bytes(verified.data),
        export_seconds=0.0,
        input_shape=["batch" if options.dynamic_batch else options.batch, 3, plan.resolution, plan.resolution],
        fallbacks=exported.attempts,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        mbbench_version=all_versions["mbbench"],
        versions=all_versions,
        toolchain=plan.toolchain,
    )


# --- precision -------------------------------------------------------------------------------------------------


@dataclass
class PrecisionFile:
    """One file to write: its manifest and its bytes."""

    result: ExportResult
    data: bytes


def calibration_label(calibration: str | Path) -> str:
    """What a manifest records as the calibration (and fidelity) inputs: ``random`` or ``images:<folder>``."""
    from mbbench.export.calibration import RANDOM

    return RANDOM if calibration == RANDOM else f"images:{calibration}"


def make_precisions(
    plan: ExportPlan, fp32: ExportResult, verified: Verified, precisions: list[str], stage: Callable[[str], None]
) -> list[PrecisionFile]:
    """Each asked precision of the verified graph, judged by its fidelity to it on held-out inputs.

    ``fp32`` is the verified graph itself. Every other precision is derived from it
    (:func:`mbbench.export.precision.convert`) and carries its fidelity; one below ``min_cosine`` raises
    :class:`FidelityError` before anything is written.
    """
    from mbbench.export import precision as prec
    from mbbench.export.calibration import make_inputs

    options = plan.options
    files = [PrecisionFile(fp32, verified.data)] if "fp32" in precisions else []
    derived = [p for p in precisions if p != "fp32"]
    if not derived:
        return files
    stage("preparing fidelity inputs")
    inputs = make_inputs(
        options.calibration, family=plan.family, resolution=plan.resolution, batch=options.batch,
        calibration_size=options.calibration_size, fidelity_inputs=options.fidelity_inputs, seed=options.seed,
        need_calibration="int8" in derived,
    )  # fmt: skip
    reference = prec.outputs(verified.data, inputs.fidelity)
    prepared = prec.preprocess(verified.data) if any(p.startswith("int8") for p in derived) else None
    for precision in derived:
        stage(f"making {precision}")
        data = prec.convert(
            precision, verified.data, label=plan.label, opset=options.opset, calibration=inputs.calibration,
            method=options.calibration_method, keep_float=options.keep_float, prepared=prepared,
        )  # fmt: skip
        stage(f"checking {precision} fidelity")
        fidelity = prec.fidelity(reference, prec.outputs(data, inputs.fidelity))
        if options.min_cosine is not None and not fidelity.cosine >= options.min_cosine:
            raise FidelityError(
                f"{plan.label} {precision}: fidelity cosine {fidelity.cosine:.4f} is below --min-cosine "
                f"{options.min_cosine:g} (top-1 agreement {fidelity.top1:.0%} over {fidelity.inputs} inputs); "
                "nothing was written"
            )
        static = precision == "int8"
        result = replace(
            fp32,
            path=str(plan.target(fp32.fold, precision)),
            precision=precision,
            nodes_after=len(onnx.load_from_string(data).graph.node),
            sha256=sha256_bytes(data),
            calibration=inputs.source if static else None,
            calibration_method=options.calibration_method if static else None,
            calibration_size=options.calibration_size if static else None,
            keep_float=list(options.keep_float) if precision.startswith("int8") else [],
            fidelity_cosine=fidelity.cosine,
            fidelity_sqnr_db=fidelity.sqnr_db,
            fidelity_max_abs=fidelity.max_abs,
            fidelity_top1=fidelity.top1,
            fidelity_top5=fidelity.top5,
            fidelity_inputs=fidelity.inputs,
            fidelity_source=inputs.source,
        )
        files.append(PrecisionFile(result, data))
    return files


def check_min_cosine(result: ExportResult, min_cosine: float | None) -> None:
    """A reused variant meets ``min_cosine`` as a new one must."""
    cosine = result.fidelity_cosine
    if min_cosine is not None and cosine is not None and not cosine >= min_cosine:
        raise FidelityError(f"{result.path}: its recorded fidelity cosine {cosine:.4f} is below --min-cosine "
                            f"{min_cosine:g}; re-export it with other settings and --force")  # fmt: skip


# --- write -----------------------------------------------------------------------------------------------------

def write_export(target: Path, data: bytes, manifest_text: str) -> None:
    """Put ``target`` and its manifest in place together, or leave both as they were.

    Both files are staged completely first: any failure before the renames (disk full, Ctrl-C, a write
    error) removes the staged files and changes nothing. Two renames are not one atomic step, so the .onnx
    goes first and the manifest, the record that vouches for it (its sha256), last. If the manifest's rename
    fails, the previous .onnx is put back from a hard link taken before. Only a crash (SIGKILL, power loss)
    exactly between the two renames leaves the new .onnx beside the old manifest, and that pair is detectable:
    its sha256s differ, so the next export refuses to reuse it and asks for --force.
    """
    manifest = target.with_suffix(".json")
    staged: list[Path] = []
    backup = None
    try:
        staged.append(stage_bytes(target, data))
        staged.append(stage_bytes(manifest, manifest_text.encode("utf-8")))
        if target.is_file():
            backup = target.parent / f".{target.name}.{os.getpid()}.backup{TMP_SUFFIX}"
            with contextlib.suppress(FileNotFoundError):
                backup.unlink()
            os.link(target, backup)
        os.replace(staged[0], target)
        try:
            os.replace(staged[1], manifest)
        except BaseException:
            if backup is not None:
                os.replace(backup, target)
                backup = None
            else:
                target.unlink(missing_ok=True)
            raise
    finally:
        for path in (*staged, backup):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink()


# --- the whole export ------------------------------------------------------------------------------------------


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
    precision: str = "fp32",
    calibration: str | Path = "random",
    calibration_size: int = opts.DEFAULT_CALIBRATION_SIZE,
    calibration_method: str = "minmax",
    keep_float: str | tuple[str, ...] | list[str] | None = None,
    fidelity_inputs: int = opts.DEFAULT_FIDELITY_INPUTS,
    min_cosine: float | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ExportResult:
    """Export a registry model (by name) or a module to ONNX, verify it, and write it with its manifest.

    ``path`` defaults to ``output_dir/<name>-<resolution>-opset<N>[-unfused][-<fold>][-<precision>].onnx``. An
    existing file is kept (the result has ``skipped=True``) unless ``force``. ``fold`` (MobileViT v1 and v2): ``auto``
    takes ``col2im`` (one-hot Conv unfold, ``Col2Im`` fold) where the opset has it and the exporter succeeds, else
    ``pixel`` (the Conv, then DepthToSpace); ``unfold`` is ml-cvnets' ``F.unfold``/``F.fold`` and ``reshape`` the
    6-D reshape/transpose form; all four are exactly equal. ``fuse_norms`` (MobileViT v2): fold each
    GroupNorm's scale and shift into the 1x1 conv that follows it, so the graph normalises with one op instead
    of three (the same function up to float rounding; the parity check covers it). ``exporter``: ``auto`` uses
    TorchScript below opset 18 and dynamo from 18, each falling back to the other. Ranges of the numeric
    options: :mod:`mbbench.export.options`.

    ``precision``: ``fp32`` (the verified graph), ``fp16``, ``int8`` (static QDQ, calibrated on ``calibration``:
    ``"random"`` or a folder of images, ``calibration_size`` of them, ``calibration_method`` minmax, entropy or
    percentile) or ``int8-dynamic``; ``keep_float`` op types stay in float. A variant's fidelity to the FP32
    graph is measured on ``fidelity_inputs`` held-out inputs and recorded; below ``min_cosine`` it is an error
    and nothing is written. :func:`export_precisions` makes several precisions from one export.
    Raises :class:`ExportError` (or :class:`~mbbench.errors.UserInputError`) with a one-line reason.
    """
    if not isinstance(precision, str) or "," in precision:
        raise UserInputError(f"export_onnx makes one file: give one precision, not {precision!r} "
                             "(export_precisions makes several)")  # fmt: skip
    return export_precisions(
        model_or_name, [precision], path, opset=opset, resolution=resolution, batch=batch,
        dynamic_batch=dynamic_batch, weights=weights, reparam=reparam, fold=fold, fuse_norms=fuse_norms,
        exporter=exporter, simplify=simplify, tolerance=tolerance, output_dir=output_dir, force=force, seed=seed,
        name=name, calibration=calibration, calibration_size=calibration_size, calibration_method=calibration_method,
        keep_float=keep_float, fidelity_inputs=fidelity_inputs, min_cosine=min_cosine, on_stage=on_stage,
    )[0]  # fmt: skip


def export_precisions(
    model_or_name: str | nn.Module,
    precisions: str | list[str] | tuple[str, ...] = ("fp32",),
    path: str | Path | None = None,
    *,
    name: str | None = None,
    on_stage: Callable[[str], None] | None = None,
    **options,
) -> list[ExportResult]:
    """One export, written in each of ``precisions`` (``"fp32,int8"`` or a list), each its own file and manifest.

    Takes :func:`export_onnx`'s options. The model is exported and verified once; each precision is derived
    from that graph. A failure before the writes (an error, a fidelity below ``min_cosine``) writes none of them.
    With ``path``, a single precision is written there, several under ``path`` with ``-<precision>`` suffixes.
    """
    stage = on_stage or (lambda _stage: None)
    started = time.perf_counter()
    if options.get("keep_float") is None:
        options["keep_float"] = ()
    options = ExportOptions(precisions=precisions, **options).checked()

    stage("building")
    plan = plan_export(model_or_name, path, options, name)
    for folder in {target.parent for target in plan.targets.values()}:
        clean_stale_temps(folder)  # what a killed export left (mbbench._io names temporaries by pid), reused or not
    existing = {precision: find_existing(plan, precision) for precision in options.precisions}
    for result in existing.values():
        if result is not None:
            check_min_cosine(result, options.min_cosine)
    missing = [precision for precision, result in existing.items() if result is None]
    if not missing:
        return list(existing.values())
    reference, module = prepare_module(model_or_name, plan)  # a refused checkpoint leaves no new folder behind
    _check_output_dir(plan.targets[plan.folds[0]].parent)
    generator = torch.Generator().manual_seed(options.seed)
    example = torch.randn(options.batch, 3, plan.resolution, plan.resolution, generator=generator)
    exported = export_first_working(plan, module, example, stage)
    verified = verify_export(plan, exported, reference, example, generator, stage)
    files = make_precisions(plan, _result(plan, exported, verified, reference), verified, missing, stage)

    stage("writing")
    for file in files:
        file.result.export_seconds = round(time.perf_counter() - started, 3)
        file.result.remade = plan.remade.get(file.result.precision)
        write_export(Path(file.result.path), file.data, file.result.to_json())
        existing[file.result.precision] = file.result
    return list(existing.values())
