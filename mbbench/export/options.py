"""What ``export_onnx`` accepts, checked before any work (standard library only, so the CLI can offer the same
choices and ranges without importing torch or onnx).

Every numeric option has a documented range; 0 is a value like any other (never "not given"), and ``None``
is the only way to ask for a default.
"""

from __future__ import annotations

import math
import numbers

from mbbench.errors import OptionError
from mbbench.models.facts import FOLD_FORMS

# TorchScript writes 11-20 natively (21-23 with a warning, same ops); dynamo writes 18 and newer.
MIN_OPSET = 11
MAX_OPSET = 23
DEFAULT_OPSET = 17
EXPORTERS = ("torchscript", "dynamo")
EXPORTER_CHOICES = ("auto", *EXPORTERS)
#: ``auto`` picks the first fold form that exports at the opset (see ``export_onnx``).
FOLDS = ("auto", *FOLD_FORMS)
MIN_RESOLUTION = 32  # five stride-2 stages: smaller inputs leave no pixels for the last stage
MAX_RESOLUTION = 2048  # 2048^2 already needs gigabytes of activations in the PyTorch reference run
MIN_BATCH, MAX_BATCH = 1, 1024
MAX_SEED = 2**32 - 1  # numpy's and torch's seeds are 32-bit


def _whole(name: str, value: object, low: int, high: int, why: str = "") -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise OptionError(f"{name} must be a whole number from {low} to {high}, not {value!r}")
    if not low <= value <= high:
        raise OptionError(f"{name} {value} is outside {low}-{high}{why}")
    return int(value)


def check_opset(opset: object) -> int:
    if isinstance(opset, bool) or not isinstance(opset, numbers.Integral) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise OptionError(f"opset {opset} is not supported: choose one from {MIN_OPSET} to {MAX_OPSET}")
    return int(opset)


def check_resolution(resolution: object) -> int:
    return _whole(
        "resolution", resolution, MIN_RESOLUTION, MAX_RESOLUTION,
        f": the five stride-2 stages need at least {MIN_RESOLUTION} pixels",
    )  # fmt: skip


def check_batch(batch: object) -> int:
    return _whole("batch", batch, MIN_BATCH, MAX_BATCH)


def check_seed(seed: object) -> int:
    return _whole("seed", seed, 0, MAX_SEED)


def check_tolerance(tolerance: object) -> float:
    if isinstance(tolerance, bool) or not isinstance(tolerance, numbers.Real):
        raise OptionError(f"tolerance must be a number, not {tolerance!r}")
    if not (math.isfinite(tolerance) and tolerance > 0):
        raise OptionError(f"tolerance must be a finite number above 0, not {tolerance}")
    return float(tolerance)


def check_fold(fold: object) -> str:
    if fold not in FOLDS:
        raise OptionError(f"unknown fold '{fold}': choose one of {', '.join(FOLDS)}")
    return fold


def check_exporter(exporter: object) -> str:
    if exporter not in EXPORTER_CHOICES:
        raise OptionError(f"unknown exporter '{exporter}': choose one of {', '.join(EXPORTER_CHOICES)}")
    return exporter


# --- precision variants ------------------------------------------------------------------------------------

#: ``fp32`` is the verified export itself; the others are derived from it (mbbench.export.precision).
PRECISIONS = ("fp32", "fp16", "int8", "int8-dynamic")
DEFAULT_PRECISION = "fp32"
#: onnxruntime.quantization's calibration methods, by the names the CLI takes.
CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
DEFAULT_CALIBRATION_SIZE = 32
DEFAULT_FIDELITY_INPUTS = 64
MAX_INPUTS = 4096  # each input is one forward pass of two graphs (calibration: one of an augmented graph)
#: Below this cosine (output vs the FP32 graph's) the summary flags a precision variant as low fidelity.
LOW_FIDELITY_COSINE = 0.99


def check_precisions(value: object) -> tuple[str, ...]:
    """``"fp32,int8"``, ``["fp32", "int8"]`` or a mix of both, as a tuple without repeats, in the order given."""
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise OptionError(f"precision must be one of {', '.join(PRECISIONS)} (or a comma list), not {value!r}")
    names = [part.strip().lower() for item in items for part in item.split(",") if part.strip()]
    if not names:
        raise OptionError(f"no precision given: choose from {', '.join(PRECISIONS)}")
    for name in names:
        if name not in PRECISIONS:
            raise OptionError(f"unknown precision '{name}': choose from {', '.join(PRECISIONS)}")
    return tuple(dict.fromkeys(names))


def check_calibration_method(method: object) -> str:
    if method not in CALIBRATION_METHODS:
        raise OptionError(f"unknown calibration method '{method}': choose one of {', '.join(CALIBRATION_METHODS)}")
    return method


def check_calibration_size(size: object) -> int:
    return _whole("calibration size", size, 1, MAX_INPUTS)


def check_fidelity_inputs(count: object) -> int:
    return _whole("fidelity inputs", count, 1, MAX_INPUTS)


def check_min_cosine(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and -1 <= value <= 1):
        raise OptionError(f"min cosine must be a number from -1 to 1, not {value!r}")
    return float(value)


def check_keep_float(value: object) -> tuple[str, ...]:
    """ONNX op types (``"Softmax,MatMul"`` or a list) left in float by INT8 quantization; case as ONNX spells it."""
    if value is None:
        return ()
    items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
    if items is None or not all(isinstance(item, str) for item in items):
        raise OptionError(f"keep-float takes ONNX op types such as Softmax,MatMul, not {value!r}")
    ops = [part.strip() for item in items for part in item.split(",") if part.strip()]
    for op in ops:
        if not (op[:1].isupper() and op.isalnum()):
            raise OptionError(f"'{op}' is not an ONNX op type: give names as ONNX spells them (Softmax, MatMul)")
    return tuple(dict.fromkeys(ops))
