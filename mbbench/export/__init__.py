"""ONNX export: opset-aware, with exactly equal fold forms, onnxsim clean-up, a parity check, and FP16/INT8
variants judged by their fidelity to the FP32 graph.

Names resolve lazily (PEP 562) so the CLI can read :mod:`mbbench.export.options` (choices and ranges) without
importing torch or onnx.
"""

from __future__ import annotations

from mbbench._lazy import lazy_attributes

_LAZY = {
    "DEFAULT_OPSET": "mbbench.export.options",
    "FOLDS": "mbbench.export.options",
    "MAX_OPSET": "mbbench.export.options",
    "MIN_OPSET": "mbbench.export.options",
    "ExportError": "mbbench.export.api",
    "ExportResult": "mbbench.export.api",
    "ParityError": "mbbench.export.api",
    "export_onnx": "mbbench.export.api",
    "export_precisions": "mbbench.export.api",
    "FidelityError": "mbbench.export.api",
    "PRECISIONS": "mbbench.export.options",
    "PrecisionError": "mbbench.export.precision",
    "output_filename": "mbbench.export.api",
    "OpsetError": "mbbench.export.opset",
    "ops_newer_than": "mbbench.export.opset",
    "verify_opset": "mbbench.export.opset",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
