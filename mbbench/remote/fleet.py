"""``--target``: measure on one device or a fleet over SSH, each device one configuration at a time, into one CSV.

Per target, in its own thread (a fleet is measured in parallel, each device serially):

1. **check**: the remote Python runs a few lines that report its version and whether onnxruntime and numpy import;
   a target without them is refused in one line that says what to install, before anything is pushed;
2. **push**: the portable measuring core (``mbbench/bench`` and the few standard-library modules it imports, taken
   from this installed package) and the models go into the device's cache folder, named by sha256 and skipped when
   already there; an extractor on the device writes each file to a temporary name and renames it, and accepts only
   the names this side generated, so nothing lands outside the cache folder;
3. **measure**: ``python -m mbbench.bench.agent`` runs the configurations exactly as ``mbbench bench`` does locally and
   streams each row back the moment it ends; this side appends it to the CSV at once (one lock for all targets), so
   a dropped connection loses no finished row and the other targets go on;
4. **record**: the row's machine columns are the device's own (measured there); ``target`` names the URL, ``file``
   the local file, and the device's core clusters, governor, temperatures and throttling are added.

``resume=True`` skips configurations already in the CSV (same file sha256, threads and target).
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
import queue
import shlex
import subprocess
import tarfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import mbbench
from mbbench.bench.modelfile import ModelFile
from mbbench.bench.options import BenchConfig
from mbbench.bench.results import ResultFiles
from mbbench.bench._runner import refusal_row, resolve_extra_columns
from mbbench.bench.runner import Failure, SweepObserver, SweepResult, TargetFailure
from mbbench.bench.schema import RESULT_COLUMNS
from mbbench.bench.stats import latency_stats
from mbbench.errors import MbbenchError, UserInputError
from mbbench.remote.ssh import SshTransport, Target, TargetError, parse_target, quote_home

#: The oldest Python the portable core runs on.
MIN_PYTHON = (3, 9)

# Runs on the device before anything is pushed: which Python, and do numpy and the runtimes' packages import?
# (PACKAGES is replaced by the list the run needs.)
_CHECK = r"""
import json, os, sys
out = {"python": list(sys.version_info[:3])}
answer = os.dup(1)
os.dup2(2, 1)  # a runtime that prints from C++ on import (MNN) must not garble the answer
for name in PACKAGES:
    try:
        module = __import__(name)
        version = getattr(module, "__version__", None) or getattr(module, "version", lambda: "installed")()
        out[name] = str(version)
    except Exception as exc:
        out[name] = None
        out[name + "_error"] = type(exc).__name__ + ": " + str(exc)[:200]
sys.stdout.flush()
os.write(answer, (json.dumps(out) + "\n").encode())
os._exit(0)
"""

# Runs on the device with the push as a tar stream on stdin: writes each member to a temporary name, then renames
# it; only regular files under core/<hex>/ or models/<hex>.onnx are accepted.
_EXTRACT = r"""
import os, re, sys, tarfile
ok = re.compile(r"^(core/[0-9a-f]{16}/([A-Za-z0-9_/]+\.py|CONTENTS\.json)|models/[0-9a-f]{64}\.(onnx|mnn|param|bin|json))$")
with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
    for member in tar:
        if not member.isfile() or not ok.match(member.name) or ".." in member.name.split("/"):
            sys.exit("refused member " + repr(member.name))
        os.makedirs(os.path.dirname(member.name), exist_ok=True)
        tmp = member.name + ".part"
        with open(tmp, "wb") as out:
            data = tar.extractfile(member)
            while True:
                chunk = data.read(1 << 20)
                if not chunk:
                    break
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, member.name)
"""

# Runs on the device: prints core/<id> when that folder holds every file its CONTENTS.json lists, each with the
# sha256 listed; a push cut short (a full disk, a dropped connection) or a file changed since is then pushed again.
_VERIFY_CORE = r"""
import hashlib, json, os, sys
root = os.path.join("core", sys.argv[1])
try:
    with open(os.path.join(root, "CONTENTS.json")) as handle:
        listed = json.load(handle)
    for name, digest in listed.items():
        with open(os.path.join(root, name), "rb") as handle:
            if hashlib.sha256(handle.read()).hexdigest() != digest:
                sys.exit(0)
except (OSError, ValueError, AttributeError):
    sys.exit(0)
print(root)
"""


@dataclass(frozen=True)
class RemoteSettings:
    """How to reach the targets: ``ssh -F`` config file, the remote Python command, the connect timeout."""

    ssh_config: Path | None = None
    remote_python: str = "python3"
    connect_timeout: int = 10
    #: how long a device may stay silent during a run before it is called hung (seconds); None: derived from the
    #: rounds and warm-up (:func:`silence_limit`)
    remote_timeout: float | None = None


@dataclass(frozen=True)
class RemoteRun:
    """Where a run or a study measures: ``targets`` (ssh:// URLs) reached with ``settings``."""

    targets: tuple[str, ...]
    settings: RemoteSettings = RemoteSettings()
    resume: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        for url in self.targets:
            parse_target(url)  # a bad URL fails before any export


#: Kept for callers of this module's first version: a fleet's result is a sweep result like any other.
FleetResult = SweepResult


# -- the portable core ------------------------------------------------------------------------------------------

def model_key(model: ModelFile | Mapping[str, Any]) -> str:
    """What names one measured artifact in a job and in its events: its sha256 and runtime (OpenVINO and ONNX
    Runtime open the same file)."""
    if isinstance(model, ModelFile):
        return f"{model.sha256}:{model.runtime}"
    return f"{model.get('sha256')}:{model.get('runtime') or 'onnxruntime'}"


def remote_files(model: ModelFile) -> list[tuple[str, Path]]:
    """The device cache's names for a model's files (``models/<sha256><suffix>``, the one to open first), and the
    files here they come from: an ncnn graph goes with its weights and input-shape sidecar."""
    from mbbench.bench.session import companions

    stem = f"models/{model.sha256}"
    return [(stem + model.path.suffix, model.path)] + [(stem + p.suffix, p) for p in companions(model.path)]


#: the version of the host's mbbench, written into every pushed core (read by mbbench._version)
CORE_VERSION_FILE = "_core_version.py"


def portable_core() -> tuple[str, bytes]:
    """The measuring core as a deterministic tar (``core/<id>/mbbench/...``) and its id (sha256 prefix)."""
    package = Path(mbbench.__file__).resolve().parent
    files = sorted(
        [p for p in package.glob("*.py") if p.name in ("__init__.py", "errors.py") or (p.name.startswith("_") and p.name != "__main__.py")]
        + list((package / "bench").glob("*.py"))
        + list((package / "runtimes").glob("*.py"))
    )
    contents = [(p.relative_to(package.parent).as_posix(), p.read_bytes()) for p in files
                if p.name != CORE_VERSION_FILE]
    # the device has no package metadata for the core: its rows' mbbench_version comes from this file
    contents.append((f"mbbench/{CORE_VERSION_FILE}",
                     f"VERSION = {mbbench.__version__!r}  # written by the host that pushed this core\n".encode()))
    contents.sort()
    digest = hashlib.sha256()
    for name, data in contents:
        digest.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    core_id = digest.hexdigest()[:16]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in contents:
            _add(tar, f"core/{core_id}/{name}", data)
        # last, so a push cut short leaves no list; the device checks every file against it (_VERIFY_CORE)
        listed = {name: hashlib.sha256(data).hexdigest() for name, data in contents}
        _add(tar, f"core/{core_id}/CONTENTS.json", json.dumps(listed, sort_keys=True).encode())
    return core_id, buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes | None = None, path: Path | None = None) -> None:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    if path is not None:
        info.size = path.stat().st_size
        with path.open("rb") as fh:
            tar.addfile(info, fh)
    else:
        info.size = len(data or b"")
        tar.addfile(info, io.BytesIO(data or b""))


# -- one target -------------------------------------------------------------------------------------------------

class _Device:
    def __init__(self, target: Target, settings: RemoteSettings):
        self.target = target
        self.settings = settings
        self.ssh = SshTransport(target, settings.ssh_config, settings.connect_timeout)
        try:
            # '~/mbb/bin/python' (quoted, so this side's shell left it) is the device's home, as ssh would have it
            self.python = " ".join(quote_home(w) for w in shlex.split(settings.remote_python))
        except ValueError:
            raise UserInputError(f"--remote-python {settings.remote_python!r} is not a command") from None
        if not self.python:
            raise UserInputError("--remote-python is empty; give the device's Python command, e.g. python3")

    def run_python(self, args: str) -> str:
        """The device's Python with ``args``, as a shell command that keeps a crash visible: the shell waits for
        Python (never replaced by it) and exits with 128 + the signal, so a segfault on import is not taken for a
        network failure (ssh exits 255 for a remote command that died by a signal)."""
        return f"{self.python} {args}; exit $?"

    def in_workdir(self, command: str, core_id: str | None = None) -> str:
        env = f"PYTHONPATH={self.target.remote_path('core', core_id, '')} " if core_id else ""
        return f"cd {self.target.remote_path()} && {env}{command}"

    def check(self, runtimes: Sequence[str] = ("onnxruntime",)) -> dict[str, Any]:
        """Python, numpy and each runtime's package on the device; refuse (one line) what cannot run the core,
        naming what to install."""
        from mbbench.runtimes import get_runtime

        name = self.target.name
        packages = {get_runtime(r).package: get_runtime(r) for r in runtimes}
        script = _CHECK.replace("PACKAGES", repr(["numpy", *packages]))
        try:
            out = self.ssh.run(self.run_python(f"-c {shlex.quote(script)}"), timeout=60)
        except TargetError as exc:
            text = str(exc)
            if "exit status 127" in text or "not found" in text:
                raise TargetError(
                    f"{name}: '{self.settings.remote_python}' is not a command there; install Python (Termux: pkg "
                    "install python) or name it with --remote-python") from None
            raise
        try:
            facts = json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise TargetError(f"{name}: '{self.settings.remote_python}' did not answer as Python does") from None
        if tuple(facts["python"]) < MIN_PYTHON:
            version = ".".join(map(str, facts["python"]))
            raise TargetError(f"{name}: Python {version} is too old for the measuring core; install Python "
                              f"{MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer and name it with --remote-python")
        missing = [lib for lib in (*packages, "numpy") if not facts.get(lib)]
        if missing:
            raise TargetError(
                f"{name}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not installed for "
                f"{self.settings.remote_python} there; install {' '.join(missing)} on the device "
                f"({self.settings.remote_python} -m pip install {' '.join(missing)}; see the README for Termux)")
        return facts

    def inventory(self, core_id: str) -> set[str]:
        """Which core and model files the cache already holds (relative names). Model files are written whole
        (each under a temporary name, then renamed) and named by their sha256; the core counts as there only when
        every one of its files is, with the content it should have."""
        workdir = self.target.remote_path()
        command = (f"mkdir -p {workdir} && cd {workdir} && mkdir -p models core && "
                   f"ls models; {self.run_python(f'-c {shlex.quote(_VERIFY_CORE)} {shlex.quote(core_id)}')}")
        names = self.ssh.run(command, timeout=60).decode(errors="replace").split()
        return {n if n.startswith("core/") else f"models/{n}" for n in names}

    def push(self, core: tuple[str, bytes], models: Sequence[ModelFile]) -> int:
        """Send what the cache lacks; return the model bytes sent."""
        core_id, core_tar = core
        present = self.inventory(core_id)
        buffer = io.BytesIO()
        model_bytes = 0
        members = 0
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            if f"core/{core_id}" not in present:
                with tarfile.open(fileobj=io.BytesIO(core_tar)) as source:
                    for member in source.getmembers():
                        tar.addfile(member, source.extractfile(member))
                        members += 1
            for model in {m.sha256: m for m in models}.values():
                for name, path in remote_files(model):
                    if name not in present:
                        _add(tar, name, path=path)
                        model_bytes += path.stat().st_size
                        members += 1
        if members:
            self.ssh.run(self.in_workdir(self.run_python(f"-c {shlex.quote(_EXTRACT)}")), stdin=buffer.getvalue())
        return model_bytes

    def facts(self, core_id: str) -> dict[str, Any]:
        out = self.ssh.run(self.in_workdir(self.run_python("-m mbbench.bench.device"), core_id), timeout=60)
        try:
            return json.loads(out.decode().strip().splitlines()[-1])
        except (ValueError, IndexError):
            return {}


# -- the fleet --------------------------------------------------------------------------------------------------

def completed_configurations(path: str | Path) -> set[tuple[str, int, str]]:
    """``(sha256:runtime, threads, target)`` (:func:`model_key`) of every row already in a results CSV (for
    ``resume``)."""
    done: set[tuple[str, int, str]] = set()
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            try:
                for row in reader:
                    try:
                        done.add((model_key(row), int(row.get("threads") or 0), row.get("target") or ""))
                    except ValueError:
                        continue
            except csv.Error as error:  # e.g. a field over csv's 131,072-character limit: no row mbbench writes
                raise UserInputError(
                    f"--resume {path}: line {reader.line_num} is not a results row mbbench writes ({error}); "
                    "resume onto the CSV an earlier run wrote, or give a new -o"
                ) from None
    except FileNotFoundError:
        pass
    except UnicodeDecodeError:
        raise UserInputError(f"--resume {path}: not a UTF-8 results CSV; give the CSV an earlier run wrote") from None
    return done


def bench_targets(
    models: Sequence[ModelFile],
    config: BenchConfig,
    targets: Sequence[str | Target],
    *,
    output: str | Path,
    append: bool = False,
    resume: bool = False,
    settings: RemoteSettings = RemoteSettings(),
    extra_columns: Mapping[str | os.PathLike, Mapping[str, Any]] | None = None,
    observer: SweepObserver | None = None,
) -> SweepResult:
    """Measure every ``(model, threads)`` of ``config`` on every target (see the module docstring).

    ``extra_columns`` maps a model path to columns added to its rows (as :func:`run_sweep`'s).
    """
    observer = observer or SweepObserver()
    parsed = [t if isinstance(t, Target) else parse_target(t) for t in targets]
    names = [t.name for t in parsed]
    if len(set(names)) != len(names):
        raise UserInputError("the same --target is given twice; each device is measured once per run")
    if not models:
        raise UserInputError("no models to measure")
    extras, extra_names = resolve_extra_columns(extra_columns, models)
    columns = list(RESULT_COLUMNS) + extra_names
    if resume and not append:
        append = True
    files = ResultFiles(output, columns, append)
    files.prepare_folder()
    done = completed_configurations(files.output) if resume else set()
    plans = {
        t.name: [(m, n) for m in models for n in config.threads if (model_key(m), n, t.name) not in done]
        for t in parsed
    }
    # what a runtime cannot run was refused here, before any device: its rows are written now, for every device
    refused = {name: [(m, n) for m, n in plan if m.refusal] for name, plan in plans.items()}
    plans = {name: [(m, n) for m, n in plan if not m.refusal] for name, plan in plans.items()}
    total = sum(len(models) * len(config.threads) for _ in parsed)
    result = SweepResult(rows=[], samples_ms=[], failures=[], total=total, columns=columns, output=files.output,
                         samples_output=files.samples_output)
    result.skipped = total - sum(len(p) for p in plans.values())
    lock = threading.Lock()
    core = portable_core()
    processes: list = []
    runtimes = sorted({m.runtime for m in models if not m.refusal})

    def run_target(target: Target) -> None:
        plan = plans[target.name]
        finished = 0
        try:
            device = _Device(target, settings)
            if not plan:
                return
            device.check(runtimes)
            result.pushed_model_bytes[target.name] = device.push(core, [m for m, _ in plan])
            facts = device.facts(core[0])
            with lock:
                observer.info(describe_device(target, facts))  # what the device is: a fact, not a warning
            finished = _stream(device, core[0], plan, config, extras, files, result, observer, lock, processes)
        except MbbenchError as exc:
            with lock:
                result.target_failures.append(TargetFailure(target.name, str(exc), finished))
                observer.note(f"{exc}" + (f" ({finished} configurations were saved first)" if finished else ""))

    threads = [threading.Thread(target=run_target, args=(t,), name=f"mbbench-{t.host}", daemon=True)
               for t in parsed]
    observer.sweep_started(sum(len(p) for p in plans.values()) + sum(len(c) for c in refused.values()))
    for name, cells in refused.items():
        for model, count in cells:
            row = {**refusal_row(model, count, config, {}, oversubscribed=False), "target": name,
                   **extras.get(model.origin.resolve(), {})}
            files.save(row, [])
            result.rows.append(row)
            result.samples_ms.append(np.empty(0))
            observer.configuration_refused(model, count, model.refusal)
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    except KeyboardInterrupt as interruption:  # Ctrl-C or SIGTERM: kept, so the command ends with 130 or 143
        result.interrupted = True
        result.interruption = interruption
        with lock:
            for proc in processes:
                if proc.poll() is None:
                    proc.kill()
        for thread in threads:
            thread.join(10)
    return result


def describe_device(target: Target, facts: Mapping[str, Any]) -> str:
    """One line of what the probe found: CPU, clusters, governor, temperature, versions."""
    zones = facts.get("thermal_zones") or {}
    parts = [
        str(facts.get("cpu_model") or facts.get("machine") or "unknown CPU"),
        f"{facts.get('logical_cores')} cores" + (f" ({facts['clusters']})" if facts.get("clusters") else ""),
        f"governor {facts['governor']}" if facts.get("governor") else "no cpufreq governor exposed",
        f"hottest zone {max(zones.values()):.1f} C" if zones else "no thermal zone exposed",
        f"Python {facts.get('python')}, onnxruntime {facts.get('onnxruntime')}",
    ]
    return f"{target.name}: " + ", ".join(parts)


#: the longest line a device may send (a row with its samples is a few kB; a million rounds is ~20 MB)
MAX_EVENT_BYTES = 1 << 26
#: how much of a device's standard error is kept for the one-line explanation of a failure
STDERR_TAIL_BYTES = 1 << 16


def silence_limit(config: BenchConfig, override: float | None = None) -> float:
    """How long the host waits for a device's next line before it calls the device hung (seconds): a
    configuration's worker start and cold run, then ``warmup + rounds`` runs of up to 10 s each (a mobile backbone
    on a slow core is well under that), and ``min_time`` twice over. ``--remote-timeout`` replaces it."""
    if override:
        return float(override)
    return 120.0 + 10.0 * (config.warmup + config.rounds + 1) + 2.0 * config.min_time


class _Agent:
    """One run of ``python -m mbbench.bench.agent`` on a device: send the job, then read its JSON-lines events.

    Both of the agent's output streams are read at once, by threads, and bounded (:data:`MAX_EVENT_BYTES` a line,
    the last :data:`STDERR_TAIL_BYTES` of standard error), so a device that floods one of them cannot stall the
    other or fill the host's memory. The job goes as the first line of standard input, which then stays open: the
    agent ends itself and its workers when it closes (:func:`mbbench.bench.agent.watch_host`)."""

    def __init__(self, device: _Device, proc, job: Mapping[str, Any], silence_s: float = 600.0):
        self.device, self.proc, self.job, self.silence_s = device, proc, job, silence_s
        self.problem: str | None = None
        self._stderr = bytearray()
        self._lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read_stdout, daemon=True, name="mbbench-agent-out").start()
        self._stderr_reader = threading.Thread(target=self._read_stderr, daemon=True, name="mbbench-agent-err")
        self._stderr_reader.start()

    def _read_stdout(self) -> None:
        stream = self.proc.stdout
        while True:
            raw = stream.readline(MAX_EVENT_BYTES + 1)
            if not raw:
                break
            if len(raw) > MAX_EVENT_BYTES:
                self._lines.put(OverflowError())
                return
            self._lines.put(raw)
        self._lines.put(None)

    def _read_stderr(self) -> None:
        for chunk in iter(lambda: self.proc.stderr.read1(1 << 16), b""):
            self._stderr += chunk
            del self._stderr[:-STDERR_TAIL_BYTES]

    def events(self):
        """Send the job, then yield each event the agent prints (lines that are not JSON objects are passed over).
        A device silent for longer than ``silence_s``, or sending a line longer than :data:`MAX_EVENT_BYTES`, is
        ended and :attr:`problem` says why."""
        try:
            self.proc.stdin.write(json.dumps(self.job).encode() + b"\n")
            self.proc.stdin.flush()
        except OSError:
            pass  # the agent is gone already: its exit status and stderr say why
        while True:
            try:
                raw = self._lines.get(timeout=self.silence_s)
            except queue.Empty:
                self.problem = (f"{self.device.target.name}: the device sent nothing for {self.silence_s:g} s (hung?); "
                                "it was stopped (--remote-timeout S allows longer)")
                self._end()
                break
            if raw is None:
                break
            if isinstance(raw, OverflowError):
                self.problem = (f"{self.device.target.name}: the device sent a line over {MAX_EVENT_BYTES:,} bytes; "
                                "it was stopped (is its mbbench the one pushed?)")
                self._end()
                break
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            if isinstance(event, dict):
                yield event
        self.close()

    def _end(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()

    def close(self) -> None:
        """Close the agent's standard input (it ends itself if still running) and wait for it."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._stderr_reader.join(5)

    def failure(self) -> str | None:
        """Why the agent failed (SSH's or the device's own words, one line), or None if it exited cleanly."""
        if self.problem:
            return self.problem
        if self.proc.returncode == 0:
            return None
        return self.device.ssh.explain(self.proc.returncode, bytes(self._stderr).decode(errors="replace"))


@contextlib.contextmanager
def run_agent(device: _Device, core_id: str, models: Sequence[ModelFile], job: Mapping[str, Any]):
    """The agent running ``job`` (plus the pushed ``models``) on ``device``; killed if left before it ends."""
    entries = [{"path": remote_files(m)[0][0], "label": m.label, "sha256": m.sha256, "opset": m.opset,
                "manifest": dict(m.manifest) if m.manifest else None, "runtime": m.runtime,
                "conversion": dict(m.conversion) if m.conversion else None} for m in models]  # fmt: skip
    proc = device.ssh.popen(device.in_workdir(device.run_python("-m mbbench.bench.agent"), core_id))
    config = BenchConfig.from_dict(job["config"]) if "config" in job else BenchConfig()
    agent = _Agent(device, proc, {**job, "models": entries}, silence_limit(config, device.settings.remote_timeout))
    try:
        yield agent
    finally:
        if proc.poll() is None:
            proc.kill()
        agent.close()


def _stream(device: _Device, core_id: str, plan, config: BenchConfig, extras: Mapping[Path, Mapping[str, Any]],
            files: ResultFiles, result: SweepResult, observer: SweepObserver, lock: threading.Lock,
            processes: list) -> int:
    """Run the agent for ``plan`` and save each row as it arrives; return how many were saved."""
    target = device.target
    by_sha = {model_key(m): m for m, _ in plan}
    job = {"configurations": [[model_key(m), n] for m, n in plan], "config": config.to_dict()}
    saved = 0
    pending = {(model_key(m), n) for m, n in plan}
    with run_agent(device, core_id, list(by_sha.values()), job) as agent:
        with lock:
            processes.append(agent.proc)
        for event in agent.events():
            kind = event.get("event")
            if kind == "row":
                checked = check_row(event, pending, by_sha)
                if isinstance(checked, str):
                    with lock:
                        observer.note(f"{target.name}: a row was refused: {checked}")
                    continue
                model, device_row, samples = checked
                pending.discard((model_key(model), int(device_row["threads"])))
                # what names the row is the host's: the device's label, file and target are not trusted
                row = {**device_row, "model": model.label, "target": target.name, "file": model.path.as_posix(),
                       **extras.get(model.origin.resolve(), {})}
                with lock:
                    files.save(row, samples)
                    result.rows.append(row)
                    result.samples_ms.append(samples)
                    observer.configuration_finished(row, latency_stats(samples), None)
                saved += 1
            elif kind == "failed":
                model = by_sha.get(model_key(event))
                if model is None or type(event.get("threads")) is not int:
                    continue
                # the device skips a failed model's other thread counts: none of them is owed any more
                pending -= {(k, n) for k, n in pending if k == model_key(model)}
                message = f"{target.name}: {str(event.get('message'))[:500]}"
                with lock:
                    result.failures.append(Failure(model.label, model.path.as_posix(), event["threads"], message))
                    observer.configuration_failed(model, event["threads"], message)
            elif kind in ("note", "error"):
                with lock:
                    observer.note(f"{target.name}: {str(event.get('message'))[:500]}")
    failure = agent.failure()
    if pending:
        why = failure or f"{target.name}: the device's agent ended without a word about them"
        raise TargetError(f"{why}; {saved} of {len(plan)} configurations finished there (saved); "
                          "re-run with --resume to measure the rest")
    return saved


def check_row(event: Mapping[str, Any], pending: set, by_key: Mapping[str, ModelFile]):
    """A device's row event checked against what was asked and against the schema: ``(model, row, samples)``, or
    the reason it is refused (one line). Every statistic must be a finite, non-negative number agreeing with the
    samples sent; the configuration must be one asked and not yet saved."""
    row, samples = event.get("row"), event.get("samples_ms")
    if not isinstance(row, dict) or not isinstance(samples, list) or not samples:
        return "it is not a row with its samples"
    threads = row.get("threads")
    model = by_key.get(model_key(row)) if isinstance(row.get("sha256"), str) else None
    if model is None or type(threads) is not int:
        return "it names no model and thread count that was asked for"
    if (model_key(model), threads) not in pending:
        return f"{model.label} at {threads} threads was already saved or not asked for"
    unknown = [k for k in row if k not in RESULT_COLUMNS]
    if unknown:
        return f"it has columns no mbbench row has ({', '.join(map(str, unknown[:3]))})"
    try:
        values = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError):
        return "its samples are not numbers"
    if values.ndim != 1 or not np.isfinite(values).all() or (values < 0).any():
        return "its samples are not finite, non-negative latencies"
    for column in ("mean_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"):
        value = row.get(column)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            return f"its {column} is {value!r}, not a latency"
    if row.get("rounds") != values.size or abs(float(np.median(values)) - row["p50_ms"]) > 1e-6 * max(1.0, row["p50_ms"]):
        return "its statistics do not match its samples"
    for key, value in row.items():
        if isinstance(value, str) and (len(value) > 4096 or value[:1] in ("=", "+", "@")):
            return f"its {key} is not a value mbbench writes"
    return model, row, values
