import csv
import math
import os

import numpy as np
import pytest

from mbbench.bench.results import CsvAppender, OutputError, ResultFiles, format_cell, read_header
from mbbench.bench.schema import RESULT_COLUMNS, SAMPLE_COLUMNS, STAT_COLUMNS, samples_path


def test_schema_starts_with_the_issue_columns_and_has_no_duplicates():
    assert STAT_COLUMNS == ("model", "threads", "rounds", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms",
                            "p99_ms", "max_ms")
    assert RESULT_COLUMNS[:10] == STAT_COLUMNS
    assert len(set(RESULT_COLUMNS)) == len(RESULT_COLUMNS)
    required = ("file sha256 opset input_shape warmup graph_opt spinning inter_threads provider session_ms "
                "first_run_ms cpu_model physical_cores logical_cores os python onnxruntime_version "
                "mbbench_version timestamp host oversubscribed family params macs reparameterized fold "
                "exporter").split()
    assert set(required) <= set(RESULT_COLUMNS)
    assert SAMPLE_COLUMNS == ("model", "threads", "file", "sha256", "host", "timestamp", "round", "ms")
    assert samples_path("results/a.b.csv").as_posix() == "results/a.b.samples.csv"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, ""),
        (True, "True"),
        (np.bool_(False), "False"),
        (4.1234567, "4.123457"),
        (np.float64(0.0185980001), "0.018598"),
        (float("nan"), ""),
        (math.inf, ""),
        (np.int64(7), "7"),
        (3, "3"),
        ("a,b", "a,b"),
    ],
)
def test_format_cell(value, text):
    assert format_cell(value) == text


def _rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_appender_writes_header_once_and_quotes(tmp_path):
    path = tmp_path / "r.csv"
    out = CsvAppender.open(path, ["a", "b"], append=False)
    assert not path.exists()  # nothing is created before the first row
    assert out.write([{"a": 1, "b": "x,y"}]) == 0
    size = path.stat().st_size
    assert out.write([{"a": 2}]) == size
    assert path.read_text() == 'a,b\n1,"x,y"\n2,\n'


def test_existing_file_is_refused_without_append(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(OutputError, match="pass --append"):
        CsvAppender.open(path, ["a", "b"], append=False)
    with pytest.raises(OutputError, match="is a folder"):
        CsvAppender.open(tmp_path, ["a"], append=True)


def test_append_keeps_the_file_column_order_and_refuses_another_schema(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("b,extra,a\n1,e,2\n")
    out = CsvAppender.open(path, ["a", "b"], append=True)
    out.write([{"a": 3, "b": 4}])
    assert _rows(path)[-1] == {"b": "4", "extra": "", "a": "3"}
    with pytest.raises(OutputError, match="no c column"):
        CsvAppender.open(path, ["a", "c"], append=True)


def test_append_to_an_empty_file_writes_the_header(tmp_path):
    path = tmp_path / "r.csv"
    path.touch()
    assert read_header(path) is None
    CsvAppender.open(path, ["a"], append=True).write([{"a": 1}])
    assert path.read_text() == "a\n1\n"


def test_failed_write_leaves_the_file_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    out = CsvAppender.open(path, ["a"], append=False)
    out.write([{"a": 1}])
    before = path.read_bytes()
    real_write = os.write

    def half_then_fail(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", half_then_fail)
    with pytest.raises(OSError):
        out.write([{"a": 123456789}])
    assert path.read_bytes() == before


def test_result_files_write_samples_then_row(tmp_path):
    output = tmp_path / "sub" / "r.csv"
    files = ResultFiles(output, ["model", "threads", "file", "sha256", "host", "timestamp", "mean_ms"])
    files.prepare_folder()
    assert not output.exists() and not samples_path(output).exists()
    row = {"model": "m", "threads": 2, "file": "m.onnx", "sha256": "ab", "host": "h", "timestamp": "t",
           "mean_ms": 1.5}
    files.save(row, np.array([1.0, 2.0]))
    assert _rows(output) == [{**{k: str(v) for k, v in row.items()}}]
    assert _rows(samples_path(output)) == [
        {"model": "m", "threads": "2", "file": "m.onnx", "sha256": "ab", "host": "h", "timestamp": "t",
         "round": "1", "ms": "1.0"},
        {"model": "m", "threads": "2", "file": "m.onnx", "sha256": "ab", "host": "h", "timestamp": "t",
         "round": "2", "ms": "2.0"},
    ]


def test_interrupted_row_write_removes_its_samples(tmp_path, monkeypatch):
    output = tmp_path / "r.csv"
    files = ResultFiles(output, ["model", "threads"])
    row = {"model": "m", "threads": 1}
    files.save(row, [1.0])
    sidecar = samples_path(output).read_bytes()

    def interrupted(rows):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.rows, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.save(row, [2.0, 3.0])
    assert samples_path(output).read_bytes() == sidecar


def test_stray_sidecar_is_refused(tmp_path):
    samples_path(tmp_path / "r.csv").write_text("model\n")
    with pytest.raises(OutputError, match="samples do not mix"):
        ResultFiles(tmp_path / "r.csv", ["model"])


def test_failed_first_write_leaves_no_file(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    out = CsvAppender.open(path, ["a"], append=False)

    def fail(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", fail)
    with pytest.raises(OSError):
        out.write([{"a": 1}])
    assert not path.exists()


def test_ctrl_c_during_a_save_is_delivered_after_both_writes(tmp_path, monkeypatch):
    import signal

    output = tmp_path / "r.csv"
    files = ResultFiles(output, ["model", "threads"])
    real_write = files.rows.write

    def write_then_ctrl_c(rows):
        size = real_write(rows)
        os.kill(os.getpid(), signal.SIGINT)  # lands after the row's bytes, e.g. during fsync
        return size

    monkeypatch.setattr(files.rows, "write", write_then_ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        files.save({"model": "m", "threads": 1}, [1.0, 2.0])
    assert _rows(output) == [{"model": "m", "threads": "1"}]
    assert len(_rows(samples_path(output))) == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_write_error_becomes_a_one_line_output_error(tmp_path, monkeypatch):
    output = tmp_path / "r.csv"
    files = ResultFiles(output, ["model", "threads"])
    files.save({"model": "m", "threads": 1}, [1.0])

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OutputError, match="No space left on device; the rows saved so far are intact"):
        files.save({"model": "m", "threads": 2}, [1.0])
    monkeypatch.undo()
    assert _rows(output) == [{"model": "m", "threads": "1"}]
    assert len(_rows(samples_path(output))) == 1
