"""The measuring core: one runtime session, its inputs and the timing loop. numpy and the runtime it drives only.

What is timed, and why:

- session creation and the first (cold) inference are timed once each and reported apart, because they
  measure loading and lazy initialisation, not steady-state latency;
- the timed region of a round is the session's run alone (:meth:`mbbench.runtimes.Session.run`), between two
  ``perf_counter_ns`` reads: the inputs are built and bound (:meth:`~mbbench.runtimes.Session.prepare`, where an
  NHWC runtime transposes them) once before any run, and nothing else happens between the reads;
- the cyclic garbage collector is paused during the timed rounds: a run allocates its output arrays, and a
  collection those allocations trigger would land inside a random round;
- exactly one session is alive at a time: it is closed (and the collector run) before :func:`measure` returns or
  raises, because the spinning threads of an idle second session were seen to take the cores from the one being
  measured.

Which runtime runs the file is the model's (:attr:`mbbench.bench.modelfile.ModelFile.runtime`); the runtime's
module is imported only when a configuration uses it (:mod:`mbbench.runtimes`).
"""

from __future__ import annotations

import array
import gc
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mbbench.bench.memory import MemoryProbe
from mbbench.bench.options import MAX_INPUT_ELEMENTS, BenchConfig, InputShapeMismatch, InputShapes, format_shape
from mbbench.errors import OptionError
from mbbench.runtimes import DEFAULT_RUNTIME, get_runtime
from mbbench.runtimes._base import ModelRunError, RuntimeNotInstalled

__all__ = ["Measurement", "ModelRunError", "ProviderError", "check_provider", "make_inputs", "measure",
           "pin_cpus", "session_options", "timed_rounds"]


class ProviderError(OptionError):
    """The requested execution provider is not in this onnxruntime build."""


@dataclass
class Measurement:
    """What one configuration produced, before any statistics."""

    samples_ns: list[int]
    session_ms: float
    first_run_ms: float
    input_shape: str
    provider: str | None
    runtime: str = DEFAULT_RUNTIME
    runtime_version: str | None = None
    #: what the runtime reports it applied (threads, precision, ...), read back from it
    applied: dict[str, Any] = field(default_factory=dict)
    #: :class:`mbbench.bench.memory.MemoryFigures` as columns, and the artifact's size on disk
    memory: dict[str, Any] = field(default_factory=dict)
    model_bytes: int | None = None
    pid: int = field(default_factory=os.getpid)

    @property
    def onnxruntime_version(self) -> str | None:
        """The ``onnxruntime_version`` column: ONNX Runtime's version when it ran the row, else empty."""
        return self.runtime_version if self.runtime == "onnxruntime" else None

    @property
    def samples_ms(self) -> np.ndarray:
        return np.asarray(self.samples_ns, dtype=np.float64) / 1e6

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def check_provider(provider: str) -> None:
    """The provider exists in this onnxruntime (:class:`ProviderError` listing those that do)."""
    from mbbench.runtimes.onnxruntime import check_provider as check

    check(provider)


def session_options(threads: int, config: BenchConfig):
    """ONNX Runtime's SessionOptions for one configuration (the fidelity script builds its bare loop from these)."""
    from mbbench.runtimes.onnxruntime import session_options as made

    return made(threads, config.runtime_settings("onnxruntime"))


def make_inputs(inputs, shapes: InputShapes, seed: int) -> tuple[dict[str, np.ndarray], str]:
    """Seeded, non-trivial input arrays for a session's inputs (:class:`~mbbench.runtimes.InputSpec`), and their
    shapes as an ``--input-shape`` value.

    Floats are standard normal (the range of a normalised image), 8-bit unsigned ints span 0-255 (raw pixels),
    other integers 0-9 (safe as indices), booleans are fair coin flips. Zeros would be unrealistic: some
    kernels shortcut on them, and denormal-free zero tensors run faster than real data on some CPUs. The same
    seed gives every runtime the same tensors.
    """
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    described = []
    for arg in inputs:
        dtype = arg.dtype
        if dtype is None:
            raise ModelRunError(f"input {arg.name!r} has a type bench cannot fill with data")
        dtype = np.dtype(dtype).type
        shape = shapes.resolve(arg.name, arg.shape)
        if math.prod(shape) > MAX_INPUT_ELEMENTS:
            # the limit --input-shape has, for shapes fixed in the file too: 1x3x100000x100000 is 120 GB of floats
            raise ModelRunError(f"input {arg.name!r} of shape {format_shape(shape)} has {math.prod(shape):,} "
                                f"elements, more than the limit of 2**31; pass a model with a smaller input")
        if np.issubdtype(dtype, np.floating):
            value = rng.standard_normal(shape, dtype=np.float32).astype(dtype, copy=False)
        elif dtype is np.uint8:
            value = rng.integers(0, 256, size=shape, dtype=np.uint8)
        elif dtype is np.bool_:
            value = rng.random(shape) < 0.5
        else:
            value = rng.integers(0, 10, size=shape).astype(dtype)
        feed[arg.name] = value
        described.append((arg.name, format_shape(shape)))
    if len(described) == 1:
        return feed, described[0][1]
    return feed, ";".join(f"{name}:{dims}" for name, dims in described)


def pin_cpus(cpus) -> set[int] | None:
    """Pin this process (and the threads ORT creates after this) to ``cpus``; return the affinity to restore.

    ORT's intra-op pool is created with the session, so pinning before the session pins the pool too.
    """
    if not cpus:
        return None
    if not hasattr(os, "sched_setaffinity"):
        raise ModelRunError("--cpus needs CPU affinity, which this operating system does not offer to Python")
    previous = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, set(cpus))
    except OSError as exc:
        raise ModelRunError(f"cannot pin to CPUs {sorted(cpus)}: {exc.strerror}") from None
    return previous


def measure(path: str | Path, threads: int, config: BenchConfig, runtime: str = DEFAULT_RUNTIME) -> Measurement:
    """Open ``path`` in ``runtime`` with ``threads`` threads, run it cold, warm it up and time ``config.rounds``
    rounds (continuing until ``config.min_time`` seconds have also passed). Raises :class:`ModelRunError`."""
    path = Path(path)
    engine = get_runtime(runtime)
    try:
        version = engine.check_installed()
    except RuntimeNotInstalled as exc:
        raise ModelRunError(str(exc)) from None
    options = config.runtime_settings(runtime)
    session = run = None
    gc.collect()
    previous_affinity = pin_cpus(config.cpus)
    try:
        memory = MemoryProbe()  # the runtime is imported: from here on, what this configuration costs
        started = time.perf_counter_ns()
        session = engine.open(str(path), threads, options)
        session_ns = time.perf_counter_ns() - started
        memory.sample()
        try:
            feed, input_shape = make_inputs(session.inputs, config.shapes, config.seed)
        except InputShapeMismatch as exc:
            raise ModelRunError(f"{path.name}: {exc}") from None
        try:
            session.prepare(feed)
            run = session.run
            started = time.perf_counter_ns()
            run()
            first_ns = time.perf_counter_ns() - started
            memory.sample()
            for _ in range(config.warmup):
                run()
            samples = timed_rounds(run, config.rounds, config.min_time)
            figures = memory.finish()
            applied = session.applied()
        except ModelRunError:
            raise
        except Exception as exc:  # noqa: BLE001 - a runtime fails at run time in its own ways: one line
            raise ModelRunError(f"cannot run {path.name}: {engine.error_text(exc)}") from None
    finally:
        # the frame may outlive this call inside a traceback, so drop the references explicitly
        if session is not None:
            session.close()
        session = run = None
        gc.collect()
        if previous_affinity is not None:
            os.sched_setaffinity(0, previous_affinity)
    return Measurement(
        samples_ns=samples.tolist(),
        session_ms=session_ns / 1e6,
        first_run_ms=first_ns / 1e6,
        input_shape=input_shape,
        provider=options.get("provider") if runtime == "onnxruntime" else None,
        runtime=runtime,
        runtime_version=version,
        applied=applied,
        memory=figures.as_columns(),
        model_bytes=artifact_bytes(path),
    )


#: the files a format keeps beside the one a runtime opens (an ncnn ``.param``'s weights and input-shape sidecar,
#: an OpenVINO ``.xml``'s weights), by the opened file's suffix
COMPANIONS = {".param": (".bin", ".json"), ".xml": (".bin",)}


def companions(path: Path) -> list[Path]:
    """The files that belong with ``path`` (:data:`COMPANIONS`) and exist."""
    return [path.with_suffix(s) for s in COMPANIONS.get(path.suffix, ()) if path.with_suffix(s).is_file()]


def artifact_bytes(path: Path) -> int | None:
    """The artifact's size on disk: the file with its :func:`companions`."""
    try:
        return sum(p.stat().st_size for p in (path, *companions(path)))
    except OSError:
        return None


def timed_rounds(run, rounds: int, min_time: float = 0.0) -> array.array:
    """Per-round ``run()`` durations in ns: at least ``rounds`` of them, and at least ``min_time`` seconds of rounds
    in total."""
    clock = time.perf_counter_ns
    min_time_ns = int(min_time * 1e9)
    samples = array.array("q")  # 8 bytes a round, so a long --min-time does not balloon
    append = samples.append
    collecting = gc.isenabled()
    gc.disable()
    try:
        start = clock()
        while True:
            t0 = clock()
            run()
            t1 = clock()
            append(t1 - t0)
            if len(samples) >= rounds and t1 - start >= min_time_ns:
                return samples
    finally:
        if collecting:
            gc.enable()
