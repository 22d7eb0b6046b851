"""Soak: bench, export and report killed with SIGKILL and SIGTERM at random moments, then the files checked.

A bounded, seeded loop (8 kills per command, half of each signal). After every kill: no process of the killed
command's session is left (the isolated bench worker dies with its parent), every CSV row is whole and has its
samples, files that existed before are intact or wholly replaced, and after a SIGTERM no temporary file is left
(after a SIGKILL the next run of the same command removes it, which the end of each test checks).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.bench.tiny_onnx import conv_relu
from tests.hostile.conftest import REPO, run_cli

pytestmark = pytest.mark.slow

KILLS = 8
SIGNALS = [signal.SIGKILL, signal.SIGTERM] * (KILLS // 2)


def start(*args, cwd) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "mbbench", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def session_members(sid: int) -> list[int]:
    """Live (non-zombie) processes whose session is ``sid``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry.name))
    return members


def kill_after(proc: subprocess.Popen, delay: float, sig: int) -> None:
    time.sleep(delay)
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout=60)
    deadline = time.monotonic() + 10
    while session_members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert session_members(proc.pid) == [], f"processes of the killed command outlived it ({signal.Signals(sig).name})"


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def whole_rows(path: Path) -> list[dict]:
    data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path.name} ends inside a row"
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = list(reader)
    assert all(len(row) == len(header) for row in rows), f"{path.name} holds a partial row"
    return [dict(zip(header, row)) for row in rows]


@pytest.fixture
def rng():
    return random.Random(20261130)


def test_bench_killed_at_random_keeps_every_finished_row_whole(tmp_path, rng):
    model = conv_relu(tmp_path / "m.onnx", size=16)
    output = tmp_path / "out.csv"
    for sig in SIGNALS:
        before = output.read_bytes() if output.exists() else b""
        proc = start("bench", model, "--threads", "1,2", "--rounds", "300", "--warmup", "0", "-o", output, "--append",
                     cwd=tmp_path)
        kill_after(proc, rng.uniform(0.5, 3.0), sig)
        if output.exists():
            assert output.read_bytes().startswith(before), "rows saved before the kill changed"
            rows = whole_rows(output)
            samples = whole_rows(tmp_path / "out.samples.csv")
            keys = {(s["model"], s["threads"], s["timestamp"]) for s in samples}
            assert all((r["model"], r["threads"], r["timestamp"]) in keys for r in rows), "a row without samples"
        assert temporaries(tmp_path) == []


def _pair_is_consistent(folder: Path, stem: str) -> tuple[bytes, bytes]:
    onnx, manifest = folder / f"{stem}.onnx", folder / f"{stem}.json"
    data, text = onnx.read_bytes(), manifest.read_bytes()
    assert json.loads(text)["sha256"] == hashlib.sha256(data).hexdigest(), "the .onnx and its manifest disagree"
    return data, text


def test_export_killed_at_random_leaves_the_old_pair_or_the_new_one(tmp_path, rng):
    folder = tmp_path / "models"
    args = ("export", "mobileone-s0", "--resolution", "64", "--opset", "13", "--models-dir", folder, "--force")
    first = run_cli(*args, cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    (onnx,) = folder.glob("*.onnx")
    stem = onnx.stem
    for sig in SIGNALS:
        proc = start(*args, cwd=tmp_path)
        kill_after(proc, rng.uniform(0.3, 4.0), sig)
        _pair_is_consistent(folder, stem)
        if sig == signal.SIGTERM:
            assert temporaries(folder) == []
    last = run_cli(*args, cwd=tmp_path, timeout=300)
    assert last.returncode == 0, last.stderr
    _pair_is_consistent(folder, stem)
    assert temporaries(folder) == [], "a killed export's temporary file survived the next export"


def test_report_killed_at_random_leaves_the_old_output_or_a_whole_new_one(tmp_path, rng):
    rows = tmp_path / "rows.csv"
    source = conv_relu(tmp_path / "m.onnx", size=8)
    made = run_cli("bench", source, "--threads", "1,2", "--rounds", "3", "--warmup", "0", "--no-isolate", "-o", rows,
                   cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    out, plot = tmp_path / "out.md", tmp_path / "out.png"
    out.write_text("old report\n")
    for sig in SIGNALS:
        proc = start("report", rows, "--format", "markdown", "--output", out, "--plot", plot, cwd=tmp_path)
        kill_after(proc, rng.uniform(0.2, 4.0), sig)
        text = out.read_text()
        assert text == "old report\n" or (text.startswith("# mbbench report") and text.endswith("\n")), text[:80]
        if plot.exists():
            png = plot.read_bytes()
            assert png.startswith(b"\x89PNG\r\n\x1a\n") and png.endswith(b"IEND\xaeB`\x82"), "a partial plot"
        if sig == signal.SIGTERM:
            assert temporaries(tmp_path) == []
    last = run_cli("report", rows, "--format", "markdown", "--output", out, "--plot", plot, cwd=tmp_path)
    assert last.returncode == 0, last.stderr
    assert temporaries(tmp_path) == []
