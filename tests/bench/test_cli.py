import csv
import numpy as np
import pytest
from click.testing import CliRunner

from mbbench.bench import _runner as runner_module
from mbbench.bench.schema import RESULT_COLUMNS, samples_path
from mbbench.bench.session import Measurement
from mbbench.cli import main
from .tiny_onnx import broken

FAST = ["--rounds", "3", "--warmup", "0", "--no-isolate"]


def invoke(*args):
    return CliRunner().invoke(main, ["bench", *map(str, args)])


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_help_documents_every_option():
    result = invoke("--help")
    assert result.exit_code == 0
    for option in ("--threads", "--rounds", "--warmup", "--min-time", "--graph-opt", "--spin / --no-spin",
                   "--inter-threads", "--provider", "--input-shape", "--seed", "--isolate / --no-isolate",
                   "--shuffle", "--cooldown", "--output", "--append", "--models-dir"):
        assert option in result.output


def test_happy_path_table_and_csv(models, tmp_path):
    output = tmp_path / "out.csv"
    result = invoke(models["conv"], models["matmul"], "--threads", "1,2", *FAST, "--input-shape", "batch=2",
                    "--output", output)
    assert result.exit_code == 0, result.output
    assert "Latency (ms, mean ± std)" in result.stdout
    assert "1 thread" in result.stdout and "2 threads" in result.stdout
    table_lines = [line for line in result.stdout.splitlines() if line.startswith("│ conv")]
    assert len(table_lines) == 1 and table_lines[0].count("±") == 2
    assert f"4 of 4 configurations saved to {output}" in result.stderr
    saved = rows(output)
    assert [(r["model"], r["threads"]) for r in saved] == [("conv", "1"), ("conv", "2"), ("matmul", "1"),
                                                            ("matmul", "2")]
    assert saved[2]["input_shape"] == "2x8" and list(saved[0]) == list(RESULT_COLUMNS)
    assert len(rows(samples_path(output))) == 12


def test_defaults_isolated_run_and_default_output(conv_model, tmp_path):
    result = invoke(conv_model, "--threads", "1", "--rounds", "2", "--warmup", "0")
    assert result.exit_code == 0, result.output
    written = sorted((tmp_path / "results").glob("*.csv"))
    assert [p.name.endswith(".samples.csv") for p in written] == [False, True]
    row = rows(written[0])[0]
    assert row["isolated"] == "True" and row["spinning"] == "default" and row["graph_opt"] == "all"


def test_no_model_means_every_onnx_in_models_dir(models, tmp_path):
    output = tmp_path / "out.csv"
    result = invoke("--models-dir", models["conv"].parent, "--threads", "1", *FAST, "-o", output)
    assert result.exit_code == 0, result.output
    assert sorted(r["model"] for r in rows(output)) == ["add", "conv", "matmul"]


def test_options_reach_the_rows(conv_model, tmp_path):
    output = tmp_path / "out.csv"
    result = invoke(conv_model, "--threads", "2", "--graph-opt", "basic", "--no-spin", "--inter-threads", "2",
                    "--seed", "7", "--min-time", "0.01", "--shuffle", *FAST, "-o", output)
    assert result.exit_code == 0, result.output
    row = rows(output)[0]
    assert (row["graph_opt"], row["spinning"], row["inter_threads"], row["seed"], row["min_time_s"]) == (
        "basic", "off", "2", "7", "0.01")
    assert int(row["rounds"]) >= 3


def test_append(conv_model, tmp_path):
    output = tmp_path / "out.csv"
    assert invoke(conv_model, "--threads", "1", *FAST, "-o", output).exit_code == 0
    assert invoke(conv_model, "--threads", "2", *FAST, "-o", output, "--append").exit_code == 0
    assert [r["threads"] for r in rows(output)] == ["1", "2"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--threads", "0"], "thread counts start at 1"),
        (["--threads", "-1"], "thread counts must be positive"),
        (["--threads", "4-1"], "the range 4-1 is reversed; write 1-4"),
        (["--threads", "two"], "'two' is not a count or a range"),
        (["--threads", "1,,2"], "empty item"),
        (["--rounds", "1"], "rounds must be from 2 to 1000000"),
        (["--rounds", "1000001"], "rounds must be from 2 to 1000000"),
        (["--rounds", "abc"], "'abc' is not a valid integer"),
        (["--warmup", "-1"], "warmup must be from 0 to 100000"),
        (["--min-time", "-2"], "min_time must be a number of seconds from 0 to 3600"),
        (["--min-time", "1e308"], "min_time must be a number of seconds from 0 to 3600"),
        (["--cooldown", "-2"], "cooldown must be a number of seconds"),
        (["--cooldown", "1e10"], "cooldown must be a number of seconds from 0 to 3600"),
        (["--inter-threads", "0"], "inter_threads must be from 1 to 1024"),
        (["--inter-threads", "10000000000"], "inter_threads must be from 1 to 1024"),
        (["--threads", "1025"], "1025 threads is more than 1024"),
        (["--seed", str(2**64)], "seed must be from 0 to 2**32-1"),
        (["--input-shape", "100000x100000"], "more than the limit of 2**31"),
        (["--graph-opt", "max"], "'max' is not one of"),
        (["--provider", "CUDAExecutionProvider"], "has no CUDAExecutionProvider; use one of: "),
        (["--input-shape", "1xq"], "invalid --input-shape '1xq'"),
        (["--bogus"], "No such option '--bogus'"),
    ],
)
def test_bad_options_are_one_line_without_output(conv_model, tmp_path, args, message):
    output = tmp_path / "out.csv"
    result = invoke(conv_model, *FAST, *args, "-o", output)
    assert_one_line_error(result, message)
    assert not output.exists() and not samples_path(output).exists()


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ("missing.onnx", "no such file or folder: missing.onnx"),
        ("some/dir/", "no such file or folder"),
        ("notes.txt", "notes.txt is not an .onnx file"),
        ("empty", "the folder empty has no .onnx files"),
    ],
)
def test_bad_models_are_one_line_without_output(tmp_path, model, message):
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    output = tmp_path / "out.csv"
    result = invoke(model, *FAST, "-o", output)
    assert_one_line_error(result, message)
    assert not output.exists()


def test_no_models_anywhere_is_one_line(tmp_path):
    assert_one_line_error(invoke(*FAST), "no MODEL given and there is no models/ folder")


def test_unknown_registry_name_is_one_line_from_the_real_registry(tmp_path):
    pytest.importorskip("torch")  # the registry imports torch
    assert_one_line_error(invoke("mobilone-s0", *FAST), "unknown model 'mobilone-s0': did you mean 'mobileone-s0'?")


def test_existing_output_needs_append(conv_model, tmp_path):
    output = tmp_path / "out.csv"
    output.write_text("model,threads\nx,1\n")
    assert_one_line_error(invoke(conv_model, *FAST, "-o", output), "already exists; pass --append")
    assert_one_line_error(invoke(conv_model, *FAST, "-o", output, "--append"), "has a different schema")
    assert output.read_text() == "model,threads\nx,1\n"


def assert_one_line_error(result, message):
    assert result.exit_code != 0
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ") and message in lines[0], lines[0]
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)


def test_failed_model_is_reported_skipped_and_exit_is_non_zero(conv_model, tmp_path):
    junk = broken(tmp_path / "junk.onnx")
    output = tmp_path / "out.csv"
    result = invoke(junk, conv_model, "--threads", "1,2", *FAST, "-o", output)
    assert result.exit_code == 1
    assert "failed: junk @ 1 thread: cannot load junk.onnx" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Error: 1 model(s) failed: junk"
    assert "Traceback" not in result.output
    assert [r["model"] for r in rows(output)] == ["conv", "conv"]


def test_unstable_and_oversubscribed_rows_are_called_out(conv_model, tmp_path, monkeypatch):
    flip = [4.0] * 20 + [15.0] * 10

    def fake_measure(path, threads, config, runtime="onnxruntime"):
        samples = flip if threads == 2 else [4.0, 4.01, 3.99] * 10
        return Measurement(samples_ns=[int(ms * 1e6) for ms in samples], session_ms=1.0, first_run_ms=2.0,
                           input_shape="1x3x16x16", provider=config.provider)

    monkeypatch.setattr(runner_module, "measure", fake_measure)
    monkeypatch.setattr(runner_module, "usable_cores", lambda: 1)
    output = tmp_path / "out.csv"
    result = invoke(conv_model, "--threads", "1,2", *FAST, "-o", output)
    assert result.exit_code == 0, result.output
    assert "2 threads is more than the 1 cores" in " ".join(result.stderr.split())
    stdout = " ".join(result.stdout.split())
    mean, std = np.mean(flip), np.std(flip, ddof=1)
    assert "4.00 ± 0.01" in stdout and f"{mean:.2f} ± {std:.2f} † !" in stdout
    assert "! unstable (1 of 2 rows); for steadier numbers: more --rounds" in stdout
    assert (f"conv at 2 threads: cv {std / mean:.1%} > 10%, the rounds split into a fast (4.00 ms) and a slow "
            "(15.00 ms) cluster") in stdout
    assert "† oversubscribed: more threads (2) than this machine has cores" in stdout
    assert "*" not in stdout
    saved = rows(output)
    assert [(r["unstable"], r["bimodal"], r["oversubscribed"]) for r in saved] == [
        ("False", "False", "False"), ("True", "True", "True")]
    assert (saved[0]["mode_fast_ms"], saved[0]["mode_slow_ms"]) == ("", "")
    assert (float(saved[1]["mode_fast_ms"]), float(saved[1]["mode_slow_ms"])) == (4.0, 15.0)
    assert float(saved[1]["std_ms"]) == pytest.approx(std)


def test_ctrl_c_stops_and_says_what_was_saved(conv_model, tmp_path, monkeypatch):
    calls = []

    def measure_then_ctrl_c(path, threads, config, runtime="onnxruntime"):
        calls.append(threads)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return Measurement(samples_ns=[4_000_000] * 3, session_ms=1.0, first_run_ms=2.0, input_shape="1x3x16x16",
                           provider=config.provider)

    monkeypatch.setattr(runner_module, "measure", measure_then_ctrl_c)
    output = tmp_path / "out.csv"
    result = invoke(conv_model, "--threads", "1,2", *FAST, "-o", output)
    assert result.exit_code == 130
    assert f"1 of 2 configurations saved to {output}" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "Interrupted."
    assert "Traceback" not in result.output and "Aborted" not in result.output
    assert [r["threads"] for r in rows(output)] == ["1"]
