"""``mbbench.benchmark``: the library entry point. pandas is imported inside the call, not at import time.

This is the full install's layer above the portable core: it is the one place in ``bench/`` that may reach the
model registry, and only inside the call, to resolve a registry name the caller passed (``resolve=``). The
portable runner never imports this module.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbbench.bench.modelfile import ExportSelection, RegistryName, resolve_models
from mbbench.bench.options import BenchConfig
from mbbench.bench.runner import SweepObserver, run_sweep
from mbbench.bench.schema import SAMPLE_COLUMNS
from mbbench.bench.session import ModelRunError
from mbbench.errors import UserInputError

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | os.PathLike


class _WarningObserver(SweepObserver):
    def note(self, message: str) -> None:
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def registry_resolve(name: str) -> RegistryName:
    """A registry name with its export defaults (``mbbench.models``, imported only when a name needs it: the
    registry imports torch)."""
    from mbbench.export.options import DEFAULT_OPSET
    from mbbench.models import model_info

    info = model_info(name)
    return RegistryName(info.name, resolution=info.default_resolution, opset=DEFAULT_OPSET)


def benchmark(
    models: PathLike | Iterable[PathLike],
    threads: str | int | Iterable[int] = (1, 2),
    rounds: int = 30,
    *,
    warmup: int = 5,
    min_time: float = 0.0,
    graph_opt: str = "all",
    spinning: bool | None = None,
    inter_threads: int = 1,
    provider: str = "CPUExecutionProvider",
    input_shape: str | Iterable[str] | None = None,
    seed: int = 0,
    isolate: bool = True,
    shuffle: bool = False,
    cooldown: float = 0.0,
    output: PathLike | None = None,
    append: bool = False,
    extra_columns: Mapping[PathLike, Mapping[str, Any]] | None = None,
    models_dir: PathLike = "models",
    precision: str | None = None,
    opset: int | None = None,
    resolution: int | None = None,
    on_error: str = "warn",
    return_samples: bool = False,
    observer: SweepObserver | None = None,
    resolve: Callable[[str], str] | None = None,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Measure ONNX Runtime latency of each model at each intra-op thread count.

    ``models`` are ``.onnx`` paths, folders of them, or registry names, each resolved to one export in
    ``models_dir`` by the rule of :class:`~mbbench.bench.modelfile.ExportSelection`: fp32, the model's default
    resolution, the default opset, unless ``precision``, ``opset`` or ``resolution`` ask for another (``resolve``
    is the registry lookup, by default :func:`registry_resolve`). The options mean what the ``mbbench bench`` options of the same name mean. Returns one
    row per (model, threads) with the columns of :data:`mbbench.bench.schema.RESULT_COLUMNS`, followed by
    the ``extra_columns`` (a mapping from a model path to the column values of that model's rows, e.g.
    ``{"a.onnx": {"study": "fold", "value": "col2im"}}``). With ``output``, rows and raw samples are also
    appended to that CSV and its ``.samples.csv`` as each configuration ends. With ``return_samples``,
    returns ``(results, samples)``, the samples in the sidecar's long format.

    A model that fails to load or run is skipped; ``on_error`` says what happens then: ``"warn"`` (one
    warning per failure), ``"raise"`` (a :class:`~mbbench.bench.session.ModelRunError` once the sweep is
    over, after the other models ran and were saved) or ``"ignore"``. Failures are also listed in
    ``results.attrs["failures"]``. Ctrl-C keeps what was saved and re-raises :class:`KeyboardInterrupt`.
    """
    import pandas as pd

    if on_error not in ("warn", "raise", "ignore"):
        raise UserInputError(f"on_error must be 'warn', 'raise' or 'ignore', not {on_error!r}")
    if input_shape is None:
        input_shape = ()
    elif isinstance(input_shape, str):
        input_shape = (input_shape,)
    config = BenchConfig(
        threads=threads, rounds=rounds, warmup=warmup, min_time=min_time, graph_opt=graph_opt,
        spinning=spinning, inter_threads=inter_threads, provider=provider, input_shapes=tuple(input_shape),
        seed=seed, isolate=isolate, shuffle=shuffle, cooldown=cooldown,
    )
    observer = observer or _WarningObserver()
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    files = resolve_models([Path(m) if isinstance(m, os.PathLike) else m for m in models], models_dir,
                           note=observer.note, resolve=resolve or registry_resolve,
                           select=ExportSelection(precision, opset, resolution))
    result = run_sweep(files, config, output=output, append=append, extra_columns=extra_columns,
                       observer=observer)
    if result.interrupted:
        # the same kind of interrupt that ended the sweep (SIGTERM stays SIGTERM for the CLI's exit status)
        kind = type(result.interruption) if result.interruption is not None else KeyboardInterrupt
        raise kind(f"{len(result.rows)} of {result.total} configurations were measured")
    for failure in result.failures:
        if on_error == "warn":
            warnings.warn(f"{failure.model} skipped: {failure.message}", RuntimeWarning, stacklevel=2)
    if result.failures and on_error == "raise":
        first = result.failures[0]
        raise ModelRunError(f"{len(result.failures)} model(s) failed, first {first.model}: {first.message}")
    frame = pd.DataFrame(result.rows, columns=result.columns)
    frame.attrs["failures"] = [f.__dict__.copy() for f in result.failures]
    if not return_samples:
        return frame
    keys = ("model", "threads", "file", "sha256", "host", "timestamp")
    long = [
        {**{k: row[k] for k in keys}, "round": i, "ms": float(ms)}
        for row, samples in zip(result.rows, result.samples_ms)
        for i, ms in enumerate(samples, start=1)
    ]
    return frame, pd.DataFrame(long, columns=list(SAMPLE_COLUMNS))
