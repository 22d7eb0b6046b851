"""Measure here or on targets: the one path every command that measures takes (bench, run, profile, the studies).

The full install's layer above the portable core (:mod:`mbbench.bench`) and the devices (:mod:`mbbench.remote`):
it resolves registry names through the model zoo (:func:`resolve`), then runs one sweep on this machine or on
``--target`` devices and returns one result type either way (:func:`sweep`, :func:`profile`).
:func:`benchmark` is the notebook's entry point on top. pandas, torch and ssh are imported inside the calls.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbbench.bench.modelfile import ExportSelection, ModelFile, RegistryName, resolve_models
from mbbench.bench.options import BenchConfig
from mbbench.bench.runner import SweepObserver, SweepResult, run_sweep
from mbbench.bench.schema import SAMPLE_COLUMNS
from mbbench.bench.session import ModelRunError
from mbbench.errors import UserInputError

if TYPE_CHECKING:
    import pandas as pd

    from mbbench.bench.profiling import Profile
    from mbbench.remote import RemoteRun

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


def resolve(
    models: Iterable[PathLike] | PathLike | None,
    models_dir: PathLike = "models",
    select: ExportSelection | None = None,
    note: Callable[[str], None] | None = None,
) -> list[ModelFile]:
    """MODEL arguments (paths, folders, registry names) as the files to measure (see
    :func:`mbbench.bench.modelfile.resolve_models`), registry names resolved through the zoo."""
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    items = [Path(m) if isinstance(m, os.PathLike) else m for m in (models or [])]
    return resolve_models(items, models_dir, note=note, resolve=registry_resolve, select=select)


def sweep(
    models: Sequence[ModelFile],
    config: BenchConfig,
    *,
    remote: "RemoteRun | None" = None,
    output: PathLike | None = None,
    append: bool = False,
    extra_columns: Mapping[PathLike, Mapping[str, Any]] | None = None,
    observer: SweepObserver | None = None,
    runtimes: Sequence[str] = ("onnxruntime",),
) -> SweepResult:
    """Measure every (model, threads) of ``config`` in each of ``runtimes`` here, or with ``remote`` on its
    targets (each device one configuration at a time, the fleet at once), into ``output``; the same
    :class:`SweepResult` either way (``target_failures`` lists devices that failed, empty here).

    Another runtime than ONNX Runtime measures its artifact of each export, made and checked on this machine
    first (:mod:`mbbench.runtimes.artifacts`); a model it cannot run is a row saying why (``unsupported``)."""
    models = with_runtimes(models, runtimes, config, note=observer.info if observer else None)
    if remote is None:
        return run_sweep(models, config, output=output, append=append, extra_columns=extra_columns,
                         observer=observer)  # fmt: skip
    from mbbench.remote import bench_targets

    if output is None:  # the rows are saved as they arrive: a device's rows always go to a file
        from mbbench._paths import default_results_csv

        output = default_results_csv()
    return bench_targets(models, config, remote.targets, output=output, append=append, resume=remote.resume,
                         settings=remote.settings, extra_columns=extra_columns, observer=observer)  # fmt: skip


def with_runtimes(
    models: Sequence[ModelFile], runtimes: Sequence[str], config: BenchConfig,
    note: Callable[[str], None] | None = None,
) -> list[ModelFile]:
    """Each model once per runtime, in that order: the export itself for ONNX Runtime, the runtime's checked
    artifact for another, or the model with the runtime's reason it cannot run it (:attr:`ModelFile.refusal`)."""
    import dataclasses

    from mbbench.runtimes import parse_runtimes

    runtimes = parse_runtimes(list(runtimes))
    if runtimes == ("onnxruntime",) and all(m.runtime == "onnxruntime" for m in models):
        return list(models)
    from mbbench._io import sha256_file
    from mbbench.bench.session import companions

    def artifact_sha256(path: Path) -> str:
        """The artifact's sha256, its companions' (an ncnn graph's weights) folded in: two artifacts of one
        architecture with other weights must never share a name on a device."""
        parts = [path, *companions(path)]
        if len(parts) == 1:
            return sha256_file(path)
        return hashlib.sha256("".join(sha256_file(p) for p in parts).encode()).hexdigest()
    from mbbench.runtimes._base import RuntimeNotInstalled
    from mbbench.runtimes.artifacts import Conversion, prepare_artifacts

    try:
        pairs = prepare_artifacts(models, runtimes, seed=config.seed, input_shapes=config.input_shapes,
                                  min_cosine=config.min_cosine, note=note)  # fmt: skip
    except RuntimeNotInstalled as exc:
        raise UserInputError(str(exc)) from None
    out = []
    for model, made in pairs:
        if isinstance(made, Conversion):
            sha = model.sha256 if made.path == model.path else artifact_sha256(made.path)
            out.append(dataclasses.replace(model, path=made.path, sha256=sha, runtime=made.runtime,
                                           source=model.path, conversion=made.columns()))  # fmt: skip
        else:
            out.append(dataclasses.replace(model, runtime=made.runtime, source=model.path, conversion={
                "source_sha256": made.source_sha256, "conversion_cosine": made.cosine,
                "conversion_max_abs": made.max_abs, "unsupported": made.reason, "input_shape": made.input_shape}))
    return out


def profile(
    models: Sequence[ModelFile],
    *,
    remote: "RemoteRun | None" = None,
    note: Callable[[str], None] | None = None,
    done: Callable[["Profile"], None] | None = None,
    info: Callable[[str], None] | None = None,
    **options: Any,
) -> list["Profile"]:
    """Profile every (model, threads) here, or with ``remote`` on its targets; ``options`` are
    :func:`mbbench.bench.profiling.profile_models`'. ``note`` hears warnings, ``info`` what each device is."""
    if remote is None:
        from mbbench.bench.profiling import profile_models

        return profile_models(models, note=note, done=done, **options)
    from mbbench.remote.profile import profile_targets

    return profile_targets(models, remote.targets, settings=remote.settings, note=note, done=done, info=info,
                           **options)


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
    remote: "RemoteRun | None" = None,
    runtimes: str | Sequence[str] = ("onnxruntime",),
    **bench: Any,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Measure the latency of each model at each thread count in each of ``runtimes`` (``"onnxruntime"``,
    ``"openvino"``, ``"mnn"``, ``"ncnn"``, ...: :mod:`mbbench.runtimes`; a runtime that cannot run a model gives
    a row whose ``unsupported`` column says why).

    ``models`` are ``.onnx`` paths, folders of them, or registry names, each resolved to one export in
    ``models_dir`` by the rule of :class:`~mbbench.bench.modelfile.ExportSelection`: fp32, the model's default
    resolution, the default opset, unless ``precision``, ``opset`` or ``resolution`` ask for another (``resolve``
    is the registry lookup, by default :func:`registry_resolve`). The options mean what the ``mbbench bench`` options of the same name mean. Returns one
    row per (model, threads) with the columns of :data:`mbbench.bench.schema.RESULT_COLUMNS`, followed by
    the ``extra_columns`` (a mapping from a model path to the column values of that model's rows, e.g.
    ``{"a.onnx": {"study": "fold", "value": "col2im"}}``). With ``output``, rows and raw samples are also
    appended to that CSV and its ``.samples.csv`` as each configuration ends. With ``return_samples``,
    returns ``(results, samples)``, the samples in the sidecar's long format.

    ``bench`` takes the other :class:`~mbbench.bench.options.BenchConfig` options (``runtime_options``, ``cpus``,
    ``cool_to``, ...).

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
        seed=seed, isolate=isolate, shuffle=shuffle, cooldown=cooldown, **bench,
    )
    observer = observer or _WarningObserver()
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    files = resolve_models([Path(m) if isinstance(m, os.PathLike) else m for m in models], models_dir,
                           note=observer.note, resolve=resolve or registry_resolve,
                           select=ExportSelection(precision, opset, resolution))
    result = sweep(files, config, remote=remote, output=output, append=append, extra_columns=extra_columns,
                   observer=observer, runtimes=runtimes)
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
