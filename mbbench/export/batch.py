"""Many exports at once (``mbbench export --all``): independent models, one worker process per core.

Each model's export is :func:`mbbench.export.api.export_precisions`, unchanged: every check it makes (opset,
simplification, parity with PyTorch, fidelity) is made. What changes is where it runs: with ``jobs`` above one,
in a pool of ``jobs`` worker processes (started with ``spawn``: torch is not fork-safe once its thread pools
exist), each importing torch, onnx and onnxruntime once for all the models it exports, and using
``cpus // jobs`` threads so the workers share the cores instead of fighting over them. Each worker ends with the
process that started it (a parent-death signal), so a killed export leaves no worker writing behind it; its
writes are atomic, so a killed worker leaves only a temporary file that the next export removes.

Progress arrives as events, in the order they happen: ``on_event(kind, name, detail)`` with ``kind`` one of
``started``, ``stage`` (detail: the stage), ``finished`` (detail: the list of results) and ``failed`` (detail:
the one-line reason). From a pool, a model's last ``stage`` may arrive after its ``finished``: a caller
showing what runs now ignores stages of models that ended.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from mbbench.errors import MbbenchError, OptionError

Event = Callable[[str, str, Any], None]

#: the most workers an export may use (each holds a model, torch and onnxruntime: ~0.5-1.5 GB)
MAX_JOBS = 64


def check_jobs(jobs: object) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not 1 <= jobs <= MAX_JOBS:
        raise OptionError(f"jobs must be a whole number from 1 to {MAX_JOBS}, not {jobs!r}")
    return jobs


def default_jobs(count: int) -> int:
    """One worker per CPU this process may use, never more than the models to export."""
    from mbbench.bench.environment import available_cpus

    return max(1, min(available_cpus(), count))


def export_many(
    names: Sequence[str],
    precisions: Sequence[str] = ("fp32",),
    *,
    jobs: int | None = None,
    on_event: Event | None = None,
    **options: Any,
) -> tuple[list, list[tuple[str, str]]]:
    """Export each of ``names`` (registry names) as :func:`~mbbench.export.api.export_precisions` does, with its
    ``options``; return ``(results, failures)``: the results of every model in ``names``' order, and
    ``(name, reason)`` for each model whose export was refused (an :class:`~mbbench.errors.MbbenchError`).
    Any other exception is a bug and propagates."""
    names = list(names)
    jobs = check_jobs(jobs) if jobs is not None else default_jobs(len(names))
    emit = on_event or (lambda kind, name, detail: None)
    if jobs == 1 or len(names) <= 1:
        return _in_process(names, precisions, emit, options)
    return _in_pool(names, precisions, min(jobs, len(names)), emit, options)


def _one(name: str, precisions, options, stage) -> tuple[str, Any]:
    from mbbench.export.api import export_precisions

    try:
        return "finished", export_precisions(name, tuple(precisions), on_stage=stage, **options)
    except MbbenchError as exc:
        return "failed", str(exc)


def _in_process(names, precisions, emit: Event, options) -> tuple[list, list]:
    done: dict[str, list] = {}
    failures = []
    for name in names:
        emit("started", name, None)
        kind, detail = _one(name, precisions, dict(options), lambda stage, name=name: emit("stage", name, stage))
        emit(kind, name, detail)
        if kind == "finished":
            done[name] = detail
        else:
            failures.append((name, detail))
    return [r for name in names for r in done.get(name, ())], failures


# --- the pool ---------------------------------------------------------------------------------------------------

_events: Any = None  # in a worker: the queue its progress goes to


def _worker_start(events, parent: int, threads: int) -> None:
    global _events
    from mbbench.bench._worker import die_with_parent

    die_with_parent(parent)
    _events = events
    import torch

    torch.set_num_threads(threads)


def _worker_export(name: str, precisions, options) -> tuple[str, Any]:
    _events.put(("started", name, None))
    return _one(name, precisions, options, lambda stage: _events.put(("stage", name, stage)))


def _in_pool(names, precisions, jobs: int, emit: Event, options) -> tuple[list, list]:
    from mbbench.bench.environment import available_cpus

    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    threads = max(1, available_cpus() // jobs)
    pool = concurrent.futures.ProcessPoolExecutor(jobs, mp_context=context, initializer=_worker_start,
                                                  initargs=(events, os.getpid(), threads))
    lock = threading.Lock()
    stop = threading.Event()

    def relay() -> None:  # the workers' progress, shown as it happens (the caller's callback, one at a time)
        while not stop.is_set():
            try:
                kind, name, detail = events.get(timeout=0.1)
            except queue.Empty:
                continue
            with lock:
                emit(kind, name, detail)

    relayer = threading.Thread(target=relay, name="mbbench-export-events", daemon=True)
    relayer.start()
    done: dict[str, list] = {}
    failures = []
    try:
        futures = {pool.submit(_worker_export, name, tuple(precisions), dict(options)): name for name in names}
        for future in concurrent.futures.as_completed(futures):
            name = futures[future]
            kind, detail = future.result()
            with lock:
                emit(kind, name, detail)
            if kind == "finished":
                done[name] = detail
            else:
                failures.append((name, detail))
    except BaseException:
        for process in list(getattr(pool, "_processes", {}).values()):  # Ctrl-C, SIGTERM, a bug: stop them all
            process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        stop.set()
        relayer.join(5)
    pool.shutdown(wait=True)
    return [r for name in names for r in done.get(name, ())], failures
