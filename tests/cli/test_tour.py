"""The README's tour as a new user runs it, in an empty folder: bench into the default results/, then the
literal ``mbbench report results/*.csv`` (the shell's glob, which also picks up bench's own sidecar)."""

from __future__ import annotations

import glob
import os

from tests.bench.tiny_onnx import conv_relu, write_manifest
from tests.cli._helpers import invoke


def test_bench_then_report_results_glob(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    conv_relu(tmp_path / "models" / "small.onnx", size=8)
    conv_relu(tmp_path / "models" / "large.onnx", size=16)
    bench = invoke("bench", "--threads", "1-2", "--rounds", "3", "--warmup", "0", "--no-isolate")
    assert bench.exit_code == 0, bench.output
    paths = sorted(glob.glob("results/*.csv"))
    assert any(p.endswith(".samples.csv") for p in paths)  # the glob does take the sidecar in
    report = invoke("report", *paths, "--format", "markdown")
    assert report.exit_code == 0, report.output
    table = report.output
    # the two files take other input sizes, so each row says its own (issue 20)
    assert "| small (8px) |" in table and "| large (16px) |" in table
    assert "1 thread" in table and "2 threads" in table


def test_the_same_file_alone_and_in_company_is_compared_with_itself(tmp_path, monkeypatch):
    """Alone, a file is labelled by its manifest's model name; beside another export of that model, by its stem.
    --compare must still pair it with itself (by sha256) and not with the other file."""
    monkeypatch.chdir(tmp_path)
    alone, company = tmp_path / "alone", tmp_path / "company"
    alone.mkdir()
    company.mkdir()
    first = conv_relu(alone / "tiny-a.onnx", size=8)
    write_manifest(first, model="tiny")
    for name, size in (("tiny-a", 8), ("tiny-b", 12)):
        write_manifest(conv_relu(company / f"{name}.onnx", size=size), model="tiny")
    common = ["--threads", "1", "--rounds", "3", "--warmup", "0", "--no-isolate"]
    assert invoke("bench", "alone", *common, "-o", "one.csv").exit_code == 0
    assert invoke("bench", "company", *common, "-o", "two.csv").exit_code == 0
    compared = invoke("report", "two.csv", "--compare", "one.csv", "--format", "markdown")
    assert compared.exit_code == 0, compared.output
    lines = [line for line in compared.output.splitlines() if line.startswith("| tiny-")]
    paired = [line for line in lines if "only in" not in line and "tiny-a" in line]
    assert paired, compared.output  # tiny-a (two.csv) was matched with tiny (one.csv)
    assert any("tiny-b" in line and "only in" in line for line in lines), compared.output
    assert os.path.exists("one.samples.csv")
