"""mbbench: trustworthy ONNX Runtime latency numbers for mobile vision backbones.

The public API is resolved lazily (PEP 562) so that ``python -m mbbench.bench.runner`` runs on a device
that has only onnxruntime and numpy: importing the package must not import torch or pandas.
"""

from __future__ import annotations

from mbbench._lazy import lazy_attributes
from mbbench._version import __version__

# public name -> module that defines it
_LAZY = {
    "list_models": "mbbench.models",
    "create_model": "mbbench.models",
    "reparameterize": "mbbench.models",
    "model_info": "mbbench.models",
    "resolve_name": "mbbench.models",
    "read_state_dict": "mbbench.models",
    "CheckpointError": "mbbench.models",
    "UnknownModelError": "mbbench.models",
    "export_onnx": "mbbench.export",
    "ExportResult": "mbbench.export",
    "benchmark": "mbbench.measure",
    "profile_model": "mbbench.bench.profiling",
    "run_pipeline": "mbbench.pipeline",
}

__all__ = ["__version__", *_LAZY]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
