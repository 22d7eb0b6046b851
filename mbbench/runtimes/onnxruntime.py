"""ONNX Runtime: the ``.onnx`` export itself, on the CPU execution provider (or another one this build has).

Its options are the ones bench has always had: the graph optimisation level, intra-op spinning, inter-op threads
and the execution provider. ``threads`` is ``intra_op_num_threads``, the size of ORT's compute pool (the calling
thread is one of them). Warnings go nowhere: they would land in the middle of the progress bar, and real failures
still raise.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnxruntime as ort

from mbbench.errors import first_line
from mbbench.runtimes._base import InputSpec, ModelRunError, OptionSpec, Runtime, RuntimeOptionError, Session

GRAPH_OPT = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32, "tensor(int64)": np.int64,
    "tensor(uint8)": np.uint8, "tensor(uint16)": np.uint16, "tensor(uint32)": np.uint32,
    "tensor(uint64)": np.uint64, "tensor(bool)": np.bool_,
}  # fmt: skip


def error_text(exc: BaseException) -> str:
    """ORT's message in one line, without its error-code boilerplate ("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :")."""
    line = first_line(exc, limit=400)
    if line.startswith("[ONNXRuntimeError]"):
        line = line.split(":", 3)[-1].strip() or line
    return line[:300]


def check_provider(provider: str) -> None:
    from mbbench.bench.session import ProviderError

    available = ort.get_available_providers()
    if provider not in available:
        raise ProviderError(f"this onnxruntime {ort.__version__} has no {provider}; use one of: {', '.join(available)}")


def session_options(threads: int, options: Mapping[str, str]) -> ort.SessionOptions:
    """ORT's SessionOptions for ``threads`` and this runtime's ``options`` (the fidelity script's bare loop uses
    them too)."""
    made = ort.SessionOptions()
    made.intra_op_num_threads = threads
    inter = int(options.get("inter_threads") or 1)
    made.inter_op_num_threads = inter
    made.execution_mode = ort.ExecutionMode.ORT_PARALLEL if inter > 1 else ort.ExecutionMode.ORT_SEQUENTIAL
    made.graph_optimization_level = GRAPH_OPT[options.get("graph_opt") or "all"]
    # ORT's CPU arena and memory-pattern planner both trade memory for speed (the peak memory shows by how much)
    made.enable_cpu_mem_arena = (options.get("arena") or "on") == "on"
    made.enable_mem_pattern = (options.get("mem_pattern") or "on") == "on"
    spinning = options.get("spinning") or "default"
    if spinning != "default":
        made.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning == "on" else "0")
    made.log_severity_level = 3
    return made


def input_specs(session: ort.InferenceSession) -> list[InputSpec]:
    """An ORT session's inputs as the interface describes them (dtype None for a type bench cannot fill)."""
    return [InputSpec(a.name, tuple(a.shape), np.dtype(_DTYPES[a.type]) if a.type in _DTYPES else None)
            for a in session.get_inputs()]  # fmt: skip


class OrtSession(Session):
    def __init__(self, session: ort.InferenceSession, options: ort.SessionOptions):
        self._session, self._options = session, options
        self.inputs = input_specs(session)
        self._feed: dict[str, np.ndarray] = {}

    def prepare(self, feed: Mapping[str, np.ndarray]) -> None:
        self._feed = dict(feed)
        # the timed call is ORT's own run with its arguments bound: no Python frame of mbbench's in between
        self.run = functools.partial(self._session.run, None, self._feed)  # type: ignore[method-assign]

    def run(self) -> None:  # replaced by prepare(); kept for the interface
        self._session.run(None, self._feed)

    def outputs(self) -> list[np.ndarray]:
        return [np.asarray(o) for o in self._session.run(None, self._feed)]

    def applied(self) -> dict[str, Any]:
        read = self._session.get_session_options()
        return {
            "threads": read.intra_op_num_threads or None,
            "precision": "as stored",  # the CPU provider computes in the graph's own types
            "inter_threads": read.inter_op_num_threads,
            "graph_opt": str(read.graph_optimization_level).rsplit(".", 1)[-1],
            "arena": "on" if read.enable_cpu_mem_arena else "off",
            "mem_pattern": "on" if read.enable_mem_pattern else "off",
            "providers": ",".join(self._session.get_providers()),
        }

    def close(self) -> None:
        self._session = None  # type: ignore[assignment]
        self.run = None  # type: ignore[method-assign]


class OnnxRuntime(Runtime):
    name = "onnxruntime"
    artifact = "ONNX"
    suffix = ".onnx"
    package = "onnxruntime"
    extra = "test"  # a dependency of mbbench itself
    options = {
        "graph_opt": OptionSpec("all", tuple(GRAPH_OPT), "ORT graph optimisation level"),
        "spinning": OptionSpec("default", ("default", "on", "off"), "intra-op thread spinning (default: ORT's: on)"),
        "inter_threads": OptionSpec("1", (), "inter-op threads; above 1 switches ORT to its parallel executor"),
        "provider": OptionSpec("CPUExecutionProvider", (), "execution provider"),
        "arena": OptionSpec("on", ("on", "off"), "the CPU memory arena (enable_cpu_mem_arena)"),
        "mem_pattern": OptionSpec("on", ("on", "off"), "the memory-pattern planner (enable_mem_pattern)"),
    }

    def check_options(self, given: Mapping[str, str]) -> dict[str, str]:
        out = super().check_options(given)
        check_provider(out["provider"])
        try:
            if not 1 <= int(out["inter_threads"]) <= 1024:
                raise ValueError
        except ValueError:
            raise RuntimeOptionError(f"onnxruntime option inter_threads={out['inter_threads']!r}: a whole number "
                                     "from 1 to 1024") from None  # fmt: skip
        return out

    def version(self) -> str | None:
        return ort.__version__

    def error_text(self, exc: BaseException) -> str:
        return error_text(exc)

    def check_installed(self) -> str:
        return ort.__version__

    def open(self, path: str, threads: int, options: Mapping[str, str]) -> Session:
        made = session_options(threads, options)
        provider = options.get("provider") or "CPUExecutionProvider"
        try:
            session = ort.InferenceSession(str(path), sess_options=made, providers=[provider])
        except Exception as exc:  # noqa: BLE001 - an unreadable file fails in many ways; all are one line
            raise ModelRunError(f"cannot load {_name(path)}: {error_text(exc)}") from None
        active = session.get_providers()
        if provider not in active:
            raise ModelRunError(f"{_name(path)} did not get {provider} (ORT fell back to {', '.join(active)})")
        return OrtSession(session, made)


def _name(path: str) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]


RUNTIME = OnnxRuntime()
