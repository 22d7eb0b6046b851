"""onnxsim clean-up that never loses the export: on failure the unsimplified graph is kept, with the reason."""

from __future__ import annotations

import onnx

from mbbench.errors import first_line


def simplify_model(model: onnx.ModelProto) -> tuple[onnx.ModelProto, str | None]:
    """Return ``(simplified, None)``, or ``(model, reason)`` when onnxsim fails or cannot vouch for its result."""
    try:
        import onnxsim

        # onnxsim's own random-input check is skipped (check_n=0): mbbench's parity check runs on the final
        # graph anyway, against PyTorch rather than against the unsimplified graph.
        simplified, ok = onnxsim.simplify(model, check_n=0)
    except Exception as exc:  # onnxsim raises bare RuntimeErrors from C++ for unsupported graphs
        return model, f"onnxsim failed: {type(exc).__name__}: {first_line(exc)}"
    if not ok:
        return model, "onnxsim could not validate its result"
    return simplified, None
