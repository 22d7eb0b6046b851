"""Runtimes: one module per runtime, registered by name (as the model zoo registers models).

``get_runtime("openvino")`` imports that module only: a runtime package is imported by the measurement that
drives it and by nothing else. Adding a runtime is one module defining ``RUNTIME`` (a
:class:`~mbbench.runtimes._base.Runtime`) and one line here.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from mbbench._lazy import lazy_attributes
from mbbench.errors import OptionError

if TYPE_CHECKING:
    from mbbench.runtimes._base import Runtime

# the interface (numpy) is imported when first used: the CLI checks runtime names without it
_LAZY = {name: "mbbench.runtimes._base" for name in (
    "InputSpec", "ModelRunError", "OptionSpec", "Runtime", "RuntimeNotInstalled", "RuntimeOptionError", "Session",
    "UnsupportedModel")}
__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)

#: name -> module; the order is the order of every listing and report.
RUNTIMES: dict[str, str] = {
    "onnxruntime": "mbbench.runtimes.onnxruntime",
    "openvino": "mbbench.runtimes.openvino",
    "mnn": "mbbench.runtimes.mnn",
    "ncnn": "mbbench.runtimes.ncnn",
    "litert": "mbbench.runtimes.litert",
}
DEFAULT_RUNTIME = "onnxruntime"


def runtime_names() -> tuple[str, ...]:
    return tuple(RUNTIMES)


def check_runtime_name(name: object) -> str:
    if name not in RUNTIMES:
        raise OptionError(f"unknown runtime {name!r}: choose one of {', '.join(RUNTIMES)}")
    return str(name)


def get_runtime(name: str) -> "Runtime":
    """The runtime called ``name`` (its module imported now); a name that is not one is an :class:`OptionError`.
    The module imports its package lazily where it can; whether it is installed is :meth:`Runtime.check_installed`."""
    module = import_module(RUNTIMES[check_runtime_name(name)])
    return module.RUNTIME


def parse_runtimes(spec: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """``"onnxruntime,openvino"`` (or a list) as names, in the order given, without repeats."""
    if spec is None:
        return (DEFAULT_RUNTIME,)
    items = spec.split(",") if isinstance(spec, str) else [p for item in spec for p in str(item).split(",")]
    names = [check_runtime_name(item.strip().lower()) for item in items if str(item).strip()]
    if not names:
        raise OptionError(f"no runtime given: choose from {', '.join(RUNTIMES)}")
    return tuple(dict.fromkeys(names))


def runtime_facts() -> list[dict]:
    """Every registered runtime: whether it is installed here (its version, else None), the extra that installs
    it, what it runs, what converts an export for it, and its options (``--runtime-option``) with defaults."""
    out = []
    for name in RUNTIMES:
        engine = get_runtime(name)
        out.append({
            "name": name, "version": engine.version(), "extra": getattr(engine, "extra", None),
            "artifact": engine.artifact, "converter": engine.converter or "none (reads the .onnx file)",
            "options": {key: {"default": spec.default, "choices": list(spec.choices), "help": spec.help}
                        for key, spec in engine.options.items()},
        })
    return out
