import csv
import math
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

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
    # set the handler this test is about: a background job of a non-interactive shell inherits SIGINT ignored
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _ctrl_c_during_a_save(tmp_path, monkeypatch)
    finally:
        signal.signal(signal.SIGINT, previous)


def _ctrl_c_during_a_save(tmp_path, monkeypatch):
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
    with pytest.raises(OutputError, match="^cannot write results to .*r.csv: No space left on device; the rows saved so far are intact$"):
        files.save({"model": "m", "threads": 2}, [1.0])
    monkeypatch.undo()
    assert _rows(output) == [{"model": "m", "threads": "1"}]
    assert len(_rows(samples_path(output))) == 1


def test_an_ignored_ctrl_c_stays_ignored_and_the_save_completes(tmp_path, monkeypatch):
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        output = tmp_path / "r.csv"
        files = ResultFiles(output, ["model", "threads"])
        real_write = files.rows.write

        def write_then_ctrl_c(rows):
            size = real_write(rows)
            os.kill(os.getpid(), signal.SIGINT)
            return size

        monkeypatch.setattr(files.rows, "write", write_then_ctrl_c)
        files.save({"model": "m", "threads": 1}, [1.0, 2.0])  # no KeyboardInterrupt: the user asked for none
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        assert _rows(output) == [{"model": "m", "threads": "1"}]
    finally:
        signal.signal(signal.SIGINT, previous)


class _WriteRecorder:
    """The results module's ``os`` with ``write`` recorded per file (the real write still happens)."""

    def __init__(self):
        self.writes = []

    def __getattr__(self, name):
        return getattr(os, name)

    def write(self, fd, data):
        self.writes.append((Path(os.readlink(f"/proc/self/fd/{fd}")).name, bytes(data)))
        return os.write(fd, data)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names descriptors through /proc")
def test_one_write_per_row_and_the_samples_before_their_row(tmp_path, monkeypatch):
    from mbbench.bench import results

    recorder = _WriteRecorder()
    monkeypatch.setattr(results, "os", recorder)
    output = tmp_path / "r.csv"
    columns = ["model", "threads", "file", "sha256", "host", "timestamp", "mean_ms"]
    files = ResultFiles(output, columns)
    for threads in (1, 2, 3):
        row = {"model": "m", "threads": threads, "file": "m.onnx", "sha256": "ab", "host": "h",
               "timestamp": f"t{threads}", "mean_ms": 1.5}
        files.save(row, [1.0, 2.0, 3.0])
    assert [name for name, _ in recorder.writes] == ["r.samples.csv", "r.csv"] * 3
    for index, (name, data) in enumerate(recorder.writes):
        lines = data.decode().splitlines()
        header = 1 if index < 2 else 0  # the header goes out with the first block, in the same write
        assert len(lines) == header + (3 if name == "r.samples.csv" else 1)
    assert output.read_bytes() == b"".join(d for n, d in recorder.writes if n == "r.csv")


def test_append_onto_a_file_without_its_final_newline_starts_a_new_line(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes(b"a,b\n1,2")  # edited by hand: the last line lacks its newline
    CsvAppender.open(path, ["a", "b"], append=True).write([{"a": 3, "b": 4}])
    assert path.read_bytes() == b"a,b\n1,2\n3,4\n"
    assert _rows(path) == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]


@pytest.mark.parametrize("content", [b"a,b\n\xff\xfe,1\n", b"\x00\x01\x02\xff"])
def test_append_onto_a_file_that_is_not_utf8_is_refused(tmp_path, content):
    path = tmp_path / "r.csv"
    path.write_bytes(content)
    with pytest.raises(OutputError, match="is not UTF-8 text"):
        CsvAppender.open(path, ["a", "b"], append=True)
    assert path.read_bytes() == content


def test_an_older_csv_without_the_later_columns_takes_appends(tmp_path):
    from mbbench.bench.schema import LATER_COLUMNS

    path = tmp_path / "old.csv"
    old = [c for c in RESULT_COLUMNS if c not in LATER_COLUMNS]
    path.write_text(",".join(old) + "\n")
    out = CsvAppender.open(path, RESULT_COLUMNS, append=True)
    assert out.columns == old


_CONCURRENT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from mbbench.bench.results import CsvAppender
    path, go, me = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    out = CsvAppender.open(path, ["writer", "n"], append=True)  # every writer sees no file yet
    Path(sys.argv[2] + "." + me).touch()
    while not go.exists():
        time.sleep(0.001)
    for n in range(20):
        out.write([{"writer": me, "n": n}])
""")


def test_concurrent_appends_onto_a_new_file_write_one_header(tmp_path):
    path, go = tmp_path / "new.csv", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", _CONCURRENT, str(path), str(go), str(i)], env=env)
             for i in range(4)]
    try:
        ready = [Path(f"{go}.{i}") for i in range(4)]
        while not all(p.exists() for p in ready):
            assert all(p.poll() is None for p in procs), "a writer died before the start"
        assert not path.exists()
        go.touch()  # all four start appending to the file none of them has created
        assert [p.wait(timeout=60) for p in procs] == [0, 0, 0, 0]
    finally:
        for p in procs:
            p.kill()
    lines = path.read_text().splitlines()
    assert lines[0] == "writer,n" and lines.count("writer,n") == 1
    assert sorted(lines[1:]) == sorted(f"{w},{n}" for w in range(4) for n in range(20))


# -- added for the mutation run (scripts/mutation.py): each case below pins a promise of the module docstring or
# of a method's that the tests above did not reach ----------------------------------------------------------------


class _FakeOs:
    """The results module's ``os`` with some calls replaced (the rest are the real ones)."""

    def __init__(self, **replaced):
        self.replaced = replaced

    def __getattr__(self, name):
        return self.replaced.get(name) or getattr(os, name)


def test_what_is_not_a_regular_file_is_refused_with_a_reason(tmp_path):
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.csv"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere.csv")
    with pytest.raises(OutputError, match="fifo.csv is not a regular file; give a .csv file name$"):
        CsvAppender.open(fifo, ["a"], append=True)
    with pytest.raises(OutputError, match="fifo.csv is not a regular file; give a .csv file name$"):
        CsvAppender(fifo, ["a"]).check_writable()
    with pytest.raises(OutputError, match="dangling.csv is a dangling link; give a .csv file name$"):
        CsvAppender.open(dangling, ["a"], append=True)
    for path in (tmp_path, loop):  # a folder; a link to itself (stat fails with ELOOP, not "missing")
        with pytest.raises(OutputError, match="is not a regular file; give a .csv file name$"):
            read_header(path)


def test_a_schema_error_names_up_to_four_missing_columns(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a\n1\n")
    with pytest.raises(OutputError, match=r"no b, c, d, e column\); write to a new --output$"):
        CsvAppender.open(path, ["a", "b", "c", "d", "e", "f"], append=True)


def test_a_new_file_is_created_rw_r__r__(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    path = tmp_path / "r.csv"
    CsvAppender.open(path, ["a"], append=False).write([{"a": 1}])
    assert stat.S_IMODE(path.stat().st_mode) == 0o644 & ~umask


def test_an_existing_writable_file_passes_the_check(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("a\n1\n")
    CsvAppender(path, ["a"]).check_writable()
    assert path.read_text() == "a\n1\n"


def test_a_file_that_cannot_be_written_is_refused_before_measuring(tmp_path, monkeypatch):
    from mbbench.bench import results

    path = tmp_path / "r.csv"
    path.write_text("a\n1\n")

    def read_only(target, flags, *args):  # what a read-only file gives a non-root user
        if os.fspath(target) == os.fspath(path) and flags & (os.O_WRONLY | os.O_RDWR):
            raise PermissionError(13, "Permission denied")
        return os.open(target, flags, *args)

    monkeypatch.setattr(results, "os", _FakeOs(open=read_only))
    with pytest.raises(OutputError, match="^cannot write to .*r.csv: Permission denied; choose another --output$"):
        CsvAppender(path, ["a"]).check_writable()


def test_a_folder_that_cannot_be_written_is_refused_before_measuring(tmp_path):
    # the probe is made in the output's own folder, not anywhere writable
    with pytest.raises(OutputError, match="^cannot write in .*missing: No such file or directory; choose another"):
        CsvAppender(tmp_path / "missing" / "r.csv", ["a"]).check_writable()
    assert not (tmp_path / "missing").exists()


def test_prepare_folder_creates_nested_folders_and_accepts_existing_ones(tmp_path):
    files = ResultFiles(tmp_path / "a" / "b" / "r.csv", ["model", "threads"])
    files.prepare_folder()
    assert (tmp_path / "a" / "b").is_dir()
    files.prepare_folder()  # again: the folder is there now
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputError, match="^cannot create the folder for .*r.csv: .*; choose another --output$"):
        ResultFiles(tmp_path / "file" / "sub" / "r.csv", ["model"]).prepare_folder()


def test_result_files_append_onto_their_own_files(tmp_path):
    output = tmp_path / "r.csv"
    ResultFiles(output, ["model", "threads"]).save({"model": "m", "threads": 1}, [1.0])
    with pytest.raises(OutputError, match="pass --append"):
        ResultFiles(output, ["model", "threads"])
    ResultFiles(output, ["model", "threads"], append=True).save({"model": "m", "threads": 2}, [2.0, 3.0])
    assert [r["threads"] for r in _rows(output)] == ["1", "2"]
    assert [r["ms"] for r in _rows(samples_path(output))] == ["1.0", "2.0", "3.0"]


def test_a_failed_first_row_leaves_no_sidecar(tmp_path, monkeypatch):
    output = tmp_path / "r.csv"
    files = ResultFiles(output, ["model", "threads"])

    def interrupted(rows):
        raise KeyboardInterrupt

    monkeypatch.setattr(files.rows, "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        files.save({"model": "m", "threads": 1}, [1.0, 2.0])
    assert not samples_path(output).exists() and not output.exists()


def test_truncate_to_nothing_removes_the_file_once_and_then_is_a_no_op(tmp_path):
    path = tmp_path / "r.csv"
    out = CsvAppender.open(path, ["a"], append=False)
    out.write([{"a": 1}])
    out.truncate(0)
    assert not path.exists()
    out.truncate(0)


def test_a_failed_write_onto_an_existing_empty_file_keeps_the_file(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    path.touch()  # the user's own empty file: ours to append to, not to remove
    out = CsvAppender.open(path, ["a"], append=True)

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        out.write([{"a": 1}])
    assert path.exists() and path.read_bytes() == b""


def test_the_disk_error_surfaces_even_if_the_new_file_is_gone(tmp_path, monkeypatch):
    path = tmp_path / "r.csv"
    out = CsvAppender.open(path, ["a"], append=False)

    def removed_then_full(fd, data):
        path.unlink()  # someone cleaned up meanwhile
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", removed_then_full)
    with pytest.raises(OSError) as info:
        out.write([{"a": 1}])
    assert info.value.errno == 28


def test_a_short_write_is_completed(tmp_path, monkeypatch):
    from mbbench.bench import results

    def five_bytes_at_a_time(fd, data):
        return os.write(fd, bytes(data[:5]))

    monkeypatch.setattr(results, "os", _FakeOs(write=five_bytes_at_a_time))
    path = tmp_path / "r.csv"
    CsvAppender.open(path, ["a", "b"], append=False).write([{"a": "x" * 20, "b": 2}])
    assert path.read_text() == "a,b\n" + "x" * 20 + ",2\n"


def test_a_file_removed_between_the_two_opens_is_created_afresh(tmp_path, monkeypatch):
    from mbbench.bench import results

    path = tmp_path / "r.csv"
    path.write_text("a\n1\n")
    out = CsvAppender.open(path, ["a"], append=True)
    removed = []

    def open_after_a_removal(target, flags, *args):
        if not flags & os.O_CREAT and not removed:  # the plain open of the existing file: it is gone just now
            removed.append(True)
            path.unlink()
        return os.open(target, flags, *args)

    monkeypatch.setattr(results, "os", _FakeOs(open=open_after_a_removal))
    out.write([{"a": 2}])
    assert removed and path.read_text() == "a\n2\n"


class _FakeFcntl:
    """``fcntl`` whose first ``flock`` runs ``before`` (another process acting between the open and the lock)."""

    def __init__(self, before):
        import fcntl

        self.real, self.before, self.calls = fcntl, before, 0

    def __getattr__(self, name):
        return getattr(self.real, name)

    def flock(self, fd, operation):
        self.calls += 1
        if self.calls == 1:
            self.before()
        return self.real.flock(fd, operation)


@pytest.mark.skipif(sys.platform == "win32", reason="no flock")
@pytest.mark.parametrize("meanwhile", ["removed", "replaced"])
def test_a_file_removed_or_replaced_before_the_lock_is_not_written_to(tmp_path, monkeypatch, meanwhile):
    from mbbench.bench import results

    path = tmp_path / "r.csv"
    path.write_text("a\n1\n")
    out = CsvAppender.open(path, ["a"], append=True)

    def act():
        if meanwhile == "removed":
            path.unlink()
        else:
            (tmp_path / "other.csv").write_text("a\n7\n")
            os.replace(tmp_path / "other.csv", path)

    monkeypatch.setattr(results, "fcntl", _FakeFcntl(act))
    out.write([{"a": 2}])
    assert path.read_text() == ("a\n2\n" if meanwhile == "removed" else "a\n7\n2\n")


@pytest.mark.skipif(sys.platform == "win32", reason="no flock")
def test_an_append_waits_for_another_writer_s_lock(tmp_path):
    import fcntl
    import threading

    path = tmp_path / "r.csv"
    path.write_text("a\n1\n")
    out = CsvAppender.open(path, ["a"], append=True)
    with open(path, "rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX)  # another run is in the middle of its append
        writer = threading.Thread(target=out.write, args=([{"a": 2}],))
        writer.start()
        writer.join(0.5)
        assert writer.is_alive() and path.read_text() == "a\n1\n"
        fcntl.flock(other, fcntl.LOCK_UN)
    writer.join(10)
    assert not writer.is_alive() and path.read_text() == "a\n1\n2\n"


def test_an_error_without_an_errno_text_is_shown_as_itself(tmp_path, monkeypatch):
    files = ResultFiles(tmp_path / "r.csv", ["model", "threads"])

    def broken(fd, data):
        raise OSError("the disk went away")

    monkeypatch.setattr(os, "write", broken)
    with pytest.raises(OutputError, match="^cannot write results to .*r.csv: the disk went away; the rows saved"):
        files.save({"model": "m", "threads": 1}, [1.0])
