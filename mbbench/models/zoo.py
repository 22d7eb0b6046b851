"""The zoo's look-ups: every family, registered, and the names they answer to (timm's ``models/__init__``).

Importing this module imports each family module, which registers its variants with
:mod:`mbbench.models.registry`; the registry itself imports no family. Everything outside ``mbbench.models``
reaches a model through these functions (via the package's lazy names) and :func:`~mbbench.models.create_model`.
"""

from __future__ import annotations

import difflib
import re

# The families register themselves on import, in registry order (the order of mbbench list).
from mbbench.models import fastvit, mobileformer, mobilenetv3, mobileone, mobilevit, mobilevitv2  # noqa: F401
from mbbench.models.facts import FAMILIES
from mbbench.models.registry import _REGISTRY, ModelInfo, UnknownModelError

def list_models(family: str | None = None) -> list[str]:
    """Registered model names in registry order (family, then size)."""
    names = [name for name, info in _REGISTRY.items() if family is None or info.family == family]
    return sorted(names, key=lambda name: FAMILIES.index(_REGISTRY[name].family))  # stable: size within


_V2_WIDTH = re.compile(r"^mobilevit-?v2-?(\d+(?:\.\d+)?)$")
# torchvision's mobilenet_v3_large, timm's mobilenetv3_large_100 (width 1.0, the only one in the zoo).
_MOBILENETV3 = re.compile(r"^mobilenet-?v3-?(large|small)(?:-100|-1\.0)?$")


def _normalise(name: str) -> str:
    text = name.strip().lower().replace("_", "-").replace(" ", "-")
    match = _V2_WIDTH.match(text)
    if match:
        width = match.group(1)
        # "1.0" / "0.5" are widths; "100" / "050" / "50" are hundredths (timm's mobilevitv2_050).
        hundredths = round(float(width) * 100) if "." in width or width in {"1", "2"} else int(width)
        return f"mobilevitv2-{hundredths:03d}"
    match = _MOBILENETV3.match(text)
    if match:
        return f"mobilenetv3-{match.group(1)}"
    return text


def resolve_name(name: str) -> str:
    """Map a model name or an obvious alias to its registry name, or raise :class:`UnknownModelError`."""
    if name in _REGISTRY:
        return name
    candidate = _normalise(name)
    if candidate in _REGISTRY:
        return candidate
    for info in _REGISTRY.values():
        if candidate == info.reference_stem.replace("_", "-"):
            return info.name
    close = difflib.get_close_matches(candidate, list(_REGISTRY), n=1, cutoff=0.6)
    hint = f"did you mean '{close[0]}'?" if close else "run 'mbbench list' to see the names."
    raise UnknownModelError(f"unknown model '{name}': {hint}")


def model_info(name: str) -> ModelInfo:
    return _REGISTRY[resolve_name(name)]
