import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest

import mbbench
from mbbench.bench.environment import machine_facts
from mbbench.bench.modelfile import resolve_models
from mbbench.bench.options import BenchConfig
from mbbench.bench.runner import SweepObserver, run_sweep
from mbbench.bench.schema import RESULT_COLUMNS, SAMPLE_COLUMNS, samples_path
from mbbench.errors import UserInputError
from .tiny_onnx import broken, conv_relu, write_manifest

FAST = dict(rounds=3, warmup=1)
REPO = Path(mbbench.__file__).resolve().parent.parent


class Recorder(SweepObserver):
    def __init__(self):
        self.events = []
        self.pids = []

    def note(self, message):
        self.events.append(("note", message))

    def configuration_started(self, index, total, model, threads):
        self.events.append(("start", index, total, model.label, threads))

    def configuration_finished(self, row, stats, measurement):
        self.pids.append(measurement.pid)

    def configuration_failed(self, model, threads, message):
        self.events.append(("failed", model.label, threads))

    def configuration_skipped(self, model, threads):
        self.events.append(("skipped", model.label, threads))


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_sweep_writes_one_complete_row_per_configuration(models, tmp_path):
    write_manifest(models["conv"])
    files = resolve_models([models["conv"], models["matmul"]])
    output = tmp_path / "out" / "r.csv"
    result = run_sweep(files, BenchConfig(threads="1,2", isolate=False, **FAST), output=output)
    assert not result.failures and not result.interrupted and result.total == 4
    rows = read_csv(output)
    assert list(rows[0]) == list(RESULT_COLUMNS)
    assert [(r["model"], r["threads"]) for r in rows] == [
        ("mobileone-s0", "1"), ("mobileone-s0", "2"), ("matmul", "1"), ("matmul", "2")]
    facts = machine_facts()
    for row in rows:
        assert row["rounds"] == "3" and float(row["min_ms"]) <= float(row["p50_ms"]) <= float(row["max_ms"])
        assert float(row["ci95_low_ms"]) <= float(row["mean_ms"]) <= float(row["ci95_high_ms"])
        assert row["warmup"] == "1" and row["graph_opt"] == "all" and row["spinning"] == "default"
        assert row["provider"] == "CPUExecutionProvider" and row["inter_threads"] == "1"
        assert row["opset"] == "13" and len(row["sha256"]) == 64
        assert row["host"] == facts["host"] and row["physical_cores"] == str(facts["physical_cores"])
        assert row["mbbench_version"] == mbbench.__version__ and row["isolated"] == "False"
        assert pd.Timestamp(row["timestamp"]).tzinfo is not None
    assert rows[0]["family"] == "mobileone" and rows[0]["params"] == "1234" and rows[0]["reparameterized"] == "True"
    assert rows[2]["family"] == "" and rows[2]["exporter"] == "" and rows[2]["input_shape"] == "1x8"
    samples = read_csv(samples_path(output))
    assert list(samples[0]) == list(SAMPLE_COLUMNS) and len(samples) == 4 * 3
    assert [s["round"] for s in samples[:3]] == ["1", "2", "3"]
    # every samples block joins back to exactly one results row
    keys = {(r["model"], r["threads"], r["timestamp"]) for r in rows}
    assert {(s["model"], s["threads"], s["timestamp"]) for s in samples} == keys


def test_report_style_reading_with_pandas(models, tmp_path):
    output = tmp_path / "r.csv"
    run_sweep(resolve_models([models["conv"]]), BenchConfig(threads=1, isolate=False, **FAST), output=output)
    frame = pd.read_csv(output)
    assert frame["unstable"].dtype == bool and frame["oversubscribed"].dtype == bool
    assert frame["mean_ms"].dtype == float and frame["threads"].dtype == "int64"
    assert pd.read_csv(samples_path(output))["ms"].dtype == float


def test_isolation_runs_each_configuration_in_its_own_process(models, tmp_path):
    recorder = Recorder()
    files = resolve_models([models["conv"], models["add"]])
    result = run_sweep(files, BenchConfig(threads="1,2", **FAST), observer=recorder)
    assert len(result.rows) == 4 and all(r["isolated"] is True for r in result.rows)
    assert os.getpid() not in recorder.pids
    assert len(set(recorder.pids)) == 4


def test_failing_model_is_reported_skipped_and_the_rest_go_on(models, tmp_path):
    junk = broken(tmp_path / "junk.onnx")
    recorder = Recorder()
    files = resolve_models([junk, models["conv"]])
    output = tmp_path / "r.csv"
    result = run_sweep(files, BenchConfig(threads="1,2", isolate=False, **FAST), output=output, observer=recorder)
    assert [(f.model, f.threads) for f in result.failures] == [("junk", 1)]
    assert result.failures[0].message.startswith("cannot load junk.onnx")
    assert ("skipped", "junk", 2) in recorder.events
    assert [(r["model"], r["threads"]) for r in read_csv(output)] == [("conv", "1"), ("conv", "2")]


def test_isolated_failure_comes_back_as_one_line(tmp_path):
    junk = broken(tmp_path / "junk.onnx")
    result = run_sweep(resolve_models([junk]), BenchConfig(threads=1, **FAST))
    assert len(result.failures) == 1 and "\n" not in result.failures[0].message
    assert result.failures[0].message.startswith("cannot load junk.onnx")


def test_all_failing_leaves_no_output_file(tmp_path):
    junk = broken(tmp_path / "junk.onnx")
    output = tmp_path / "r.csv"
    result = run_sweep(resolve_models([junk]), BenchConfig(threads=1, isolate=False, **FAST), output=output)
    assert result.failures and not output.exists() and not samples_path(output).exists()


def test_oversubscription_is_flagged_and_warned(conv_model, monkeypatch):
    from mbbench.bench import _runner

    monkeypatch.setattr(_runner, "usable_cores", lambda: 1)
    recorder = Recorder()
    result = run_sweep(resolve_models([conv_model]), BenchConfig(threads="1,2", isolate=False, **FAST),
                       observer=recorder)
    assert [r["oversubscribed"] for r in result.rows] == [False, True]
    notes = [e[1] for e in recorder.events if e[0] == "note"]
    assert len(notes) == 1 and "2 threads is more than the 1 cores" in notes[0]


@pytest.mark.slow
def test_shuffle_is_seeded(models):
    files = resolve_models([models["conv"], models["matmul"], models["add"]])

    def order(seed):
        recorder = Recorder()
        run_sweep(files, BenchConfig(threads="1,2", isolate=False, shuffle=True, seed=seed, rounds=2, warmup=0),
                  observer=recorder)
        return [(e[3], e[4]) for e in recorder.events if e[0] == "start"]

    first = order(1)
    assert first == order(1)
    assert sorted(first) == sorted((m, t) for m in ("conv", "matmul", "add") for t in (1, 2))
    assert first != [(m, t) for m in ("conv", "matmul", "add") for t in (1, 2)]


def test_extra_columns_follow_the_schema(models, tmp_path):
    files = resolve_models([models["conv"], models["matmul"]])
    extra = {str(models["conv"]): {"study": "fold", "value": 1}, models["matmul"]: {"study": "fold"}}
    output = tmp_path / "r.csv"
    result = run_sweep(files, BenchConfig(threads=1, isolate=False, **FAST), output=output, extra_columns=extra)
    assert result.columns == list(RESULT_COLUMNS) + ["study", "value"]
    rows = read_csv(output)
    assert [(r["study"], r["value"]) for r in rows] == [("fold", "1"), ("fold", "")]
    with pytest.raises(UserInputError, match="built-in column 'threads'"):
        run_sweep(files, BenchConfig(threads=1, **FAST), extra_columns={models["conv"]: {"threads": 3}})
    with pytest.raises(UserInputError, match="not among the models"):
        run_sweep(files, BenchConfig(threads=1, **FAST), extra_columns={"other.onnx": {"study": "x"}})


def test_ctrl_c_keeps_finished_rows_and_drops_the_one_in_flight(models, tmp_path):
    class InterruptSecond(SweepObserver):
        def configuration_started(self, index, total, model, threads):
            if index == 2:
                raise KeyboardInterrupt

    output = tmp_path / "r.csv"
    files = resolve_models([models["conv"]])
    result = run_sweep(files, BenchConfig(threads="1,2", isolate=False, **FAST), output=output,
                       observer=InterruptSecond())
    assert result.interrupted and len(result.rows) == 1
    assert len(read_csv(output)) == 1 and len(read_csv(samples_path(output))) == 3


def test_append_adds_rows_and_refuses_without_it(conv_model, tmp_path):
    output = tmp_path / "r.csv"
    config = BenchConfig(threads=1, isolate=False, **FAST)
    run_sweep(resolve_models([conv_model]), config, output=output)
    with pytest.raises(UserInputError, match="pass --append"):
        run_sweep(resolve_models([conv_model]), config, output=output)
    run_sweep(resolve_models([conv_model]), config, output=output, append=True)
    assert len(read_csv(output)) == 2 and len(read_csv(samples_path(output))) == 6


def test_unknown_provider_is_refused_before_anything_runs(conv_model, tmp_path):
    output = tmp_path / "r.csv"
    with pytest.raises(UserInputError, match="use one of"):
        run_sweep(resolve_models([conv_model]), BenchConfig(provider="CUDAExecutionProvider"), output=output)
    assert not output.exists()


# -- subprocess behaviour: portability, SIGKILL, Ctrl-C ----------------------------------------------------

BLOCKER = textwrap.dedent(
    """
    import sys

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {"torch", "pandas", "rich", "click", "scipy", "onnx", "psutil"} or name in {
                    "mbbench.models", "mbbench.export", "mbbench.studies", "mbbench.report", "mbbench.cli",
                    "mbbench.pipeline"}:
                raise ImportError(f"{name} is not installed on this phone")
            return None

    sys.meta_path.insert(0, _Block())
    """
)


def _env_without_heavy_packages(tmp_path):
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(BLOCKER)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    return env


def test_portable_runner_needs_only_onnxruntime_and_numpy(models, tmp_path):
    """Runs as `python -m mbbench.bench.runner` with torch, pandas, rich, click, scipy, onnx and mbbench's own
    models/export/studies/report/cli unimportable, isolated workers included."""
    env = _env_without_heavy_packages(tmp_path)
    output = tmp_path / "phone.csv"
    proc = subprocess.run(
        [sys.executable, "-m", "mbbench.bench.runner", str(models["conv"]), str(models["add"]), "--threads", "1",
         "--rounds", "3", "--warmup", "0", "--output", str(output)],
        env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    rows = read_csv(output)
    assert list(rows[0]) == list(RESULT_COLUMNS) and [r["model"] for r in rows] == ["conv", "add"]
    assert rows[0]["isolated"] == "True" and rows[0]["opset"] == "13"
    assert "conv" in proc.stdout and "±" in proc.stdout
    assert "2 of 2 configurations saved" in proc.stderr


def test_portable_runner_bad_input_is_one_line(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mbbench.bench.runner", "missing.onnx", "--output", str(tmp_path / "x.csv")],
        capture_output=True, text=True, timeout=60, env=_env_without_heavy_packages(tmp_path),
    )
    # the main command line's rule (README, "Exit status"): found while working -> 1, a bad value -> 2
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["Error: no such file or folder: missing.onnx; check the path"]
    assert not (tmp_path / "x.csv").exists()
    bad = subprocess.run([sys.executable, "-m", "mbbench.bench.runner", "missing.onnx", "--threads", "0"],
                         capture_output=True, text=True, timeout=60, env=_env_without_heavy_packages(tmp_path))
    assert bad.returncode == 2 and bad.stderr.startswith("Error: invalid thread spec '0'"), bad.stderr
    unknown = subprocess.run([sys.executable, "-m", "mbbench.bench.runner", "--no-such-option"],
                             capture_output=True, text=True, timeout=60, env=_env_without_heavy_packages(tmp_path))
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1, unknown.stderr


def test_importing_the_package_stays_light():
    code = ("import sys, mbbench, mbbench.bench, mbbench.bench.schema; "
            "heavy = {'torch', 'pandas', 'onnxruntime', 'numpy'} & set(sys.modules); "
            "print(sorted(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "[]", proc.stderr


def _start_runner(tmp_path, *extra, count=3, env=None):
    """The portable runner on ``count`` tiny models x threads 1,2, in its own session (so a test can signal its
    whole process group). The caller picks what keeps it running long enough to be signalled: ``--cooldown
    3600`` sleeps after each configuration, ``--min-time 3600`` keeps the first one measuring."""
    models = [str(conv_relu(tmp_path / f"m{i:02d}.onnx", size=8)) for i in range(count)]
    output = tmp_path / "crash.csv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mbbench.bench.runner", *models, "--threads", "1,2", "--rounds", "50",
         "--warmup", "0", "--output", str(output), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )
    return proc, output


def _wait_until(condition, proc, what, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert proc.poll() is None, f"the runner ended before {what}: {proc.stderr.read()}"
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _rows_written(path):
    return len(read_csv(path)) if path.exists() and path.read_text().endswith("\n") else 0


def _workers(pid):
    """The isolated workers among the children of ``pid`` (not e.g. a `uname` that platform runs)."""
    try:
        children = [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    found = []
    for child in children:
        try:
            if b"mbbench.bench._worker" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            pass
    return found


def _gone(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def _wait_gone(pid, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _gone(pid):
            return True
        time.sleep(0.05)
    return False


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to see the worker")


@pytest.mark.parametrize("isolate", ["--no-isolate", "--isolate"])
def test_sigkill_loses_no_finished_row_and_leaves_no_partial_one(tmp_path, isolate):
    # the cooldown holds the sweep after its first row, so the kill lands with a row saved on any machine
    proc, output = _start_runner(tmp_path, isolate, "--cooldown", "3600")
    try:
        _wait_until(lambda: _rows_written(output) >= 1, proc, "the first row")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and its worker, if any
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    text = output.read_text()
    assert text.endswith("\n")
    rows = read_csv(output)
    assert len(rows) == 1
    for row in rows:
        assert list(row) == list(RESULT_COLUMNS) and None not in row.values()
        assert row["rounds"] == "50" and float(row["mean_ms"]) > 0 and len(row["sha256"]) == 64
    frame = pd.read_csv(output)  # what report does
    assert len(frame) == len(rows) and not frame["mean_ms"].isna().any()
    samples = pd.read_csv(samples_path(output))
    counts = samples.groupby(["model", "threads", "timestamp"]).size()
    for row in rows:
        assert counts[(row["model"], int(row["threads"]), row["timestamp"])] == 50


@pytest.mark.parametrize("isolate", ["--no-isolate", "--isolate"])
def test_ctrl_c_stops_cleanly_and_says_what_was_saved(tmp_path, isolate):
    proc, output = _start_runner(tmp_path, isolate, "--cooldown", "3600")
    try:
        _wait_until(lambda: _rows_written(output) >= 1, proc, "the first row")
        os.killpg(proc.pid, signal.SIGINT)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130
    assert f"interrupted: 1 of 6 configurations saved to {output}" in stderr
    assert "Traceback" not in stderr


@needs_proc
@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_an_interrupt_during_a_measurement_kills_the_worker_and_leaves_no_temp_file(tmp_path, signum, status):
    """The signal goes to the runner alone (as `kill PID` does): the runner must end its worker itself."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    proc, output = _start_runner(tmp_path, "--isolate", "--min-time", "3600", count=1, env={"TMPDIR": str(scratch)})
    try:
        worker = _wait_until(lambda: _workers(proc.pid), proc, "the worker to start")[0]
        os.kill(proc.pid, signum)
        _, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == status, stderr
    assert _wait_gone(worker), "the worker outlived the runner"
    assert "Traceback" not in stderr and "nothing saved" in stderr
    # (onnxruntime's import leaves its own `.ses` marker in TMPDIR; nothing of mbbench may be there)
    assert [p.name for p in scratch.iterdir() if p.name != ".ses"] == [] and not output.exists()


@needs_proc
def test_the_worker_dies_with_its_parent(tmp_path):
    """SIGKILL to the runner alone gives it no chance to clean up: the worker must notice by itself."""
    proc, _ = _start_runner(tmp_path, "--isolate", "--min-time", "3600", count=1)
    try:
        worker = _wait_until(lambda: _workers(proc.pid), proc, "the worker to start")[0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert _wait_gone(worker), "the worker outlived its killed parent"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)


def test_the_watchdog_ends_a_worker_whose_parent_changed(tmp_path):
    """The portable fallback (no prctl): a worker told of a parent that is not its own exits at once."""
    code = ("import time; from mbbench.bench._worker import die_with_parent; import mbbench.bench._worker as w; "
            "w.sys.platform = 'other'; die_with_parent(1); time.sleep(60); print('still alive')")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1 and "still alive" not in proc.stdout
