"""The device side of ``mbbench bench --target``: measure what the host asks for and stream each row back.

Portable (onnxruntime, numpy and the standard library): the host pushes this package's measuring core into the
device's cache folder and runs ``python -m mbbench.bench.agent`` there over SSH, with the job as one JSON object on
standard input::

    {"models": [{"path": "models/<sha256>.onnx", "label": "mobileone-s0", "sha256": "...", "opset": 17,
                 "manifest": {...}}],
     "configurations": [["<sha256>", 1], ["<sha256>", 2]],
     "config": {... BenchConfig.to_dict() ...}}

Each configuration is measured exactly as ``mbbench bench`` measures it locally (:func:`run_sweep`: isolated
worker process, the same statistics and row), and the moment it ends one line goes to standard output::

    {"event": "row", "row": {...}, "samples_ms": [...]}

Other lines are ``{"event": "note" | "failed" | "done", ...}``. The host appends each row to its own CSV as it
arrives, so a dropped connection loses no finished configuration. Nothing is written on the device but the
worker's temporary file.

A job with ``"kind": "profile"`` (``mbbench profile --target``) runs
:func:`mbbench.bench.profiling.run_profile_job` instead: one ``{"event": "profile", "profile": {...}}`` line per
(model, threads).
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from mbbench.bench.modelfile import ModelFile
from mbbench.bench.options import BenchConfig
from mbbench.bench.runner import SweepObserver, run_sweep
from mbbench.errors import MbbenchError


def _plain(value: Any) -> Any:
    """JSON-safe: numpy scalars become Python numbers, non-finite floats None."""
    if hasattr(value, "item") and hasattr(value, "dtype"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class _StreamObserver(SweepObserver):
    def __init__(self, out: TextIO):
        self.out = out

    def emit(self, event: str, **fields: Any) -> None:
        self.out.write(json.dumps({"event": event, **fields}) + "\n")
        self.out.flush()

    def note(self, message: str) -> None:
        self.emit("note", message=message)

    def configuration_finished(self, row, stats, measurement) -> None:
        self.emit("row", row={k: _plain(v) for k, v in row.items()},
                  samples_ms=[float(ms) for ms in measurement.samples_ms])

    def configuration_failed(self, model, threads, message) -> None:
        self.emit("failed", sha256=model.sha256, runtime=model.runtime, threads=threads, message=message)


def run_job(job: Mapping[str, Any], out: TextIO = sys.stdout) -> int:
    """Measure ``job``'s configurations (see the module docstring); return the exit status."""
    observer = _StreamObserver(out)
    if job.get("kind") == "profile":
        from mbbench.bench.profiling import run_profile_job

        return run_profile_job(job, observer.emit)
    config = BenchConfig.from_dict(job["config"])
    models = {
        f"{m['sha256']}:{m.get('runtime') or 'onnxruntime'}": ModelFile(
            path=Path(m["path"]), label=str(m["label"]), sha256=m["sha256"], opset=m.get("opset"),
            manifest=m.get("manifest"), runtime=str(m.get("runtime") or "onnxruntime"),
            conversion=m.get("conversion"))
        for m in job["models"]
    }
    # Group the configurations by model, keeping the host's order, so each model is one sweep over its threads.
    by_model: dict[str, list[int]] = {}
    for sha, threads in job["configurations"]:
        by_model.setdefault(sha, []).append(int(threads))
    interrupted = False
    for sha, threads in by_model.items():
        result = run_sweep([models[sha]], dataclasses.replace(config, threads=tuple(threads)), observer=observer)
        if result.interrupted:
            interrupted = True
            break
    observer.emit("done", interrupted=interrupted)
    return 130 if interrupted else 0


def watch_host(stdin: TextIO = sys.stdin) -> None:
    """End this agent and every process it started (its workers) the moment the host's end of the connection goes
    away: the host keeps standard input open for the whole run, so end-of-file means the host (or its SSH
    connection) is gone, and nothing should go on measuring for nobody."""
    import os
    import signal
    import threading

    try:
        os.setpgid(0, 0)  # a group of our own: the workers join it, and one signal ends them all
    except OSError:
        pass

    def wait_for_eof() -> None:
        while stdin.buffer.read(1 << 16) if hasattr(stdin, "buffer") else stdin.read(1 << 16):
            pass
        try:
            os.killpg(os.getpgid(0), signal.SIGKILL)
        except OSError:
            os._exit(1)

    threading.Thread(target=wait_for_eof, name="mbbench-host-watch", daemon=True).start()


def main() -> int:
    try:
        # the job is the first line; the rest of standard input stays open until the host is done with us
        job = json.loads(sys.stdin.readline(1 << 26) or "null")
        if not isinstance(job, dict):
            raise MbbenchError("the host sent no job (expected one JSON object on the first line)")
        watch_host()
        return run_job(job)
    except MbbenchError as exc:
        _StreamObserver(sys.stdout).emit("error", message=str(exc))
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
