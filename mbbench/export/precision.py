"""Precision variants of a verified FP32 graph (FP16, INT8) and how much of its function they keep.

The converters are the tools' own: onnxruntime.quantization for INT8 (static QDQ with per-channel QInt8
weights and QUInt8 activations, or ``quantize_dynamic``), onnxconverter-common's float16 converter for FP16
with FP32 inputs and outputs kept (so bench feeds every variant the same tensors). Nothing here quantizes by
hand.

An INT8 graph cannot meet a 1e-4 parity tolerance, so a variant is judged by its *fidelity* to the FP32 graph
on held-out inputs (never the calibration ones): cosine similarity, SQNR, max abs error, top-1 agreement and
top-5 overlap (:func:`fidelity`).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import math
import re
import tempfile
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import onnx

from mbbench.errors import UserInputError, first_line

#: Per-channel QDQ writes DequantizeLinear with an ``axis`` attribute, which ai.onnx has from opset 13.
INT8_MIN_OPSET = 13
_CALIBRATION_METHODS = {"minmax": "MinMax", "entropy": "Entropy", "percentile": "Percentile"}


class PrecisionError(UserInputError):
    """The FP32 graph could not be turned into the asked precision (the message names the op that blocks it)."""


@dataclass(frozen=True)
class Fidelity:
    """How close a variant's outputs are to the FP32 graph's, over ``inputs`` held-out samples."""

    cosine: float
    sqnr_db: float
    max_abs: float
    top1: float
    top5: float
    inputs: int


# --- running graphs ------------------------------------------------------------------------------------------


def session(model_bytes: bytes, threads: int = 1):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


def outputs(model_bytes: bytes, feeds: Sequence[np.ndarray]) -> np.ndarray:
    """The first output for every feed, one row per sample, flattened: ``(samples, features)`` float64."""
    runner = session(model_bytes)
    name = runner.get_inputs()[0].name
    rows = [runner.run(None, {name: feed})[0] for feed in feeds]
    return np.concatenate([r.reshape(len(r), -1) for r in rows]).astype(np.float64)


def fidelity(reference: np.ndarray, candidate: np.ndarray) -> Fidelity:
    """Compare ``(samples, features)`` outputs of a variant (``candidate``) with the FP32 graph's.

    cosine: mean over samples of each sample's cosine similarity; SQNR: 10 log10(signal power / error power)
    over everything (infinite when equal); top-1: share of samples whose arg-max agrees; top-5: mean share of
    the FP32 top-5 classes that are in the variant's top-5 (top-k with k = min(5, features)).
    """
    if reference.shape != candidate.shape:
        raise PrecisionError(f"the variant's output has shape {candidate.shape}, the FP32 graph's {reference.shape}")
    norms = np.linalg.norm(reference, axis=1) * np.linalg.norm(candidate, axis=1)
    dots = np.sum(reference * candidate, axis=1)
    both_zero = (np.linalg.norm(reference, axis=1) == 0) & (np.linalg.norm(candidate, axis=1) == 0)
    cosine = np.where(both_zero, 1.0, np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0))
    error = candidate - reference
    noise, signal = float(np.sum(error**2)), float(np.sum(reference**2))
    sqnr = math.inf if noise == 0 else 10 * math.log10(signal / noise) if signal > 0 else -math.inf
    k = min(5, reference.shape[1])
    top_ref = np.argsort(-reference, axis=1, kind="stable")[:, :k]
    top_new = np.argsort(-candidate, axis=1, kind="stable")[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_ref, top_new)]
    return Fidelity(
        cosine=float(np.mean(cosine)),
        sqnr_db=sqnr,
        max_abs=float(np.max(np.abs(error))) if error.size else 0.0,
        top1=float(np.mean(top_ref[:, 0] == top_new[:, 0])),
        top5=float(np.mean(overlap)),
        inputs=len(reference),
    )


# --- what a graph offers to quantize ---------------------------------------------------------------------------


def quantizable_op_types(model: onnx.ModelProto, dynamic: bool = False) -> list[str]:
    """The op types of ``model`` that static QDQ (or dynamic) quantization covers, the most frequent first."""
    from onnxruntime.quantization.registry import IntegerOpsRegistry, QDQRegistry, QLinearOpsRegistry

    known = set(IntegerOpsRegistry) if dynamic else set(QDQRegistry) | set(QLinearOpsRegistry)
    counts = Counter(node.op_type for node in model.graph.node if node.op_type in known)
    return [op for op, _ in counts.most_common()]


def node_block(name: str) -> str | None:
    """The block a node belongs to, from the module path the exporter wrote into its name.

    ``/stage2/stage2.3/reparam_conv/Conv`` -> ``stage2.3`` (a container and its indexed child);
    ``/layer_3/layer_3.1/global_rep/...`` -> ``layer_3.1``; ``/classifier/Gemm`` -> ``classifier``; a node the
    simplifier made (``Reshape_22``: no path) belongs to none.
    """
    parts = [part for part in name.split("/") if part][:-1]
    if not parts:
        return None
    if len(parts) > 1 and parts[1].startswith(parts[0] + "."):
        return parts[1]
    return parts[0]


def blocks(model: onnx.ModelProto) -> dict[str, list[str]]:
    """Node names per block (:func:`node_block`), blocks in graph order."""
    found: dict[str, list[str]] = {}
    for node in model.graph.node:
        block = node_block(node.name)
        if block is not None and node.name:
            found.setdefault(block, []).append(node.name)
    return found


# --- conversions ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """onnxruntime.quantization and the float16 converter log warnings on the root logger, warn per weight and
    print tracebacks of steps they recover from; what matters of it the fidelity check measures, and a failure
    that matters raises."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def preprocess(model_bytes: bytes) -> bytes:
    """onnxruntime's ``quant_pre_process`` (shape inference, then ONNX Runtime's basic graph optimizations), which
    its documentation asks for before quantization; the graph as it was if that step fails."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="mbbench-quant-") as tmp, _quiet():
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "pre.onnx"
        # From a file: given a ModelProto, quant_pre_process moves large initializers to external data its own
        # ONNX Runtime session then cannot read (onnxruntime 1.32).
        source.write_bytes(model_bytes)
        try:
            # Symbolic shape inference is for dynamic transformer shapes; ONNX's own inference covers these graphs.
            quant_pre_process(source, target, skip_symbolic_shape=True)
            return target.read_bytes()
        except Exception:  # the quantizer works without it, only less well
            return model_bytes


def _reader(name: str, feeds: Sequence[np.ndarray]):
    """An onnxruntime CalibrationDataReader over ``feeds`` (defined here: importing the quantizer is slow)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter([{name: feed} for feed in feeds])

        def get_next(self):
            return next(self._items, None)

    return Reader()


def quantize(
    model_bytes: bytes, *, dynamic: bool = False, calibration: Sequence[np.ndarray] = (), method: str = "minmax",
    keep_float: Sequence[str] = (), exclude_nodes: Sequence[str] = (), cache: Path | None = None,
) -> bytes:  # fmt: skip
    """INT8 with onnxruntime.quantization: static QDQ (per-channel QInt8 weights, QUInt8 activations, calibrated
    on ``calibration`` with ``method``) or, with ``dynamic``, ``quantize_dynamic`` (QInt8 weights, activations
    quantized at run time). ``keep_float`` op types and ``exclude_nodes`` stay in float. ``cache`` (a JSON path)
    keeps the calibrated ranges so further variants of the same graph skip calibration. Give a graph that went
    through :func:`preprocess`.
    """
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_dynamic, quantize_static

    model = onnx.load_from_string(model_bytes)
    op_types = [op for op in quantizable_op_types(model, dynamic) if op not in keep_float]
    if not op_types:
        # onnxruntime reads an empty list as "every op type"
        raise PrecisionError("nothing is left to quantize: every quantizable op type of the graph is kept in float")
    with tempfile.TemporaryDirectory(prefix="mbbench-quant-") as tmp, _quiet():
        target = Path(tmp) / "int8.onnx"
        if dynamic:
            quantize_dynamic(model, target, op_types_to_quantize=op_types, per_channel=True,
                             weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude_nodes))  # fmt: skip
        else:
            # an onnxruntime without the calibration cache (not every version this project accepts) calibrates anew
            caching = cache is not None and "calibration_cache_path" in inspect.signature(quantize_static).parameters
            cached = caching and cache.is_file()
            quantize_static(
                model, target, None if cached else _reader(model.graph.input[0].name, calibration),
                quant_format=QuantFormat.QDQ, op_types_to_quantize=op_types, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=list(exclude_nodes),
                calibrate_method=getattr(CalibrationMethod, _CALIBRATION_METHODS[method]),
                **({"calibration_cache_path": cache} if caching else {}),
            )  # fmt: skip
        return target.read_bytes()


def to_fp16(model_bytes: bytes) -> bytes:
    """FP16 weights and compute with onnxconverter-common, FP32 inputs and outputs kept (``keep_io_types``)."""
    from onnxconverter_common import float16

    with _quiet():
        model = float16.convert_float_to_float16(onnx.load_from_string(model_bytes), keep_io_types=True)
    return model.SerializeToString()


# --- one variant, checked --------------------------------------------------------------------------------------

_OP_IN_MESSAGE = (
    re.compile(r"OpType: (\w+)"),
    re.compile(r"implementation for (\w+)\("),
    re.compile(r"for operator (\w+)"),
    re.compile(r"[Oo]p(?:erator)? type[: ]+'?(\w+)"),
)


def blocking_op(message: str) -> str | None:
    """The op type an onnx/onnxruntime error message names, if it names one."""
    for pattern in _OP_IN_MESSAGE:
        match = pattern.search(message)
        if match:
            return match.group(1)
    return None


def check_int8_opset(opset: int) -> None:
    if opset < INT8_MIN_OPSET:
        raise PrecisionError(
            f"--precision int8 needs opset {INT8_MIN_OPSET} or newer (per-channel DequantizeLinear takes an axis from "
            f"opset {INT8_MIN_OPSET}): export with --opset {INT8_MIN_OPSET} or newer, or use int8-dynamic"
        )


def check_keep_float_ops(keep_float: Sequence[str]) -> None:
    unknown = [op for op in keep_float if not onnx.defs.has(op)]
    if unknown:
        raise UserInputError(f"--keep-float: {', '.join(unknown)} is not an ONNX op type (e.g. Softmax, MatMul, Conv)")


def convert(
    precision: str, fp32: bytes, *, label: str, opset: int, calibration: Sequence[np.ndarray] = (),
    method: str = "minmax", keep_float: Sequence[str] = (), exclude_nodes: Sequence[str] = (),
    prepared: bytes | None = None, cache: Path | None = None,
) -> bytes:  # fmt: skip
    """``fp32`` (a verified graph) in ``precision``, proven loadable: onnx.checker, the asked opset kept, and an
    ONNX Runtime session. A graph that fails is refused with the op that blocks it. ``prepared``: ``fp32``
    after :func:`preprocess`, when the caller already has it.
    """
    from mbbench.export.opset import OpsetError, verify_opset

    if precision == "fp32":
        return fp32
    if precision == "int8":
        check_int8_opset(opset)
    try:
        if precision == "fp16":
            data = to_fp16(fp32)
        else:
            source = prepared if prepared is not None else preprocess(fp32)
            data = quantize(source, dynamic=precision == "int8-dynamic", calibration=calibration, method=method,
                            keep_float=keep_float, exclude_nodes=exclude_nodes, cache=cache)  # fmt: skip
        model = onnx.load_from_string(data)
        onnx.checker.check_model(model)
        verify_opset(model, opset)
        session(data)
    except PrecisionError as exc:
        raise PrecisionError(f"{label}: cannot make {precision}: {exc}") from None
    except OpsetError as exc:
        raise PrecisionError(f"{label}: the {precision} graph leaves opset {opset}: {exc}") from None
    except Exception as exc:  # the converters and onnxruntime fail in many ways; name the op when they do
        message = str(exc)
        op = blocking_op(message)
        hint = ""
        if op and precision != "fp16" and op not in ("QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"):
            hint = f"; keep it in float with --keep-float {op}"
        blocked = f" at op {op}" if op else ""
        raise PrecisionError(f"{label} cannot be made {precision}{blocked} ({first_line(exc, 160)}){hint}") from None
    return data
