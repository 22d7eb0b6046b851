"""``export_many`` and ``mbbench export --jobs``: several models at once in worker processes, every check each
export makes still made, results in the order asked, and no worker outliving a killed export."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mbbench.errors import OptionError
from mbbench.export.batch import check_jobs, export_many
from tests.cli._helpers import invoke

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(resolution=32, opset=17)


@pytest.mark.slow
def test_two_workers_export_side_by_side_and_return_results_in_the_order_asked(tmp_path):
    events = []
    results, failures = export_many(["mobilevitv2-050", "mobileone-s0"], jobs=2, output_dir=tmp_path,
                                    on_event=lambda kind, name, detail: events.append((kind, name)), **SMALL)
    assert failures == []
    assert [r.model for r in results] == ["mobilevitv2-050", "mobileone-s0"]
    for result in results:
        assert Path(result.path).is_file() and Path(result.path).with_suffix(".json").is_file()
        assert result.parity_max_rel <= result.tolerance  # the parity check ran in the worker
    kinds = [kind for kind, _ in events]
    # both were under way before either ended: two processes, not one after the other
    assert kinds.index("finished") > max(i for i, (kind, _) in enumerate(events) if kind == "started")
    assert {name for kind, name in events if kind == "stage"} == {"mobilevitv2-050", "mobileone-s0"}
    again, _ = export_many(["mobilevitv2-050", "mobileone-s0"], jobs=2, output_dir=tmp_path, **SMALL)
    assert all(r.skipped for r in again)  # the reuse rule is the single export's


@pytest.mark.slow
def test_a_refused_model_is_a_failure_beside_the_others_results(tmp_path):
    results, failures = export_many(["mobileone-s0", "mobilevitv2-050"], jobs=2, output_dir=tmp_path,
                                    fold="col2im", resolution=32, opset=17)  # col2im needs opset 18: v2 only
    assert [r.model for r in results] == ["mobileone-s0"]
    assert [name for name, _ in failures] == ["mobilevitv2-050"]
    assert "18" in failures[0][1]


@pytest.mark.parametrize("jobs", [0, -1, 65, 1.5, True, "2"])
def test_jobs_out_of_range_are_refused(jobs):
    with pytest.raises(OptionError, match="jobs must be a whole number"):
        check_jobs(jobs)


@pytest.mark.slow
def test_the_command_line_shows_each_model_as_it_finishes_and_refuses_a_bad_jobs(tmp_path):
    result = invoke("export", "mobileone-s0", "mobilenetv3-small", "--resolution", "32", "-j", "2",
                    "--models-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    lines = sorted(line for line in result.output.splitlines() if line.startswith("["))
    assert [line[:6] for line in lines] == ["[1/2] ", "[2/2] "]
    assert {line.split()[1] for line in lines} == {"mobileone-s0:", "mobilenetv3-small:"}
    refused = invoke("export", "mobileone-s0", "--jobs", "0")
    assert refused.exit_code == 2 and "jobs must be a whole number from 1 to 64" in refused.output


@pytest.mark.slow
def test_killing_the_export_ends_its_workers(tmp_path):
    """SIGKILL leaves the parent no chance to clean up: each worker's parent-death signal ends it."""
    proc = subprocess.Popen([sys.executable, "-m", "mbbench", "export", "fastvit-t8", "mobilevit-xs", "-j", "2",
                             "--models-dir", str(tmp_path)], env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(workers) < 2:
        workers = _children(proc.pid)
        time.sleep(0.2)
    assert len(workers) >= 2, "the export never started its workers"
    time.sleep(2)  # let them get into an export
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "a worker outlived the export"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and "spawn_main" in _cmdline(entry):  # a pool worker, not the tracker
                found.append(int(entry.name))
    return found


def _cmdline(entry: Path) -> str:
    try:
        return (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
