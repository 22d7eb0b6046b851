"""ONNX Runtime vs PyTorch on the same input."""

from __future__ import annotations

import numpy as np


def parity_errors(model_bytes: bytes, feeds: dict[str, np.ndarray], expected: np.ndarray) -> tuple[float, float]:
    """``(max absolute error, max absolute error / max |expected|)`` of ONNX Runtime's first output."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    actual = session.run(None, feeds)[0]
    if actual.shape != expected.shape:
        return float("inf"), float("inf")
    max_abs = float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64))))
    scale = float(np.max(np.abs(expected)))
    return max_abs, max_abs / scale if scale > 0 else max_abs
