"""The measuring core: one ONNX Runtime session, its inputs and the timing loop. onnxruntime + numpy only.

What is timed, and why:

- session creation and the first (cold) inference are timed once each and reported apart, because they
  measure loading and lazy initialisation, not steady-state latency;
- the timed region of a round is ``session.run`` alone, between two ``perf_counter_ns`` reads: the inputs are
  built once before any run, and nothing else happens between the reads;
- the cyclic garbage collector is paused during the timed rounds: ``run`` allocates the output arrays, and a
  collection those allocations trigger would land inside a random round;
- exactly one session is alive at a time: it is dropped (and the collector run) before :func:`measure`
  returns or raises, because the spinning intra-op threads of an idle second session were seen to take the
  cores from the one being measured.
"""

from __future__ import annotations

import array
import gc
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnxruntime as ort

from mbbench.bench.options import MAX_INPUT_ELEMENTS, BenchConfig, InputShapeMismatch, InputShapes, format_shape
from mbbench.errors import MbbenchError, OptionError, first_line

_GRAPH_OPT = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8,
    "tensor(uint16)": np.uint16,
    "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64,
    "tensor(bool)": np.bool_,
}


class ModelRunError(MbbenchError):
    """A model could not be loaded or run; the sweep reports it in one line and skips the model."""


class ProviderError(OptionError):
    """The requested execution provider is not in this onnxruntime build."""


@dataclass
class Measurement:
    """What one configuration produced, before any statistics."""

    samples_ns: list[int]
    session_ms: float
    first_run_ms: float
    input_shape: str
    provider: str
    onnxruntime_version: str = ort.__version__
    pid: int = field(default_factory=os.getpid)

    @property
    def samples_ms(self) -> np.ndarray:
        return np.asarray(self.samples_ns, dtype=np.float64) / 1e6

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def check_provider(provider: str) -> None:
    available = ort.get_available_providers()
    if provider not in available:
        raise ProviderError(
            f"this onnxruntime {ort.__version__} has no {provider}; use one of: {', '.join(available)}"
        )


def session_options(threads: int, config: BenchConfig) -> ort.SessionOptions:
    """Session options for one configuration; the fidelity script builds its bare loop from these too."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = config.inter_threads
    options.execution_mode = (
        ort.ExecutionMode.ORT_PARALLEL if config.inter_threads > 1 else ort.ExecutionMode.ORT_SEQUENTIAL
    )
    options.graph_optimization_level = _GRAPH_OPT[config.graph_opt]
    if config.spinning is not None:
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if config.spinning else "0")
    # warnings go to stderr in the middle of the progress bar; real failures still raise
    options.log_severity_level = 3
    return options


def make_inputs(inputs, shapes: InputShapes, seed: int) -> tuple[dict[str, np.ndarray], str]:
    """Seeded, non-trivial input arrays for a session's inputs, and their shapes as an ``--input-shape`` value.

    Floats are standard normal (the range of a normalised image), 8-bit unsigned ints span 0-255 (raw pixels),
    other integers 0-9 (safe as indices), booleans are fair coin flips. Zeros would be unrealistic: some
    kernels shortcut on them, and denormal-free zero tensors run faster than real data on some CPUs.
    """
    rng = np.random.default_rng(seed)
    feed: dict[str, np.ndarray] = {}
    described = []
    for arg in inputs:
        dtype = _DTYPES.get(arg.type)
        if dtype is None:
            raise ModelRunError(f"input {arg.name!r} has type {arg.type}, which bench cannot fill with data")
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


def measure(path: str | Path, threads: int, config: BenchConfig) -> Measurement:
    """Load ``path`` with ``threads`` intra-op threads, run it cold, warm it up and time ``config.rounds``
    rounds (continuing until ``config.min_time`` seconds have also passed). Raises :class:`ModelRunError`."""
    path = Path(path)
    options = session_options(threads, config)
    session = run = None
    gc.collect()
    previous_affinity = pin_cpus(config.cpus)
    try:
        started = time.perf_counter_ns()
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=[config.provider])
        except Exception as exc:
            raise ModelRunError(f"cannot load {path.name}: {_first_line(exc)}") from None
        session_ns = time.perf_counter_ns() - started
        active = session.get_providers()
        if config.provider not in active:
            raise ModelRunError(f"{path.name} did not get {config.provider} (ORT fell back to {', '.join(active)})")
        try:
            feed, input_shape = make_inputs(session.get_inputs(), config.shapes, config.seed)
        except InputShapeMismatch as exc:
            raise ModelRunError(f"{path.name}: {exc}") from None
        run = session.run
        try:
            started = time.perf_counter_ns()
            run(None, feed)
            first_ns = time.perf_counter_ns() - started
            for _ in range(config.warmup):
                run(None, feed)
            samples = timed_rounds(run, feed, config.rounds, config.min_time)
        except Exception as exc:
            raise ModelRunError(f"cannot run {path.name}: {_first_line(exc)}") from None
    finally:
        # the frame may outlive this call inside a traceback, so drop the references explicitly
        session = run = None
        gc.collect()
        if previous_affinity is not None:
            os.sched_setaffinity(0, previous_affinity)
    return Measurement(
        samples_ns=samples.tolist(),
        session_ms=session_ns / 1e6,
        first_run_ms=first_ns / 1e6,
        input_shape=input_shape,
        provider=config.provider,
    )


def timed_rounds(run, feed, rounds: int, min_time: float = 0.0) -> array.array:
    """Per-round ``run(None, feed)`` durations in ns: at least ``rounds`` of them, and at least ``min_time``
    seconds of rounds in total."""
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
            run(None, feed)
            t1 = clock()
            append(t1 - t0)
            if len(samples) >= rounds and t1 - start >= min_time_ns:
                return samples
    finally:
        if collecting:
            gc.enable()


def _first_line(exc: BaseException) -> str:
    line = first_line(exc, limit=400)
    # ORT prefixes messages with its own error-code boilerplate, e.g. "[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :"
    if line.startswith("[ONNXRuntimeError]"):
        line = line.split(":", 3)[-1].strip() or line
    return line[:300]
