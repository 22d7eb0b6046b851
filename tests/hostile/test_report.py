"""`mbbench report` on hostile input: destinations that are not plain files, outputs that are inputs, stale
temporary files, non-finite or negative numbers, names holding markup, formula cells, a bad --alpha."""

from __future__ import annotations

import json
import time
import math
import os
import subprocess
import sys

import pytest

from tests.report.builders import result_row, study_rows, write_csv

from .conftest import assert_refused, invoke


@pytest.fixture
def study(tmp_path):
    return write_csv(tmp_path / "study.csv", study_rows())


# --- destinations -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--output", "--plot"])
def test_fifo_destination_is_refused_before_any_work(tmp_path, study, snapshot, option):
    target = tmp_path / "out.png"
    os.mkfifo(target)
    snap = snapshot(tmp_path)
    assert_refused(invoke("report", study, option, target), "not a regular file", 1)
    snap.assert_unchanged()


def test_directory_destination_is_refused(tmp_path, study, snapshot):
    (tmp_path / "out.md").mkdir()
    snap = snapshot(tmp_path)
    assert_refused(invoke("report", study, "--output", tmp_path / "out.md"), "is a directory")
    snap.assert_unchanged()


def test_device_destination_is_refused(tmp_path, study):
    # /dev/null is a character device everywhere; as root, writing "to" it used to replace the device node.
    before = os.stat("/dev/null")
    assert_refused(invoke("report", study, "--output", "/dev/null"), "not a regular file", 1)
    after = os.stat("/dev/null")
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_symlink_destination_is_refused_not_written_through(tmp_path, study, snapshot):
    # issue 20: writing through would change a file the command was not given; name the file itself
    real = tmp_path / "real.md"
    real.write_text("old")
    link = tmp_path / "link.md"
    link.symlink_to(real.name)
    snap = snapshot(tmp_path)
    assert_refused(invoke("report", study, "--format", "markdown", "--output", link),
                   "it is a symbolic link (to real.md); name the file itself", 1)
    snap.assert_unchanged()


def test_dangling_symlink_is_refused(tmp_path, study, snapshot):
    (tmp_path / "link.md").symlink_to("missing.md")
    snap = snapshot(tmp_path)
    assert_refused(invoke("report", study, "--output", tmp_path / "link.md"), "symbolic link (to missing.md)")
    snap.assert_unchanged()


@pytest.mark.parametrize("spelling", ["other path", "hard link", "symlink", "sidecar"])
def test_output_onto_an_input_is_refused(tmp_path, study, snapshot, spelling):
    samples = {("mobileone-s0", 1): [10.0, 10.5, 9.5]}
    write_csv(study, study_rows(), samples)
    sidecar = tmp_path / "study.samples.csv"
    (tmp_path / "sub").mkdir()
    if spelling == "other path":
        target = tmp_path / "sub" / ".." / "study.csv"
    elif spelling == "hard link":
        target = tmp_path / "sub" / "hard.csv"
        os.link(study, target)
    elif spelling == "symlink":
        target = tmp_path / "sub" / "soft.csv"
        target.symlink_to(study)
    else:
        target = sidecar
    snap = snapshot(tmp_path)
    message = "symbolic link" if spelling == "symlink" else "is the input"
    assert_refused(invoke("report", study, "--format", "csv", "--output", target), message, 1)
    snap.assert_unchanged()


def test_plots_dir_file_linked_to_an_input_is_refused(tmp_path, study, snapshot):
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "latency_vs_threads.png").symlink_to(study)
    snap = snapshot(tmp_path)
    assert_refused(invoke("report", study, "--plots-dir", plots), "symbolic link")
    snap.assert_unchanged()


# --- temporary files ---------------------------------------------------------------------------------------


def test_a_full_disk_names_the_file_it_could_not_write_and_leaves_nothing(full_disk, study, snapshot):
    untouched = snapshot(full_disk)
    line = assert_refused(invoke("report", study, "-o", full_disk / "report.md"), status=1)
    assert line == (f"Error: cannot write {full_disk / 'report.md'}: No space left on device; "
                    "free some space or write elsewhere")
    untouched.assert_unchanged()  # no half-written report, no temporary file


def test_stale_temporary_of_a_killed_report_is_cleaned(tmp_path, study):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".out.md.{int(dead.stdout)}.x1y2z3.mbbench.tmp"
    stale.write_text("half a report")
    foreign = tmp_path / ".out.md.abc123.tmp"  # not ours: left alone
    foreign.write_text("x")
    result = invoke("report", study, "--format", "markdown", "--output", tmp_path / "out.md")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.md.abc123.tmp", "out.md", "study.csv"]


def test_report_killed_while_writing_leaves_its_old_output(tmp_path, study):
    out = tmp_path / "out.md"
    out.write_text("old")
    # A writer that never finishes, killed with SIGKILL: the old file is intact, and the next run cleans up.
    code = (
        "import os, signal, sys; from mbbench.report import _io;"
        f"_io.write_with({str(out)!r}, lambda h: (h.write(b'partial'), h.flush(), os.kill(os.getpid(), 9)))"
    )
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert out.read_text() == "old"
    assert invoke("report", study, "--format", "markdown", "--output", out).exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.md", "study.csv"]


# --- numbers -----------------------------------------------------------------------------------------------


def test_nan_latencies_do_not_crash_any_format(tmp_path):
    rows = [result_row("m", 1, 10.0, 1.0), result_row("m", 2, 6.0, 0.5), result_row("n", 1, 5.0, 0.1)]
    for row in rows[1:]:
        row.update(mean_ms="", std_ms="", p50_ms="")
    csv = write_csv(tmp_path / "nan.csv", rows)
    for fmt in ("table", "markdown", "csv", "json", "html"):
        result = invoke("report", csv, "--format", fmt)
        assert result.exit_code == 0, (fmt, result.output)
    markdown = invoke("report", csv, "--format", "markdown").output
    assert "| n | - | - |" in markdown  # n has no latency at all: no best thread count, no speed-up


@pytest.mark.parametrize(
    "column, value, message",
    [("mean_ms", "inf", "must be a latency in ms from 0 to 1e+09"), ("max_ms", "1e400", "from 0 to 1e+09"),
     ("mean_ms", "1e308", "from 0 to 1e+09"),  # issue 20: --plot once failed with a ValueError
     ("min_ms", "-3", "from 0 to"), ("threads", "99999999999999999999999", "whole number from 0"),
     ("threads", "-1", "whole number from 0")],
)  # fmt: skip
def test_non_finite_negative_or_huge_numbers_are_refused(tmp_path, snapshot, column, value, message):
    csv = write_csv(tmp_path / "bad.csv", [result_row("m", 1, 10.0, 1.0), result_row("m", 2, 6.0, 0.5)])
    text = csv.read_text().splitlines()
    header = text[0].split(",")
    cells = text[2].split(",")
    cells[header.index(column)] = value
    csv.write_text("\n".join([*text[:2], ",".join(cells)]) + "\n")
    snap = snapshot(tmp_path)
    for extra in ([], ["--format", "json"], ["--plot", tmp_path / "p.png"]):
        line = assert_refused(invoke("report", csv, *extra), message, 1)
        assert "line 3" in line and f"column {column}" in line
    snap.assert_unchanged()


def test_the_largest_accepted_latency_gives_valid_json_and_a_plot(tmp_path):
    csv = write_csv(tmp_path / "big.csv", [result_row("m", 1, 5e8, 1e8, max_ms=1e9), result_row("m", 2, 1.0, 0.1)])
    result = invoke("report", csv, "--format", "json", "--plot", tmp_path / "p.png")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.split("\nWrote")[0])["results"][0]["max_ms"] == 1e9
    assert (tmp_path / "p.png").stat().st_size > 0


@pytest.mark.parametrize("column", ["model", "host"])
def test_a_name_longer_than_a_name_is_refused_early(tmp_path, snapshot, column):
    # issue 20: a 200,000-character model name made --plot run for over a minute
    row = result_row("m", 1, 10.0, 1.0)
    row[column] = "x" * 200_000
    csv = write_csv(tmp_path / "long.csv", [row])
    snap = snapshot(tmp_path)
    started = time.monotonic()
    assert_refused(invoke("report", csv, "--plot", tmp_path / "p.png"), f"column {column} holds a 200,000-character", 1)
    assert time.monotonic() - started < 30
    snap.assert_unchanged()


# --- names are text ----------------------------------------------------------------------------------------

HOSTILE = ["[/]", "[bold red]x", "$\\frac{$", "<script>alert(1)</script>", "a|b", "two\nlines"]


@pytest.mark.slow
@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_plain_text_in_every_renderer(tmp_path, name):
    rows = [result_row(name, 1, 10.0, 1.0, host=name, macs=1e9), result_row(name, 2, 6.0, 0.5, host=name, macs=1e9)]
    csv = write_csv(tmp_path / "names.csv", rows)
    table = invoke("report", csv)
    assert table.exit_code == 0, table.output
    assert name.split("\n")[0] in table.output
    markdown = invoke("report", csv, "--format", "markdown", "--metric", "mean").output
    assert "<script>" not in markdown
    body = [line for line in markdown.splitlines() if line.startswith("| ") and "10.00 ± 1.00" in line]
    assert len(body) == 1 and body[0].count(" | ") == 2  # model, 1 thread, 2 threads: no cell split or row cut
    html = invoke("report", csv, "--format", "html").output
    assert "<script>" not in html
    plot = invoke("report", csv, "--plot", tmp_path / "p.png", "--format", "csv")
    assert plot.exit_code == 0, plot.output
    assert (tmp_path / "p.png").stat().st_size > 1000


def test_csv_output_defuses_formula_cells_but_not_numbers(tmp_path):
    rows = [result_row("=cmd|' /C calc'!A0", 1, 10.0, 1.0), result_row("@SUM(A1)", 1, 5.0, 0.5),
            result_row("-neg", 1, 4.0, 0.5)]  # fmt: skip
    csv = write_csv(tmp_path / "formula.csv", rows)
    for layout in ("wide", "long"):
        text = invoke("report", csv, "--format", "csv", "--layout", layout).output
        assert "'=cmd|' /C calc'!A0" in text and "'@SUM(A1)" in text and "'-neg" in text
        assert "\n=" not in text and ",=" not in text and ",@" not in text
    long = invoke("report", csv, "--format", "csv", "--layout", "long").output
    assert ",-" not in long.replace(",-neg", "")  # no number was prefixed (none is negative here either)
    assert ",10.0," in long


# --- options -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", ["nan", "0", "1", "1.5", "-0.1", "inf"])
def test_alpha_outside_zero_one_is_refused(tmp_path, study, alpha):
    assert_refused(invoke("report", study, "--alpha", alpha), "significance level", 2)


def test_sidecar_among_the_inputs_is_skipped_with_a_note(tmp_path):
    samples = {("mobileone-s0", 1): [10.0, 10.5, 9.5]}
    csv = write_csv(tmp_path / "run.csv", study_rows(), samples)
    result = invoke("report", csv, tmp_path / "run.samples.csv", "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert "Skipped" in result.output and "run.samples.csv" in result.output
    alone = invoke("report", tmp_path / "run.samples.csv")
    assert_refused(alone, "holds raw samples", 1)


def test_unknown_std_is_never_shown_as_nan(tmp_path):
    # A 1-round row has no std: the cell shows the mean alone, never "nan".
    csv = write_csv(tmp_path / "one.csv", [result_row("m", 1, 10.0, math.nan, rounds=1)])
    text = invoke("report", csv, "--format", "markdown", "--metric", "mean").output
    assert "| m | 10.00 |" in text
    assert not [line for line in text.splitlines() if line.startswith("|") and "nan" in line.lower()]
