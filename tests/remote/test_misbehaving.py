"""Devices that misbehave, over the real loopback sshd: a remote Python that floods standard error, hangs, ends
without a word, or answers with rows that are not rows. Each run ends in bounded time with one line, a non-zero
exit, only valid rows in the CSV, and no process left behind on the device."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mbbench.bench.schema import RESULT_COLUMNS
from tests.bench.tiny_onnx import conv_relu
from tests.hostile.conftest import assert_refused, invoke

# The fake device Python: the real interpreter, except when it is asked to run the agent, where it does what
# the file "mode" beside it says.
FAKE = r'''#!{python}
import json, os, sys, time
mode = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "mode")).read().strip()
agent = sys.argv[1:3] == ["-m", "mbbench.bench.agent"]
if mode == "crash":  # a native library dying on import, as onnxruntime does on a CPU it misreads
    import signal
    os.kill(os.getpid(), signal.SIGSEGV)
if agent and mode == "no-worker":  # the real agent, whose sys.executable cannot be run (a foreign binary)
    import runpy
    sys.executable = os.path.join(os.path.dirname(os.path.abspath(__file__)), "foreign-binary")
    sys.argv = [sys.argv[0]] + sys.argv[3:]
    runpy.run_module("mbbench.bench.agent", run_name="__main__", alter_sys=True)
    sys.exit(0)
if not agent or mode in ("real", "flood"):
    if agent and mode == "flood":
        os.write(2, b"x" * (1 << 20))  # a megabyte of standard error before the real agent starts
    os.execv({python!r}, [{python!r}] + sys.argv[1:])
job = json.loads(sys.stdin.readline())
if mode == "hang":  # the agent stuck inside a measurement: it watches the host as the real one does, then hangs
    from mbbench.bench.agent import watch_host
    watch_host()
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "hung.pid"), "w").write(str(os.getpid()))
    time.sleep(3600)
elif mode == "garbage":
    sha = job["models"][0]["sha256"]
    good = dict(model="x", threads=1, rounds=2, mean_ms=1.0, min_ms=1.0, p50_ms=1.0, p90_ms=1.0, p99_ms=1.0,
                max_ms=1.0, sha256=sha, runtime="onnxruntime")
    for row, samples in (
        (dict(good, p50_ms=None), [1.0, 1.0]),                    # a statistic that is no number
        (dict(good, model="=HYPERLINK(1)", unstable="=cmd"), [1.0, 1.0]),   # a formula
        (dict(good, threads=7), [1.0, 1.0]),                      # a configuration never asked for
        (dict(good, p50_ms=5.0), [1.0, 1.0]),                     # statistics that are not the samples'
        ("row", [1.0]),
    ):
        print(json.dumps({{"event": "row", "row": row, "samples_ms": samples}}), flush=True)
    print("[1, 2]", flush=True)
    print(json.dumps({{"event": "done"}}), flush=True)
elif mode == "garbage-profile":  # answers a profile job with events that are not profiles
    sha = job["models"][0]["sha256"]
    node = dict(node="n", op_type="Conv", block="b", path="b", mean_ms=1.0, share=0.5, calls=1.0, covers=["Conv"])
    good = dict(model="x", file="x", threads=1, rounds=2, warmup=0, depth=2, run_ms=[2.0, 2.0],
                execute_ms=[1.9, 1.9], nodes=[node], sha256=sha)
    for profile in (
        None,                                                   # no profile at all
        [1, 2],                                                 # a list
        dict(good, sha256="0" * 64),                            # a model never pushed
        dict(good, threads="1"),                                # a thread count that is text
        dict(good, run_ms=[float("inf")]),                      # a time that is no time
        dict(good, nodes=[dict(node, mean_ms="fast")]),         # a node's time as text
        dict(good, nodes=[dict(node, covers="Conv")]),          # covers as a string
        dict(good, nodes=["node"]),                             # a node that is not an object
        dict(good, rounds=None),                                # no count
    ):
        print(json.dumps({{"event": "profile", "profile": profile}}), flush=True)
elif mode == "silent":
    pass
'''


@pytest.fixture
def device(sshd, tmp_path):
    folder = tmp_path / "fake"
    folder.mkdir()
    fake = folder / "python"
    fake.write_text(FAKE.format(python=sys.executable))
    fake.chmod(0o755)
    foreign = folder / "foreign-binary"
    foreign.write_bytes(b"\x7fELF\x02\x01\x01" + bytes(57))  # an ELF header for no machine this one runs
    foreign.chmod(0o755)

    def run(mode: str, *extra, model=None):
        (folder / "mode").write_text(mode)
        model = model or conv_relu(tmp_path / "net.onnx", size=8)
        out = tmp_path / f"{mode}.csv"
        started = time.monotonic()
        result = invoke("bench", model, "--threads", "1", "--rounds", "3", "--warmup", "0",
                        "--target", sshd.target("dev-a", tmp_path / "cache"), "--ssh-config", sshd.config,
                        "--remote-python", fake, "-o", out, *extra)
        return result, out, time.monotonic() - started

    run.folder = folder
    return run


def rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_a_megabyte_of_stderr_does_not_stall_the_run(device):
    result, out, _ = device("flood")
    assert result.exit_code == 0, result.output
    assert len(rows(out)) == 1


@pytest.mark.slow
def test_a_device_that_hangs_is_stopped_after_the_silence_limit_and_leaves_nothing_running(device):
    result, out, seconds = device("hang", "--remote-timeout", "3")
    line = assert_refused(result, "sent nothing for 3 s", status=1)
    assert "--remote-timeout" in line and seconds < 60
    pid = int((device.folder / "hung.pid").read_text())
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and _alive(pid):
        time.sleep(0.2)
    assert not _alive(pid), "the hung agent outlived the connection"
    assert rows(out) == []


def test_a_device_that_ends_without_a_word_is_a_failure_not_a_success(device):
    result, out, _ = device("silent")
    assert_refused(result, "ended without a word", status=1)
    assert rows(out) == []


def test_rows_that_are_not_rows_are_refused_one_by_one_and_the_run_fails(device):
    result, out, _ = device("garbage")
    assert result.exit_code == 1, result.output
    for reason in ("its p50_ms is None", "not a value mbbench writes", "already saved or not asked for",
                   "do not match its samples", "not a row with its samples"):
        assert reason in result.output
    assert rows(out) == []  # nothing invalid reached the CSV, so report can still read it


def test_a_device_python_that_crashes_is_named_a_crash_with_its_signal_not_a_network_failure(device):
    result, out, _ = device("crash")
    line = assert_refused(result, "the device's Python crashed (signal 11, SIGSEGV)", status=1)
    assert "ssh failed" not in line and "import onnxruntime" in line
    assert rows(out) == []


@pytest.mark.slow
def test_a_worker_that_cannot_start_is_a_failed_configuration_with_its_reason(device):
    result, out, _ = device("no-worker")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and "--resume" not in result.output
    assert "could not start" in result.output and "Exec format error" in result.output
    assert "--no-isolate" in result.output
    again, out, _ = device("no-worker", "--no-isolate")  # measured in the agent's own process, it works
    assert again.exit_code == 0, again.output
    assert len(rows(out)) == 1


def test_a_profile_answered_with_garbage_refuses_each_profile_and_fails_in_one_line(device, sshd, tmp_path):
    (device.folder / "mode").write_text("garbage-profile")
    result = invoke("profile", conv_relu(tmp_path / "net.onnx", size=8), "--rounds", "2", "--warmup", "0",
                    "--no-reference", "--target", sshd.target("dev-b", tmp_path / "cache"), "--ssh-config",
                    sshd.config, "--remote-python", device.folder / "python", "--output-dir", tmp_path / "out")
    line = assert_refused(result, "ended without 1 of the 1 profiles asked for", status=1)
    assert "0 finished there" in line
    for reason in ("it is not a profile", "names no model and thread count", "its run_ms is not a list",
                   "a node's time, share or calls", "a node's covered ops", "a node is not an object",
                   "its rounds is 'None'"):
        assert reason in result.output, reason
    assert result.output.count("a profile was refused") == 9


@pytest.mark.slow
def test_killing_the_host_mid_run_ends_the_device_agent_and_its_worker(sshd, tmp_path):
    """SIGKILL leaves no chance to clean up: the agent sees its standard input close and ends its process group."""
    model = conv_relu(tmp_path / "net.onnx", size=64)
    cache = tmp_path / "cache"
    out = tmp_path / "o.csv"
    command = [sys.executable, "-m", "mbbench", "bench", str(model), "--threads", "1", "--rounds", "100000",
               "--target", sshd.target("dev-a", cache), "--ssh-config", str(sshd.config),
               "--remote-python", sshd.python, "-o", str(out)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    host = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _device_processes(cache):
            time.sleep(0.2)
        assert _device_processes(cache), "the agent never started"
        time.sleep(1.0)
    finally:
        os.killpg(host.pid, signal.SIGKILL)
        host.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _device_processes(cache):
        time.sleep(0.2)
    assert not _device_processes(cache), "device processes outlived the host"


def test_sigterm_during_a_target_run_ends_with_143_and_the_device_processes_with_it(sshd, tmp_path):
    model = conv_relu(tmp_path / "net.onnx", size=64)
    cache = tmp_path / "cache"
    command = [sys.executable, "-m", "mbbench", "bench", str(model), "--threads", "1", "--rounds", "100000",
               "--target", sshd.target("dev-a", cache), "--ssh-config", str(sshd.config),
               "--remote-python", sshd.python, "-o", str(tmp_path / "o.csv")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    host = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _device_processes(cache):
            time.sleep(0.2)
        assert _device_processes(cache), "the agent never started"
        host.send_signal(signal.SIGTERM)
        _, stderr = host.communicate(timeout=60)
    finally:
        host.kill()
    assert host.returncode == 143, stderr
    assert "Traceback" not in stderr and "Interrupted" in stderr
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and _device_processes(cache):
        time.sleep(0.2)
    assert not _device_processes(cache)


def test_resume_onto_a_csv_with_a_giant_field_is_one_line_and_leaves_the_file_alone(sshd, tmp_path):
    model = conv_relu(tmp_path / "net.onnx", size=8)
    out = tmp_path / "o.csv"
    with open(out, "w", newline="") as handle:  # a results CSV whose one row holds a 200,000-character field
        writer = csv.DictWriter(handle, RESULT_COLUMNS)
        writer.writeheader()
        writer.writerow({"model": "x" * 200_000, "threads": 1})
    before = out.read_bytes()
    result = invoke("bench", model, "--threads", "1", "--target", sshd.target("dev-a", tmp_path / "cache"),
                    "--ssh-config", sshd.config, "--remote-python", sshd.python, "-o", out, "--resume")
    assert_refused(result, "is not a results row mbbench writes", status=1)
    assert out.read_bytes() == before


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _device_processes(cache: Path) -> list[int]:
    """Processes whose working folder is the device's cache (the agent and its workers run there)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")).resolve() == cache.resolve() and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found
