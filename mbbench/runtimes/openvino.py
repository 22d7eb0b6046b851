"""OpenVINO (``pip install 'mbbench[openvino]'``): reads the ``.onnx`` export itself, compiled for the CPU.

Pinned at every compile, because OpenVINO's own choices would change what is measured: the inference precision
(f32: a plain compile on a CPU with AVX-512 BF16 or AMX silently runs in bfloat16, and on ARM it may pick f16), the
compute threads (``INFERENCE_NUM_THREADS``), the latency hint and one stream. What was applied is read back from the
compiled model (``get_property``) and the precision every executed kernel ran in from its runtime graph, so a row
says ``f32`` only when every kernel ran in f32.

Telemetry: importing ``openvino`` imports its model converter's package, which sends a usage event through the
``openvino_telemetry`` package (opted in by default). The module is made unimportable for this process before
OpenVINO is imported, and the converter then uses its bundled no-op stub: nothing leaves the machine.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from mbbench.runtimes._base import InputSpec, ModelRunError, OptionSpec, Runtime, Session

_PRECISIONS = ("f32", "bf16", "f16")


def _openvino():
    sys.modules.setdefault("openvino_telemetry", None)  # the converter falls back to its no-op telemetry stub
    import openvino

    return openvino


class OpenVinoSession(Session):
    def __init__(self, compiled, model_inputs):
        self._compiled = compiled
        self._request = compiled.create_infer_request()
        self.inputs = model_inputs

    def prepare(self, feed: Mapping[str, np.ndarray]) -> None:
        ov = _openvino()
        for spec in self.inputs:
            # bound once: infer() reads these tensors, nothing is copied in the timed region
            self._request.set_tensor(spec.name, ov.Tensor(np.ascontiguousarray(feed[spec.name])))
        self.run = self._request.infer  # type: ignore[method-assign]

    def run(self) -> None:  # replaced by prepare()
        self._request.infer()

    def outputs(self) -> list[np.ndarray]:
        self._request.infer()
        return [np.array(self._request.get_output_tensor(i).data, copy=True)
                for i in range(len(self._compiled.outputs))]  # fmt: skip

    def applied(self) -> dict[str, Any]:
        import openvino.properties as props
        import openvino.properties.hint as hints

        kernels = Counter(
            node.get_rt_info()["runtimePrecision"].astype(str)
            for node in self._compiled.get_runtime_model().get_ops()
            if node.get_rt_info()["layerType"].astype(str) not in ("Const", "Input", "Output")
        )
        hint = self._compiled.get_property(hints.inference_precision).get_type_name()
        return {
            "threads": int(self._compiled.get_property(props.inference_num_threads)),
            # what the kernels ran in, not only the hint: "f32" only when every executed kernel did
            "precision": "+".join(sorted(kernels)) if kernels else hint,
            "precision_hint": hint,
            "streams": int(self._compiled.get_property(props.num_streams)),
            "performance_hint": str(self._compiled.get_property(hints.performance_mode)).rsplit(".", 1)[-1],
        }

    def close(self) -> None:
        self._request = self._compiled = None  # type: ignore[assignment]


class OpenVino(Runtime):
    name = "openvino"
    artifact = "ONNX (read by OpenVINO, compiled for the CPU)"
    suffix = ".onnx"
    package = "openvino"
    extra = "openvino"
    options = {
        "precision": OptionSpec("f32", _PRECISIONS, "the inference precision the CPU plugin is pinned to"),
        "hint": OptionSpec("latency", ("latency", "throughput"), "the performance hint"),
        "streams": OptionSpec("1", (), "inference streams (1: one request at a time, as bench runs them)"),
        "pinning": OptionSpec("default", ("default", "on", "off"), "CPU pinning of the compute threads"),
    }

    def version(self) -> str | None:
        try:
            return _openvino().get_version().split("-", 1)[0]
        except ImportError:
            return None

    def check_installed(self) -> str:
        try:
            return _openvino().get_version().split("-", 1)[0]
        except ImportError as exc:
            from mbbench.runtimes._base import RuntimeNotInstalled

            raise RuntimeNotInstalled(f"openvino is not installed here ({exc}); install it with "
                                      "pip install 'mbbench[openvino]'") from None  # fmt: skip

    def open(self, path: str, threads: int, options: Mapping[str, str]) -> Session:
        core = _openvino().Core()
        try:
            model = core.read_model(str(path))
            compiled = core.compile_model(model, "CPU", _config(options, threads))
        except Exception as exc:  # noqa: BLE001 - OpenVINO refuses a model in many ways: one line each
            raise ModelRunError(f"openvino cannot compile {_name(path)}: {self.error_text(exc)}") from None
        inputs = []
        for port in model.inputs:
            shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
            inputs.append(InputSpec(port.get_any_name(), shape, np.dtype(port.get_element_type().to_dtype())))
        return OpenVinoSession(compiled, inputs)

    def error_text(self, exc: BaseException) -> str:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip() and not line.startswith("Exception")]
        return (lines[0] if lines else type(exc).__name__)[:300]

    def profile(self, path, threads, options, rounds, warmup, feed):
        """OpenVINO's performance counters: per executed node, its real time in each run."""
        ov = _openvino()
        import openvino.properties as props

        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU",
                                      {**_config(options, threads), props.enable_profiling: True})
        request = compiled.create_infer_request()
        for name, value in feed.items():
            request.set_tensor(name, ov.Tensor(np.ascontiguousarray(value)))
        for _ in range(1 + warmup):
            request.infer()
        runs = []
        for _ in range(rounds):
            request.infer()
            runs.append([{"node": i.node_name, "op_type": i.node_type, "kernel": i.exec_type,
                          "ms": i.real_time.total_seconds() * 1e3}
                         for i in request.profiling_info if i.status == i.Status.EXECUTED])  # fmt: skip
        return runs


def _config(options: Mapping[str, str], threads: int) -> dict:
    """What every compile pins: precision, threads, the performance hint, streams (and pinning when asked)."""
    ov = _openvino()
    import openvino.properties as props
    import openvino.properties.hint as hints

    config = {
        hints.inference_precision: getattr(ov.Type, options.get("precision") or "f32"),
        props.inference_num_threads: threads,
        hints.performance_mode: (hints.PerformanceMode.LATENCY if (options.get("hint") or "latency") == "latency"
                                 else hints.PerformanceMode.THROUGHPUT),  # fmt: skip
        props.num_streams: int(options.get("streams") or 1),
    }
    if (options.get("pinning") or "default") != "default":
        config[props.hint.enable_cpu_pinning] = options["pinning"] == "on"
    return config


def _name(path: str) -> str:
    return str(path).replace("\\", "/").rsplit("/", 1)[-1]


RUNTIME = OpenVino()
