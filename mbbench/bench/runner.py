"""The sweep: every (model, threads) configuration measured, summarised and saved as soon as it ends.

Portable: onnxruntime, numpy and the standard library only. Copy the ``mbbench/`` folder to a phone (Termux)
or a board and run::

    python -m mbbench.bench.runner models/ --threads 1-4 --rounds 50

It writes the same CSV schema as ``mbbench bench`` (``report`` reads either). Registry names need the full
install; there, pass paths.

Isolation: with ``isolate`` (the default) each configuration runs in a fresh ``python -m
mbbench.bench.runner --worker`` process, so one configuration's arena memory, thread pools and page cache
state cannot leak into the next; the parent never creates a session itself.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

import mbbench
from mbbench.bench.environment import machine_facts, usable_cores
from mbbench.bench.modelfile import ModelFile, resolve_models
from mbbench.bench.options import GRAPH_OPT_LEVELS, BenchConfig
from mbbench.bench.results import ResultFiles, ctrl_c_deferred
from mbbench.bench.schema import RESULT_COLUMNS
from mbbench.bench.session import Measurement, ModelRunError, check_provider, measure
from mbbench.bench.stats import LatencyStats, latency_stats
from mbbench.bench.summary import format_latency, oversubscription_warning, render_text
from mbbench._io import atomic_write_text
from mbbench.errors import MbbenchError, UserInputError


class SweepObserver:
    """Hooks a front end implements to show progress; every method is optional (the default does nothing)."""

    def note(self, message: str) -> None:
        """Something the user should know before or during the run (oversubscription, a choice made)."""

    def sweep_started(self, total: int) -> None:
        pass

    def configuration_started(self, index: int, total: int, model: ModelFile, threads: int) -> None:
        pass

    def configuration_finished(self, row: dict[str, Any], stats: LatencyStats, measurement: Measurement) -> None:
        pass

    def configuration_failed(self, model: ModelFile, threads: int, message: str) -> None:
        pass

    def configuration_skipped(self, model: ModelFile, threads: int) -> None:
        """Called for the remaining configurations of a model that already failed."""


@dataclass(frozen=True)
class Failure:
    model: str
    file: str
    threads: int
    message: str


@dataclass
class SweepResult:
    rows: list[dict[str, Any]]
    #: per saved row, in the same order: its per-round latencies in ms
    samples_ms: list[np.ndarray]
    failures: list[Failure]
    #: configurations planned (models x thread counts)
    total: int
    interrupted: bool = False
    output: Path | None = None
    samples_output: Path | None = None
    columns: list[str] = field(default_factory=lambda: list(RESULT_COLUMNS))


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
    check_provider(config.provider)
    extras, extra_names = _extra_columns(extra_columns, models)
    columns = list(RESULT_COLUMNS) + extra_names
    files = ResultFiles(output, columns, append) if output is not None else None
    if files:
        files.prepare_folder()
    facts = machine_facts()
    cores = usable_cores()
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
    failed: set[Path] = set()
    observer.sweep_started(len(plan))
    measured_before = False
    try:
        for index, (model, threads) in enumerate(plan, start=1):
            if model.path in failed:
                observer.configuration_skipped(model, threads)
                continue
            if measured_before and config.cooldown:
                time.sleep(config.cooldown)
            observer.configuration_started(index, len(plan), model, threads)
            measured_before = True
            try:
                measurement = (measure_isolated if config.isolate else measure)(model.path, threads, config)
            except ModelRunError as exc:
                failed.add(model.path)
                result.failures.append(Failure(model.label, model.path.as_posix(), threads, str(exc)))
                observer.configuration_failed(model, threads, str(exc))
                continue
            samples_ms = measurement.samples_ms
            stats = latency_stats(samples_ms)
            row = make_row(model, threads, config, measurement, stats, facts, oversubscribed=threads > cores)
            row.update(extras.get(model.path.resolve(), {}))
            with ctrl_c_deferred():  # what is on disk and what the result reports must agree
                if files:
                    files.save(row, samples_ms)
                result.rows.append(row)
                result.samples_ms.append(samples_ms)
            observer.configuration_finished(row, stats, measurement)
    except KeyboardInterrupt:
        result.interrupted = True
    return result


def make_row(
    model: ModelFile,
    threads: int,
    config: BenchConfig,
    measurement: Measurement,
    stats: LatencyStats,
    facts: Mapping[str, Any],
    oversubscribed: bool,
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
        "graph_opt": config.graph_opt,
        "spinning": config.spinning_label,
        "inter_threads": config.inter_threads,
        "provider": measurement.provider,
        "session_ms": measurement.session_ms,
        "first_run_ms": measurement.first_run_ms,
        **facts,
        "onnxruntime_version": measurement.onnxruntime_version,
        "mbbench_version": mbbench.__version__,
        # milliseconds, so that two quick runs appended to one file still have distinct sample keys
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
        "oversubscribed": oversubscribed,
        "min_time_s": float(config.min_time),
        "seed": config.seed,
        "isolated": config.isolate,
        **model.manifest_columns(),
    }


def _extra_columns(
    extra: Mapping[str | os.PathLike, Mapping[str, Any]] | None, models: Sequence[ModelFile]
) -> tuple[dict[Path, dict[str, Any]], list[str]]:
    if not extra:
        return {}, []
    known = {m.path.resolve() for m in models}
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


# -- isolation ------------------------------------------------------------------------------------------------

def measure_isolated(path: str | Path, threads: int, config: BenchConfig) -> Measurement:
    """:func:`~mbbench.bench.session.measure` in a fresh worker process."""
    path = Path(path)
    job = {"path": str(path), "threads": threads, "config": config.to_dict()}
    handle, result_file = tempfile.mkstemp(prefix="mbbench-worker-", suffix=".json")
    os.close(handle)
    env = dict(os.environ)
    # the worker must import this very copy of mbbench, also from an uninstalled tree on a phone
    package_root = str(Path(mbbench.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mbbench.bench.runner", "--worker", result_file],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True,
        )
        try:
            _, stderr = proc.communicate(json.dumps(job))
        except BaseException:  # Ctrl-C: the worker got it too, but never leave it behind
            proc.kill()
            proc.wait()
            raise
        if proc.returncode in (130, -signal.SIGINT):
            # the worker saw the Ctrl-C first; the parent's own KeyboardInterrupt may still be on its way
            raise KeyboardInterrupt
        try:
            data = json.loads(Path(result_file).read_text() or "null")
        except (OSError, ValueError):
            data = None
        if not data:
            last = (stderr or "").strip().splitlines()
            detail = f": {last[-1][:300]}" if last else ""
            raise ModelRunError(f"the worker measuring {path.name} died ({_exit_reason(proc.returncode)}){detail}")
        if not data.get("ok"):
            raise ModelRunError(data.get("error") or f"the worker measuring {path.name} failed")
        return Measurement(**data["measurement"])
    finally:
        try:
            os.unlink(result_file)
        except OSError:
            pass


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"exit status {code}"


def _worker(result_file: str) -> int:
    try:
        job = json.load(sys.stdin)
        try:
            config = BenchConfig.from_dict(job["config"])
            measurement = measure(job["path"], int(job["threads"]), config)
            outcome = {"ok": True, "measurement": measurement.to_dict()}
        except MbbenchError as exc:
            outcome = {"ok": False, "error": str(exc)}
        atomic_write_text(result_file, json.dumps(outcome))  # the parent reads all of the result or none
        return 0
    except KeyboardInterrupt:
        return 130


# -- portable command line ------------------------------------------------------------------------------------

def default_output(folder: str | Path = "results") -> Path:
    """``results/<host>-<local time>.csv``, with a counter if a run in the same second took that name."""
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "host"
    stem = f"{host}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, n = Path(folder) / f"{stem}.csv", 1
    while path.exists():
        n += 1
        path = Path(folder) / f"{stem}-{n}.csv"
    return path


class _TextObserver(SweepObserver):
    def __init__(self, stream=sys.stderr):
        self.stream = stream

    def note(self, message: str) -> None:
        print(f"note: {message}", file=self.stream, flush=True)

    def configuration_started(self, index, total, model, threads):
        self._prefix = f"[{index}/{total}] {model.label} @ {threads} thread{'s' if threads > 1 else ''}"

    def configuration_finished(self, row, stats, measurement):
        flag = " (unstable)" if stats.unstable else ""
        print(f"{self._prefix}: {format_latency(stats.mean_ms, stats.std_ms)} ms{flag}", file=self.stream,
              flush=True)

    def configuration_failed(self, model, threads, message):
        print(f"{self._prefix}: FAILED: {message}", file=self.stream, flush=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m mbbench.bench.runner",
        description="Portable ONNX Runtime latency sweep (onnxruntime + numpy only); same CSV as 'mbbench bench'.",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help=".onnx file, folder of them, or registry name")
    parser.add_argument("--threads", default="1,2", help="2, 1-4 or 1,2,4 (default: 1,2)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.0, metavar="S")
    parser.add_argument("--graph-opt", choices=GRAPH_OPT_LEVELS, default="all")
    spin = parser.add_mutually_exclusive_group()
    spin.add_argument("--spin", dest="spinning", action="store_true", default=None)
    spin.add_argument("--no-spin", dest="spinning", action="store_false")
    parser.add_argument("--inter-threads", type=int, default=1)
    parser.add_argument("--provider", default="CPUExecutionProvider")
    parser.add_argument("--input-shape", action="append", default=[], metavar="SPEC")
    parser.add_argument("--seed", type=int, default=0)
    iso = parser.add_mutually_exclusive_group()
    iso.add_argument("--isolate", dest="isolate", action="store_true", default=True)
    iso.add_argument("--no-isolate", dest="isolate", action="store_false")
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--cooldown", type=float, default=0.0, metavar="S")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--append", action="store_true")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) == 2 and argv[0] == "--worker":
        return _worker(argv[1])
    args = build_parser().parse_args(argv)
    observer = _TextObserver()
    try:
        config = BenchConfig(
            threads=args.threads, rounds=args.rounds, warmup=args.warmup, min_time=args.min_time,
            graph_opt=args.graph_opt, spinning=args.spinning, inter_threads=args.inter_threads,
            provider=args.provider, input_shapes=tuple(args.input_shape), seed=args.seed, isolate=args.isolate,
            shuffle=args.shuffle, cooldown=args.cooldown,
        )
        models = resolve_models(args.models, args.models_dir, note=observer.note)
        output = args.output or default_output()
        result = run_sweep(models, config, output=output, append=args.append, observer=observer)
    except MbbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if result.rows:
        print(render_text(result.rows))
    for failure in result.failures:
        print(f"failed: {failure.model}: {failure.message}", file=sys.stderr)
    saved = f"{len(result.rows)} of {result.total} configurations saved to {result.output}" if result.rows else (
        "nothing saved")
    if result.interrupted:
        print(f"interrupted: {saved}", file=sys.stderr)
        return 130
    print(saved, file=sys.stderr)
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
