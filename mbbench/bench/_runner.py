"""The sweep: every (model, threads) configuration measured, summarised and saved as soon as it ends.

Portable (onnxruntime, numpy and the standard library only). With ``isolate`` (the default) each configuration
runs in a fresh worker process (:mod:`mbbench.bench._worker`), so one configuration's arena memory, thread pools
and page cache state cannot leak into the next; the parent never creates a session itself. Around each
configuration a :class:`~mbbench.bench.load.LoadProbe` records what other processes did meanwhile.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mbbench._paths import default_results_csv
from mbbench._version import __version__
from mbbench.bench import device
from mbbench.bench._worker import measure_isolated
from mbbench.bench.environment import machine_facts, usable_cores
from mbbench.bench.load import Load, LoadProbe
from mbbench.bench.modelfile import ModelFile
from mbbench.bench.options import BenchConfig, format_cpus
from mbbench.bench.results import ResultFiles, ctrl_c_deferred
from mbbench.bench.schema import RESULT_COLUMNS
from mbbench.bench.session import Measurement, ModelRunError, measure
from mbbench.bench.stats import LatencyStats, latency_stats
from mbbench.bench.summary import oversubscription_warning
from mbbench.errors import UserInputError


class SweepObserver:
    """Hooks a front end implements to show progress; every method is optional (the default does nothing)."""

    def note(self, message: str) -> None:
        """Something the user should know before or during the run (oversubscription, a choice made)."""

    def info(self, message: str) -> None:
        """What the run is doing besides measuring (converting a model for a runtime)."""

    def sweep_started(self, total: int) -> None:
        pass

    def configuration_started(self, index: int, total: int, model: ModelFile, threads: int) -> None:
        pass

    def configuration_finished(self, row: dict[str, Any], stats: LatencyStats, measurement: Measurement) -> None:
        pass

    def configuration_failed(self, model: ModelFile, threads: int, message: str) -> None:
        pass

    def configuration_refused(self, model: ModelFile, threads: int, reason: str) -> None:
        """Called for a configuration whose runtime cannot run the model (its row says why)."""

    def configuration_skipped(self, model: ModelFile, threads: int) -> None:
        """Called for the remaining configurations of a model that already failed."""


@dataclass(frozen=True)
class Failure:
    model: str
    file: str
    threads: int
    message: str


@dataclass(frozen=True)
class TargetFailure:
    """A device that could not be measured (or stopped answering): the sweep's other devices went on."""

    target: str
    message: str
    #: configurations of this target saved before it failed
    finished: int


@dataclass
class SweepResult:
    """What a sweep measured, here or on targets (one type for both: the CLI, the pipeline and the studies read
    it the same way)."""

    rows: list[dict[str, Any]]
    #: per saved row, in the same order: its per-round latencies in ms
    samples_ms: list[np.ndarray]
    failures: list[Failure]
    #: configurations planned (models x thread counts)
    total: int
    interrupted: bool = False
    #: the KeyboardInterrupt (or SIGTERM delivered as one) that ended the sweep, for the front end to re-raise
    interruption: BaseException | None = None
    output: Path | None = None
    samples_output: Path | None = None
    columns: list[str] = field(default_factory=lambda: list(RESULT_COLUMNS))
    #: --target only: the devices that failed, the model bytes pushed to each, what --resume found done already
    target_failures: list[TargetFailure] = field(default_factory=list)
    pushed_model_bytes: dict[str, int] = field(default_factory=dict)
    skipped: int = 0


def run_sweep(
    models: Sequence[ModelFile],
    config: BenchConfig,
    *,
    output: str | Path | None = None,
    append: bool = False,
    extra_columns: Mapping[str | os.PathLike, Mapping[str, Any]] | None = None,
    observer: SweepObserver | None = None,
) -> SweepResult:
    """Measure every ``(model, threads)`` of ``config`` and return the rows (also appended to ``output``).

    A model that fails to load or run is recorded in ``failures`` and its remaining configurations are
    skipped. Ctrl-C ends the sweep between or inside a configuration: what finished is kept and
    ``interrupted`` is set; the configuration in flight is dropped whole.
    """
    observer = observer or SweepObserver()
    for runtime in dict.fromkeys(m.runtime for m in models):
        config.runtime_settings(runtime)  # a bad option (an unknown ORT provider) fails here, before any model
    extras, extra_names = resolve_extra_columns(extra_columns, models)
    columns = list(RESULT_COLUMNS) + extra_names
    files = ResultFiles(output, columns, append) if output is not None else None
    if files:
        files.prepare_folder()
    cpus = _check_cpus(config)
    facts = {**machine_facts(), "clusters": device.clusters(), "governor": device.governors(cpus)}
    cores = min(usable_cores(), len(cpus)) if config.cpus else usable_cores()
    for threads in config.threads:
        if threads > cores:
            observer.note(oversubscription_warning(threads, cores))

    plan = [(m, t) for m in models for t in config.threads]
    if config.shuffle:
        # seeded, so a shuffled run can be repeated in the same order
        random.Random(config.seed).shuffle(plan)
    result = SweepResult(
        rows=[], samples_ms=[], failures=[], total=len(plan), columns=columns,
        output=files.output if files else None, samples_output=files.samples_output if files else None,
    )
    failed: set[tuple[Path, str]] = set()
    observer.sweep_started(len(plan))
    measured_before = False
    try:
        for index, (model, threads) in enumerate(plan, start=1):
            if (model.path, model.runtime) in failed:
                observer.configuration_skipped(model, threads)
                continue
            if measured_before and config.cooldown:
                time.sleep(config.cooldown)
            if config.cool_to is not None:
                device.wait_until_cool(config.cool_to, config.cool_timeout, note=observer.note)
            if model.refusal:
                row = refusal_row(model, threads, config, facts, oversubscribed=threads > cores)
                with ctrl_c_deferred():
                    if files:
                        files.save(row, [])
                    result.rows.append(row)
                    result.samples_ms.append(np.empty(0))
                observer.configuration_refused(model, threads, model.refusal)
                continue
            observer.configuration_started(index, len(plan), model, threads)
            measured_before = True
            thermal_start = device.throttle_state(cpus)
            probe = LoadProbe()
            try:
                measurement = (measure_isolated if config.isolate else measure)(model.path, threads, config,
                                                                                model.runtime)
            except ModelRunError as exc:
                failed.add((model.path, model.runtime))
                result.failures.append(Failure(model.label, model.path.as_posix(), threads, str(exc)))
                observer.configuration_failed(model, threads, str(exc))
                continue
            samples_ms = measurement.samples_ms
            stats = latency_stats(samples_ms)
            load = probe.finish(threads)
            row = make_row(model, threads, config, measurement, stats, facts, oversubscribed=threads > cores,
                           load=load)
            row.update(device.thermal_columns(thermal_start, device.throttle_state(cpus)),
                       cpus=format_cpus(cpus) if cpus else None, cool_to_c=config.cool_to)
            row.update(extras.get(model.origin.resolve(), {}))
            with ctrl_c_deferred():  # what is on disk and what the result reports must agree
                if files:
                    files.save(row, samples_ms)
                result.rows.append(row)
                result.samples_ms.append(samples_ms)
            observer.configuration_finished(row, stats, measurement)
    except KeyboardInterrupt as exc:
        result.interrupted = True
        result.interruption = exc
    return result


def _check_cpus(config: BenchConfig) -> list[int]:
    """The CPUs the run may use: ``config.cpus`` (checked against this process's affinity) or that affinity."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        allowed = []
    if not config.cpus:
        return allowed
    if allowed and not set(config.cpus) <= set(allowed):
        raise UserInputError(
            f"--cpus {config.cpus_label}: this process may use CPUs {format_cpus(allowed)} only; choose among them"
        )
    return list(config.cpus)


def make_row(
    model: ModelFile,
    threads: int,
    config: BenchConfig,
    measurement: Measurement,
    stats: LatencyStats,
    facts: Mapping[str, Any],
    oversubscribed: bool,
    load: Load | None = None,
) -> dict[str, Any]:
    """One results row (keys are :data:`~mbbench.bench.schema.RESULT_COLUMNS`)."""
    return {
        "model": model.label,
        "threads": threads,
        **stats.as_columns(),
        "file": model.path.as_posix(),
        "sha256": model.sha256,
        "opset": model.opset,
        "input_shape": measurement.input_shape,
        "warmup": config.warmup,
        **_ort_columns(config, measurement),
        "session_ms": measurement.session_ms,
        "first_run_ms": measurement.first_run_ms,
        **facts,
        "onnxruntime_version": measurement.onnxruntime_version,
        **runtime_columns(measurement),
        "mbbench_version": __version__,
        # milliseconds, so that two quick runs appended to one file still have distinct sample keys
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "oversubscribed": oversubscribed,
        "min_time_s": float(config.min_time),
        "seed": config.seed,
        "isolated": config.isolate,
        **model.manifest_columns(),
        **(load or Load(None, None, None)).as_columns(),
        **model.conversion_columns(),
        **stats.mode_columns(),
    }


def refusal_row(model: ModelFile, threads: int, config: BenchConfig, facts: Mapping[str, Any],
                oversubscribed: bool) -> dict[str, Any]:
    """The row of a configuration its runtime cannot run (:attr:`ModelFile.refusal`): no latency (``rounds`` 0),
    everything that says what was asked, and the reason in ``unsupported``."""
    from mbbench.runtimes import get_runtime

    row: dict[str, Any] = dict.fromkeys(RESULT_COLUMNS)
    row.update(
        model=model.label, threads=threads, rounds=0, file=model.path.as_posix(), sha256=model.sha256,
        input_shape=(model.conversion or {}).get("input_shape"),
        opset=model.opset, warmup=config.warmup, **facts, runtime=model.runtime,
        runtime_version=get_runtime(model.runtime).version(), mbbench_version=__version__,
        timestamp=datetime.now(timezone.utc).isoformat(timespec="milliseconds"), oversubscribed=oversubscribed,
        min_time_s=float(config.min_time), seed=config.seed, isolated=config.isolate, unstable=False,
        bimodal=False, **model.manifest_columns(), **model.conversion_columns(), unsupported=model.refusal,
    )
    return row


def _ort_columns(config: BenchConfig, measurement: Measurement) -> dict[str, Any]:
    """ONNX Runtime's own options, as the columns have always held them (empty for another runtime's row)."""
    if measurement.runtime != "onnxruntime":
        return {"graph_opt": None, "spinning": None, "inter_threads": None, "provider": None}
    return {"graph_opt": config.graph_opt, "spinning": config.spinning_label, "inter_threads": config.inter_threads,
            "provider": measurement.provider}


def runtime_columns(measurement: Measurement) -> dict[str, Any]:
    """The runtime columns: its name and version, and what it read back (threads, precision, the rest as text)."""
    applied = dict(measurement.applied or {})
    threads, precision = applied.pop("threads", None), applied.pop("precision", None)
    return {
        "runtime": measurement.runtime,
        "runtime_version": measurement.runtime_version,
        "applied_threads": threads,
        "applied_precision": precision,
        "applied_settings": ";".join(f"{k}={v}" for k, v in sorted(applied.items())) or None,
        **{k: measurement.memory.get(k) for k in ("peak_rss_mib", "peak_delta_mib", "heap_delta_mib",
                                                  "memory_method")},
        "model_bytes": measurement.model_bytes,
    }


def resolve_extra_columns(
    extra: Mapping[str | os.PathLike, Mapping[str, Any]] | None, models: Sequence[ModelFile]
) -> tuple[dict[Path, dict[str, Any]], list[str]]:
    if not extra:
        return {}, []
    known = {m.origin.resolve() for m in models}
    by_path: dict[Path, dict[str, Any]] = {}
    names: dict[str, None] = {}
    for key, columns in extra.items():
        path = Path(key).resolve()
        if path not in known:
            raise UserInputError(f"extra_columns names {key}, which is not among the models benchmarked")
        clash = [c for c in columns if c in RESULT_COLUMNS]
        if clash:
            raise UserInputError(f"extra_columns cannot replace the built-in column {clash[0]!r}; rename it")
        by_path[path] = dict(columns)
        names.update(dict.fromkeys(columns))
    return by_path, list(names)


def default_output(folder: str | Path = "results") -> Path:
    """``results/<host>-<local time>.csv`` (:func:`mbbench._paths.default_results_csv`)."""
    return default_results_csv(folder)
