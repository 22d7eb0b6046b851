"""Busy-machine detection: a row measured beside CPU-bound processes is ``contended``, a quiet one is not."""

import csv
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mbbench.bench.load import CONTENDED_CORES, LoadProbe, busy_seconds
from .tiny_onnx import conv_relu

REPO = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(busy_seconds() is None, reason="no /proc/stat or psutil here")

#: a busy loop that ends by itself, so a failed test never leaves it spinning
_SPIN = "import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end:\n    pass\n"


def _bench(tmp_path, model, name):
    output = tmp_path / f"{name}.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "mbbench.bench.runner", str(model), "--threads", "1", "--rounds", "5",
         "--warmup", "0", "--min-time", "2", "--output", str(output)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr
    with open(output, newline="") as handle:
        return list(csv.DictReader(handle))[0], proc


@pytest.mark.slow
@linux_only
def test_a_run_beside_two_cpu_bound_processes_is_contended(tmp_path):
    model = conv_relu(tmp_path / "m.onnx", size=8)
    spinners = [subprocess.Popen([sys.executable, "-c", _SPIN.format(seconds=30)]) for _ in range(2)]
    try:
        row, proc = _bench(tmp_path, model, "busy")
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()
    assert row["contended"] == "True", row
    assert float(row["others_cpu_pct"]) >= 100 * CONTENDED_CORES and float(row["loadavg_1m"]) >= 0
    assert "‡" in proc.stdout and "‡ contended (1 of 1 rows)" in proc.stdout


def _others_cores(seconds=1.0):
    """Cores other processes used over ``seconds`` while this one sleeps (the machine's background load)."""
    probe = LoadProbe()
    time.sleep(seconds)
    return float(probe.finish(threads=len(probe.cpus or [0])).others_cpu_pct or 0) / 100 * len(probe.cpus or [0])


@pytest.mark.slow
@linux_only
def test_a_quiet_run_is_not_contended(tmp_path):
    model = conv_relu(tmp_path / "m.onnx", size=8)
    if _others_cores() >= CONTENDED_CORES / 2:
        pytest.skip("other processes are using the CPU now; a quiet run cannot be made here")
    before = LoadProbe()
    row, proc = _bench(tmp_path, model, "quiet")
    around = before.finish(threads=1)
    if around.contended:  # something else woke up meanwhile: this machine cannot show a quiet run now
        pytest.skip("the machine got busy during the run")
    assert row["contended"] == "False", row
    assert float(row["others_cpu_pct"]) < 100 * CONTENDED_CORES and "‡" not in proc.stdout


def test_a_probe_counts_its_own_cpu_time_as_its_own():
    probe = LoadProbe()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:  # this process burns a core: that is not "others"
        pass
    load = probe.finish(threads=1)
    if load.others_cpu_pct is None:
        pytest.skip("no /proc/stat or psutil here")
    if _others_cores(0.5) >= CONTENDED_CORES / 2:
        pytest.skip("other processes are using the CPU now")
    assert load.others_cpu_pct < 100 * CONTENDED_CORES
