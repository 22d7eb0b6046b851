"""The isolated worker: one configuration measured in a fresh ``python -m mbbench.bench._worker`` process.

The job goes in on stdin (JSON) and the outcome comes back on stdout (JSON, one write after the measurement),
so no temporary file exists for an interruption to leave behind. The worker's own fd 1 is pointed at stderr
first, so nothing that onnxruntime or a native library prints can corrupt the outcome.

The worker never outlives the sweep that started it: on Linux the kernel sends it SIGKILL when its parent dies
(``prctl(PR_SET_PDEATHSIG)``); elsewhere a watchdog thread ends it when its parent process changes. The parent
kills and waits for it on any interruption (Ctrl-C, SIGTERM) before the interruption goes on.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from mbbench.bench.options import BenchConfig
from mbbench.bench.session import Measurement, ModelRunError, measure
from mbbench.errors import MbbenchError

if TYPE_CHECKING:
    from mbbench.bench.profiling import Profile

_PR_SET_PDEATHSIG = 1
#: How often the portable watchdog looks at its parent (a dead sweep's worker lingers at most this long).
WATCHDOG_PERIOD_S = 0.5


def measure_isolated(path: str | Path, threads: int, config: BenchConfig, runtime: str = "onnxruntime") -> Measurement:
    """:func:`~mbbench.bench.session.measure` in a fresh worker process."""
    job = {"kind": "measure", "path": str(path), "threads": threads, "config": config.to_dict(), "runtime": runtime}
    return Measurement(**_in_worker(job, Path(path).name)["measurement"])


def profile_isolated(model, threads: int, rounds: int, warmup: int, depth: int, reference: bool,
                     options: dict) -> "Profile":
    """:func:`~mbbench.bench.profiling.profile_model` in a fresh worker process (``model`` a ModelFile)."""
    from mbbench.bench.profiling import Profile, ProfileError

    job = {"kind": "profile", "file": _model_dict(model), "threads": threads, "rounds": rounds, "warmup": warmup,
           "depth": depth, "reference": reference, "options": options}
    try:
        return Profile.from_dict(_in_worker(job, Path(model.path).name)["profile"])
    except ModelRunError as exc:
        raise ProfileError(str(exc)) from None


def _model_dict(model) -> dict:
    return {"path": str(model.path), "label": model.label, "sha256": model.sha256, "opset": model.opset,
            "manifest": dict(model.manifest) if model.manifest else None, "runtime": model.runtime}


def _in_worker(job: dict, name: str) -> dict:
    """Run ``job`` in a fresh ``python -m mbbench.bench._worker`` and return its outcome (a dict)."""
    job = {**job, "parent": os.getpid()}
    env = dict(os.environ)
    # the worker must import this very copy of mbbench, also from an uninstalled tree on a phone
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mbbench.bench._worker"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
        )
    except OSError as exc:
        # e.g. "Exec format error" under an emulator whose interpreter path is not itself runnable
        raise ModelRunError(
            f"the worker process for {name} could not start ({sys.executable!r}: {exc.strerror or exc}); the "
            "Python running mbbench must be able to start itself again (under an emulator, its sys.executable "
            "must be the wrapper), or measure without a worker: --no-isolate") from None
    try:
        stdout, stderr = proc.communicate(json.dumps(job))
    except BaseException:  # Ctrl-C or SIGTERM (as KeyboardInterrupt): never leave the worker behind
        proc.kill()
        proc.wait()
        raise
    if proc.returncode in (130, -signal.SIGINT):
        # the worker saw the Ctrl-C first; the parent's own KeyboardInterrupt may still be on its way
        raise KeyboardInterrupt
    try:
        data = json.loads(stdout or "null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        last = (stderr or "").strip().splitlines()
        detail = f": {last[-1][:300]}" if last else ""
        raise ModelRunError(f"the worker measuring {name} died ({_exit_reason(proc.returncode)}){detail}")
    if not data.get("ok"):
        raise ModelRunError(data.get("error") or f"the worker measuring {name} failed")
    return data


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"signal {-code}"
    return f"exit status {code}"


def die_with_parent(parent: int) -> None:
    """End this process when ``parent`` (the sweep) dies: the kernel's parent-death signal, else a watchdog."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                # the parent may have died before prctl ran: then we were already re-parented
                if os.getppid() != parent:
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(WATCHDOG_PERIOD_S)
        os._exit(1)

    threading.Thread(target=watch, name="mbbench-parent-watchdog", daemon=True).start()


def _run_job(job: dict) -> dict:
    if job.get("kind") == "profile":
        from mbbench.bench.modelfile import ModelFile
        from mbbench.bench.profiling import profile_model

        file = ModelFile(**{**job["file"], "path": Path(job["file"]["path"])})
        profile = profile_model(file, int(job["threads"]), int(job["rounds"]), int(job["warmup"]), int(job["depth"]),
                                reference=bool(job["reference"]), **job["options"])  # fmt: skip
        return {"profile": profile.to_dict()}
    config = BenchConfig.from_dict(job["config"])
    return {"measurement": measure(job["path"], int(job["threads"]), config, job.get("runtime") or "onnxruntime")
            .to_dict()}


def main() -> int:
    # the outcome channel is the original stdout; anything printed from now on goes to stderr instead
    out = os.dup(1)
    os.dup2(2, 1)
    try:
        job = json.load(sys.stdin)
        parent = int(job.get("parent") or os.getppid())
        die_with_parent(parent)
        try:
            outcome = {"ok": True, **_run_job(job)}
        except MbbenchError as exc:
            outcome = {"ok": False, "error": str(exc)}
        data = json.dumps(outcome).encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(out, view):]
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
