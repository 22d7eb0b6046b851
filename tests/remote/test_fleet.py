"""Remote targets through the library, against a real sshd on 127.0.0.1 (see conftest.py)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from mbbench.bench.modelfile import inspect_model
from mbbench.bench.options import BenchConfig
from mbbench.bench.runner import SweepObserver
from mbbench.errors import UserInputError
from mbbench.remote import RemoteSettings, bench_targets, parse_target
from tests.bench.tiny_onnx import conv_relu

FAST = BenchConfig(threads=(1, 2), rounds=3, warmup=0)


@pytest.fixture
def models(tmp_path):
    return [inspect_model(conv_relu(tmp_path / "small.onnx", size=8)),
            inspect_model(conv_relu(tmp_path / "large.onnx", size=24))]


@pytest.fixture
def settings(sshd):
    return RemoteSettings(ssh_config=sshd.config, remote_python=sshd.python)


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_bench_over_ssh_measures_each_model_on_the_device(sshd, settings, models, tmp_path):
    cache = tmp_path / "device-cache"
    target = sshd.target("dev-a", cache)
    result = bench_targets(models, FAST, [target], output=tmp_path / "out.csv", settings=settings)

    assert not result.target_failures and not result.failures
    rows = read_rows(tmp_path / "out.csv")
    assert sorted((r["model"], r["threads"]) for r in rows) == [("large", "1"), ("large", "2"), ("small", "1"),
                                                                ("small", "2")]
    assert {r["target"] for r in rows} == {target}
    # the file column names the local file; the samples sidecar holds every round of every row
    assert {r["file"] for r in rows} == {m.path.as_posix() for m in models}
    samples = read_rows(tmp_path / "out.samples.csv")
    assert len(samples) == 4 * FAST.rounds
    # everything the run left on the device is inside the cache folder, named by sha256
    pushed = sorted(p.name for p in (cache / "models").iterdir())
    assert pushed == sorted(f"{m.sha256}.onnx" for m in models)


@pytest.mark.slow
def test_two_targets_at_once_into_one_csv_and_a_second_run_pushes_no_model(sshd, settings, models, tmp_path):
    targets = [sshd.target("dev-a", tmp_path / "a"), sshd.target("dev-b", tmp_path / "b")]
    first = bench_targets(models, FAST, targets, output=tmp_path / "fleet.csv", settings=settings)
    assert not first.target_failures
    rows = read_rows(tmp_path / "fleet.csv")
    assert sorted({r["target"] for r in rows}) == sorted(targets)
    assert len(rows) == 2 * 2 * 2
    assert all(bytes_ > 0 for bytes_ in first.pushed_model_bytes.values())

    again = bench_targets(models, FAST, targets, output=tmp_path / "again.csv", settings=settings)
    assert again.pushed_model_bytes == {t: 0 for t in targets}
    assert len(again.rows) == 8


@pytest.mark.slow
def test_a_core_left_incomplete_or_changed_on_the_device_is_pushed_again(sshd, settings, models, tmp_path):
    """A push cut short (a full disk, a dropped connection) once left a core folder every later run trusted."""
    cache = tmp_path / "cache"
    target = sshd.target("dev-a", cache)
    assert not bench_targets(models[:1], FAST, [target], output=tmp_path / "1.csv", settings=settings).target_failures
    (core,) = (cache / "core").iterdir()
    agent = core / "mbbench" / "bench" / "agent.py"
    agent.unlink()  # as a push cut short would leave it
    second = bench_targets(models[:1], FAST, [target], output=tmp_path / "2.csv", settings=settings)
    assert not second.target_failures and len(second.rows) == 2
    assert agent.exists()
    agent.write_text(agent.read_text() + "\nraise SystemExit('changed on the device')\n")
    third = bench_targets(models[:1], FAST, [target], output=tmp_path / "3.csv", settings=settings)
    assert not third.target_failures and len(third.rows) == 2
    assert "changed on the device" not in agent.read_text()


def test_unknown_host_key_is_refused_and_nothing_is_written(sshd, settings, models, tmp_path):
    result = bench_targets(models, FAST, [sshd.target(sshd.unknown_alias, tmp_path / "c")], output=tmp_path / "o.csv",
                           settings=settings)
    assert not result.rows
    (failure,) = result.target_failures
    assert "host key" in failure.message and f"ssh -F {sshd.config} {sshd.unknown_alias}" in failure.message
    assert not (tmp_path / "c").exists()  # refused before anything was pushed
    assert not (tmp_path / "o.csv").exists()


def test_unreachable_host_is_one_line(settings, models, tmp_path, sshd):
    # a port nothing listens on, on loopback: refused at once
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = bench_targets(models, FAST, [f"ssh://127.0.0.1:{port}/tmp/x"], output=tmp_path / "o.csv",
                           settings=RemoteSettings(ssh_config=sshd.config, remote_python=sshd.python,
                                                   connect_timeout=5))
    (failure,) = result.target_failures
    assert "cannot reach 127.0.0.1" in failure.message and "\n" not in failure.message


def test_remote_python_without_onnxruntime_is_refused_before_any_push(sshd, models, tmp_path):
    bare = tmp_path / "bare-venv"
    venv.EnvBuilder(with_pip=False).create(bare)
    settings = RemoteSettings(ssh_config=sshd.config, remote_python=str(bare / "bin" / "python"))
    result = bench_targets(models, FAST, [sshd.target("dev-a", tmp_path / "cache")], output=tmp_path / "o.csv",
                           settings=settings)
    (failure,) = result.target_failures
    assert "onnxruntime and numpy are not installed" in failure.message
    assert "pip install onnxruntime numpy" in failure.message
    assert not (tmp_path / "cache").exists()


@pytest.mark.slow
def test_a_connection_killed_mid_run_keeps_finished_rows_and_resume_completes(sshd, settings, models, tmp_path):
    """The first row's arrival kills every live SSH session on the server; --resume measures only the rest."""
    output = tmp_path / "out.csv"
    target = sshd.target("dev-a", tmp_path / "cache")

    class KillAfterFirstRow(SweepObserver):
        killed = False

        def configuration_finished(self, row, stats, measurement):
            if not self.killed:
                self.killed = True
                sessions = subprocess.run(["pgrep", "-P", str(sshd.process.pid)], capture_output=True, text=True)
                for pid in sessions.stdout.split():
                    os.kill(int(pid), signal.SIGKILL)

    first = bench_targets(models, FAST, [target], output=output, settings=settings, observer=KillAfterFirstRow())
    (failure,) = first.target_failures
    assert "--resume" in failure.message
    kept = read_rows(output)
    assert 1 <= len(kept) < 4

    second = bench_targets(models, FAST, [target], output=output, settings=settings, resume=True)
    assert not second.target_failures
    assert second.skipped == len(kept)
    rows = read_rows(output)
    assert sorted((r["model"], r["threads"]) for r in rows) == [("large", "1"), ("large", "2"), ("small", "1"),
                                                                ("small", "2")]


def test_a_hostile_file_name_stays_a_name(sshd, settings, tmp_path):
    hostile = conv_relu(tmp_path / "$(touch pwned); `touch pwned`.onnx", size=8)
    result = bench_targets([inspect_model(hostile)], BenchConfig(threads=(1,), rounds=2, warmup=0),
                           [sshd.target("dev-a", tmp_path / "cache dir; touch pwned")], output=tmp_path / "o.csv",
                           settings=settings)
    assert not result.target_failures and len(result.rows) == 1
    assert result.rows[0]["model"] == hostile.stem
    cache = tmp_path / "cache dir; touch pwned"
    assert not any(p.name == "pwned" for p in tmp_path.rglob("*")) and not (Path.home() / "pwned").exists()
    assert not (Path.cwd() / "pwned").exists()
    assert (cache / "models").is_dir()


@pytest.mark.parametrize("url, message", [
    ("dev-a", "not an ssh:// URL"),
    ("ssh://user:secret@dev-a/x", "passwords are not accepted"),
    ("ssh://-oProxyCommand=touch%20x/", "no valid host"),
    ("ssh://dev-a:99999/", "port must be a number"),
])
def test_bad_target_urls_are_refused(url, message):
    with pytest.raises(UserInputError, match=message):
        parse_target(url)


def test_target_url_parts():
    target = parse_target("ssh://pi@board.local:2222/~/bench")
    assert (target.user, target.host, target.port, target.workdir) == ("pi", "board.local", 2222, "~/bench")
    assert target.remote_path("models") == '"$HOME"/bench/models'
    assert parse_target("ssh://phone").workdir == "~/.cache/mbbench"
    assert parse_target("ssh://phone/data/x y").remote_path() == "'/data/x y'"


def test_the_pushed_core_imports_without_the_heavy_stack(tmp_path):
    """What is pushed to a device runs with only onnxruntime and numpy: torch, onnx, pandas, click and rich blocked."""
    import io
    import tarfile

    from mbbench.remote import portable_core

    core_id, data = portable_core()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "core" / core_id
    assert not (root / "mbbench" / "models").exists() and not (root / "mbbench" / "export").exists()
    blocker = ("import sys\nfor name in ('torch', 'onnx', 'pandas', 'click', 'rich', 'scipy', 'matplotlib'):\n"
               "    sys.modules[name] = None\n"
               "import mbbench.bench.agent, mbbench.bench.device, mbbench.bench.runner\nprint('ok')\n")
    proc = subprocess.run([sys.executable, "-c", blocker], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.stdout.strip() == "ok", proc.stderr


def test_a_remote_python_under_tilde_is_the_device_homes(sshd, models, tmp_path):
    """'~/...' quoted on this side reaches the device unexpanded: it must mean the device user's home there."""
    import secrets

    link = Path.home() / f".mbbench-test-python-{secrets.token_hex(4)}"
    link.write_text(f'#!/bin/sh\nexec {sshd.python} "$@"\n')  # a venv's python finds its venv by its own path
    link.chmod(0o755)
    try:
        settings = RemoteSettings(ssh_config=sshd.config, remote_python=f"~/{link.name}")
        result = bench_targets(models[:1], BenchConfig(threads=(1,), rounds=2, warmup=0),
                               [sshd.target("dev-a", tmp_path / "cache")], output=tmp_path / "o.csv",
                               settings=settings)
    finally:
        link.unlink()
    assert not result.target_failures, result.target_failures
    assert len(read_rows(tmp_path / "o.csv")) == 1
