"""`mbbench report` through click's CliRunner: every format, the plots, and each bad input."""

import json

import pytest
from click.testing import CliRunner

from mbbench.report.load import REQUIRED_COLUMNS

from .builders import result_row, rows_from_samples, shifted_samples, write_csv
from .test_plots import assert_png


@pytest.fixture
def run(mbbench_cli):
    def invoke(*args):
        # written in mean latency (the default is p50); a test that gives --metric gets its own
        metric = [] if "--metric" in map(str, args) else ["--metric", "mean"]
        return CliRunner().invoke(mbbench_cli, ["report", *map(str, args), *metric])

    return invoke


def assert_one_line_error(result, *fragments):
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # click's exit, not an escaped exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]
    assert result.stdout == ""


def test_default_table(run, study_csv):
    result = run(study_csv)
    assert result.exit_code == 0, result.output
    assert "hostA (CPU-X)" in result.stdout
    assert "10.00 ± 1.00" in result.stdout and "5.00 ± 0.25 †" in result.stdout
    assert "Speed-up vs 1 thread" in result.stdout and "Does mean latency follow MACs or params?" in result.stdout


@pytest.mark.parametrize("fmt, marker", [("markdown", "| mobileone-s0 | 10.00 ± 1.00 |"),
                                         ("html", "<!DOCTYPE html>"),
                                         ("csv", "machine,model,run,mean_ms_t1,std_ms_t1")])  # fmt: skip
def test_formats(run, study_csv, fmt, marker):
    result = run(study_csv, "--format", fmt)
    assert result.exit_code == 0, result.output
    assert marker in result.stdout


def test_json_format(run, study_csv):
    result = run(study_csv, "--format", "json", "--metric", "p90")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["metric"] == "p90" and len(data["results"]) == 8


def test_long_layout(run, study_csv):
    result = run(study_csv, "--format", "markdown", "--layout", "long")
    assert "| model | rounds | num_threads | mean (ms) | std (ms) |" in result.stdout


def test_filters(run, study_csv):
    result = run(study_csv, "--format", "csv", "--layout", "long", "--model", "mobileone-*", "--threads", "2")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("\n") == 2 and ",mobileone-s0," in result.stdout


def test_output_file_is_written_atomically(run, study_csv, tmp_path):
    target = tmp_path / "report.md"
    result = run(study_csv, "--format", "markdown", "--output", target)
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"Wrote {target}" in result.stderr
    assert target.read_text(encoding="utf-8").startswith("# mbbench report: mean latency\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "study.csv"]


def test_table_to_output_file_is_plain_text(run, study_csv, tmp_path):
    target = tmp_path / "report.txt"
    assert run(study_csv, "--output", target).exit_code == 0
    text = target.read_text(encoding="utf-8")
    assert "mobilevit-xxs" in text and "\x1b[" not in text


def test_plot_and_plots_dir(run, study_csv, tmp_path):
    result = run(study_csv, "--plot", tmp_path / "overview.png", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert_png(tmp_path / "overview.png")
    result = run(study_csv, "--plots-dir", tmp_path / "plots", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == [
        "latency_vs_macs.png", "latency_vs_threads.png", "speedup_vs_threads.png"
    ]  # fmt: skip


def test_compare(run, tmp_path):
    base_samples, new_samples = shifted_samples(seed=4), shifted_samples(seed=5, shift=1.0)
    base = write_csv(tmp_path / "base.csv", rows_from_samples(base_samples), base_samples)
    new = write_csv(tmp_path / "new.csv", rows_from_samples(new_samples), new_samples)
    result = run(new, "--compare", base, "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert f"## Comparison with {base}" in result.stdout and "x slower |" in result.stdout
    assert "Comparison with" in run(new, "--compare", base).stdout  # the terminal table too
    data = json.loads(run(new, "--compare", base, "--format", "json").stdout)
    assert [row["verdict"] for row in data["comparison"]] == ["slower", "slower"]


def test_combine(run, tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 10.0, 2.0, rounds=4)])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 12.0, 3.0, rounds=6)])
    separate = run(a, b, "--format", "markdown").stdout
    assert "| m | a | 10.00 ± 2.00 |" in separate
    pooled = run(a, b, "--format", "markdown", "--combine").stdout
    assert "| m | 11.20 ± 2.72 |" in pooled


# --- bad input: one line, non-zero exit, no traceback ------------------------------------------------------


def test_missing_file(run, tmp_path):
    assert_one_line_error(run(tmp_path / "nope.csv"), "nope.csv does not exist")


def test_empty_file(run, tmp_path):
    (tmp_path / "empty.csv").write_text("")
    assert_one_line_error(run(tmp_path / "empty.csv"), "is empty")


def test_header_only_file(run, tmp_path):
    (tmp_path / "header.csv").write_text(",".join(REQUIRED_COLUMNS) + "\n")
    assert_one_line_error(run(tmp_path / "header.csv"), "no result rows")


def test_not_mbbench_schema(run, tmp_path):
    (tmp_path / "other.csv").write_text("name,score\nresnet,0.76\n")
    assert_one_line_error(run(tmp_path / "other.csv"), "not an mbbench bench CSV", "missing columns: model, threads")


def test_nothing_left_after_filtering(run, study_csv):
    assert_one_line_error(run(study_csv, "--model", "resnet*"), "No rows left after filtering (model resnet*)")


def test_missing_base(run, study_csv, tmp_path):
    assert_one_line_error(run(study_csv, "--compare", tmp_path / "base.csv"), "base.csv does not exist")


def test_compare_without_overlap(run, study_csv, tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("other", 1, 1.0, 0.1)])
    assert_one_line_error(run(study_csv, "--compare", base), "No (model, threads) pair")


def test_output_into_missing_directory(run, study_csv, tmp_path):
    assert_one_line_error(run(study_csv, "--output", tmp_path / "no" / "r.md"), "does not exist; create it first")


def test_plot_must_be_png(run, study_csv, tmp_path):
    assert_one_line_error(run(study_csv, "--plot", tmp_path / "plot.svg"), "does not end in .png")


def test_plots_dir_is_a_file(run, study_csv):
    result = run(study_csv, "--plots-dir", study_csv)  # click's own usage error
    assert result.exit_code == 2 and "is a file" in result.stderr and "Traceback" not in result.output


def test_plot_and_plots_dir_together_is_a_usage_error(run, study_csv, tmp_path):
    result = run(study_csv, "--plot", tmp_path / "a.png", "--plots-dir", tmp_path / "d")
    assert result.exit_code == 2 and "--plot and --plots-dir" in result.stderr
    assert "Traceback" not in result.output
