"""MNN (``pip install 'mbbench[mnn]'``): the ``.mnn`` file MNN's own converter makes from the ONNX export.

Conversion runs in this process through the converter's C extension (``_tools.mnnconvert``). The package's
``mnnconvert``/``mnnquant`` console scripts, and ``MNN.tools.mnnconvert`` which they run, are never used: importing
that module imports ``MNN.tools.utils.log``, which pip-installs a logging SDK into whatever Python is on PATH and
posts usage logs. The converter reports success even when it fails; a conversion counts only when the file appears,
opens and computes what the export computes (:mod:`mbbench.runtimes.artifacts` checks the last). MNN has no
``Col2Im``: MobileViT v2 converts from its pixel (DepthToSpace) or reshape fold, the forms below opset 18.

A session runs on the CPU backend with ``numThread`` threads and ``precision`` (``high``: fp32 arithmetic, the
default here; ``normal`` lets MNN pick lower precision where the CPU has it); the thread count applied is read back
with ``getSessionInfo`` (MNN caps it at the cores it finds). Inputs are copied into MNN's tensor in ``prepare``.
"""

from __future__ import annotations

import functools
import os
import re
import struct
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mbbench.runtimes._base import InputSpec, ModelRunError, OptionSpec, Runtime, Session, UnsupportedModel

_PRECISION_WORDS = {"high": "fp32", "normal": "normal (fp16 where the CPU has it)", "low": "low"}
# Interpreter::SessionInfoCode values; getSessionInfo hands the int's bits back as a Python float
_THREAD_NUMBER = 4


def _as_int(value: float) -> int:
    return struct.unpack("<i", struct.pack("<f", float(value)))[0]


def quiet_fds(call):
    """Run ``call()`` with file descriptors 1 and 2 sent to a file (MNN's C++ prints to them); return (result, text)."""
    with tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            result = call()
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
        sink.seek(0)
        return result, sink.read().decode(errors="replace")


def _mnn():
    # MNN prints the CPU's features on import, from C++: keep them off the caller's output
    module, _ = quiet_fds(lambda: __import__("MNN"))
    return module


class MnnSession(Session):
    def __init__(self, interpreter, session, precision: str):
        self._net, self._session, self._precision = interpreter, session, precision
        self._input = interpreter.getSessionInput(session)
        self._output = interpreter.getSessionOutput(session)
        shape = tuple(self._input.getShape())
        self.inputs = [InputSpec(_input_name(interpreter, session), shape, np.dtype(np.float32))]

    def prepare(self, feed: Mapping[str, np.ndarray]) -> None:
        mnn = _mnn()
        (value,) = feed.values()
        host = mnn.Tensor(value.shape, mnn.Halide_Type_Float, np.ascontiguousarray(value, dtype=np.float32),
                          mnn.Tensor_DimensionType_Caffe)  # fmt: skip
        self._input.copyFrom(host)  # NCHW into MNN's own layout here, not in run()
        self.run = functools.partial(self._net.runSession, self._session)  # type: ignore[method-assign]

    def run(self) -> None:  # replaced by prepare()
        self._net.runSession(self._session)

    def outputs(self) -> list[np.ndarray]:
        mnn = _mnn()
        self._net.runSession(self._session)
        shape = self._output.getShape()
        host = mnn.Tensor(shape, mnn.Halide_Type_Float, np.zeros(shape, np.float32), mnn.Tensor_DimensionType_Caffe)
        self._output.copyToHostTensor(host)
        return [np.array(host.getNumpyData(), copy=True)]

    def applied(self) -> dict[str, Any]:
        return {"threads": _as_int(self._net.getSessionInfo(self._session, _THREAD_NUMBER)),
                "precision": self._precision, "backend": "CPU"}

    def close(self) -> None:
        self._net = self._session = self._input = self._output = None


def _input_name(interpreter, session) -> str:
    names = list(interpreter.getSessionInputAll(session))
    return names[0] if names else "input"


class Mnn(Runtime):
    name = "mnn"
    artifact = "MNN (.mnn)"
    suffix = ".mnn"
    package = "MNN"
    extra = "mnn"
    options = {
        "precision": OptionSpec("high", ("high", "normal", "low"),
                                "MNN's precision mode: high keeps fp32 arithmetic; normal/low allow fp16/bf16"),
    }

    def version(self) -> str | None:
        try:
            return str(_mnn().version())
        except ImportError:
            return None

    def check_installed(self) -> str:
        try:
            return str(_mnn().version())
        except ImportError as exc:
            from mbbench.runtimes._base import RuntimeNotInstalled

            raise RuntimeNotInstalled(f"MNN is not installed here ({exc}); install it with pip install "
                                      "'mbbench[mnn]'") from None  # fmt: skip

    def open(self, path: str, threads: int, options: Mapping[str, str]) -> Session:
        mnn = _mnn()
        precision = options.get("precision") or "high"
        try:
            interpreter = mnn.Interpreter(str(path))
            session = interpreter.createSession({"backend": "CPU", "numThread": threads, "precision": precision})
        except Exception as exc:  # noqa: BLE001
            raise ModelRunError(f"MNN cannot open {Path(path).name}: {self.error_text(exc)}") from None
        return MnnSession(interpreter, session, _PRECISION_WORDS[precision])

    # --- conversion (host side) ------------------------------------------------------------------------------

    converter = "MNN converter (_tools.mnnconvert, in-process)"

    def convert(self, source: Path, workdir: Path) -> list[Path]:
        """``source`` (ONNX) -> ``workdir/model.mnn``; :class:`UnsupportedModel` naming the ops MNN lacks."""
        import _tools  # the converter's extension; never MNN.tools.mnnconvert (see the module docstring)

        target = workdir / "model.mnn"
        argv = ["mnnconvert", "-f", "ONNX", "--modelFile", str(source), "--MNNModel", str(target),
                "--bizCode", "mbbench"]  # fmt: skip
        _, log = quiet_fds(lambda: _tools.mnnconvert(argv))
        if not target.is_file():
            missing = re.findall(r"ONNX::(\w+)", log.split("Not Support:", 1)[1]) if "Not Support:" in log else []
            reason = (f"MNN has no {', '.join(dict.fromkeys(missing))}" if missing
                      else "MNN's converter wrote no file: " + " ".join(log.strip().splitlines()[-2:])[:200])
            raise UnsupportedModel(reason)
        return [target]

    def converter_version(self) -> str:
        return f"mnn {self.check_installed()}"


RUNTIME = Mnn()
