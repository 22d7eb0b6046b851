"""bench: ONNX Runtime latency across thread counts, with honest statistics and full metadata.

Layout (pyperf's separation): ``session`` is the timing core, ``stats`` the statistics, ``results`` the
crash-safe storage, ``summary`` and ``formatting`` the presentation, ``load`` the busy-machine probe,
``_runner`` the sweep, ``_worker`` the isolated process, ``_cli`` the portable ``python -m mbbench.bench.runner``
(``runner`` re-exports them), ``schema`` names every column;
``profiling`` is ``mbbench profile``'s core (ORT's own profiler), ``attribution`` reads its trace and graphs.

Names are resolved lazily so that importing ``mbbench.bench.schema`` (as ``report`` does) loads neither
onnxruntime nor numpy, and nothing here ever imports pandas or torch at import time.
"""

from __future__ import annotations

from mbbench._lazy import lazy_attributes

_LAZY = {
    "run_sweep": "mbbench.bench._runner",
    "SweepObserver": "mbbench.bench._runner",
    "SweepResult": "mbbench.bench._runner",
    "BenchConfig": "mbbench.bench.options",
    "parse_threads": "mbbench.bench.options",
    "parse_input_shapes": "mbbench.bench.options",
    "LatencyStats": "mbbench.bench.stats",
    "latency_stats": "mbbench.bench.stats",
    "ModelFile": "mbbench.bench.modelfile",
    "resolve_models": "mbbench.bench.modelfile",
    "ModelRunError": "mbbench.bench.session",
    "profile_model": "mbbench.bench.profiling",
    "profile_models": "mbbench.bench.profiling",
    "Profile": "mbbench.bench.profiling",
    "RESULT_COLUMNS": "mbbench.bench.schema",
    "SAMPLE_COLUMNS": "mbbench.bench.schema",
    "samples_path": "mbbench.bench.schema",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
