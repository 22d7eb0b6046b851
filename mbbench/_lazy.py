"""PEP 562 lazy attributes for package ``__init__`` modules (standard library only).

mbbench's packages name their public API up front but import a heavy module (torch, pandas, matplotlib,
onnxruntime) only when one of its names is first used, so that e.g. the portable bench core runs on a device
that has only onnxruntime and numpy.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_attributes(
    package: str, namespace: dict[str, Any], names: dict[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` resolving each of ``names`` (name -> module) on first use."""

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace.get("__all__", ())) | set(names))

    return __getattr__, __dir__
