"""ONNX export: opset-aware, with the Col2Im fallback, onnxsim clean-up and a parity check."""

from mbbench.export.api import (
    DEFAULT_OPSET,
    FOLDS,
    ExportError,
    ExportResult,
    ParityError,
    export_onnx,
    output_filename,
)
from mbbench.export.opset import MAX_OPSET, MIN_OPSET, OpsetError, ops_newer_than, verify_opset

__all__ = [
    "DEFAULT_OPSET",
    "FOLDS",
    "MAX_OPSET",
    "MIN_OPSET",
    "ExportError",
    "ExportResult",
    "OpsetError",
    "ParityError",
    "export_onnx",
    "ops_newer_than",
    "output_filename",
    "verify_opset",
]
