"""``mbbench profile`` through the command line: the folder it writes, the formats, --compare, refused input."""

from __future__ import annotations

import csv
import io
import json

import pytest

from tests.bench.named_onnx import named_graph
from tests.bench.tiny_onnx import conv_relu
from tests.hostile.conftest import Snapshot, assert_refused, invoke, run_cli

FAST = ["--rounds", "2", "--warmup", "0", "--no-reference"]


@pytest.fixture
def here(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a default results/ folder lands here, never in the repository
    return tmp_path


@pytest.fixture
def named(here):
    return named_graph(here / "named.onnx")


def test_profile_writes_the_csv_the_summary_the_plot_and_the_trace(here, named):
    result = invoke("profile", named, conv_relu(here / "plain.onnx", size=8), *FAST, "--output-dir", here / "out")
    assert result.exit_code == 0, result.output
    out = here / "out"
    assert sorted(p.name for p in out.iterdir()) == [
        "profile.csv", "profile.md", "profile.png", "trace-named-1t.json", "trace-plain-1t.json"]
    rows = list(csv.DictReader((out / "profile.csv").open()))
    assert {r["model"] for r in rows} == {"named", "plain"}
    assert {"layer_1/conv", "layer_3.1/global_rep", "(between ops)"} <= {r["block"] for r in rows}
    for model in ("named", "plain"):
        assert sum(float(r["share"]) for r in rows if r["model"] == model) == pytest.approx(1.0, abs=1e-9)
    summary = (out / "profile.md").read_text()
    assert "### By block (module path, depth 2)" in summary and "### By op type" in summary
    assert "| layer_3.1/global_rep |" in summary
    assert json.loads((out / "trace-named-1t.json").read_text())  # ORT's own trace, as it wrote it
    assert "By block" in result.output and "named, 1 thread" in result.output  # the terminal table


@pytest.mark.parametrize("fmt", ["csv", "json", "markdown"])
def test_formats_on_standard_output(here, named, fmt):
    result = invoke("profile", named, *FAST, "--format", fmt, "--by", "op", "--output-dir", here / fmt)
    assert result.exit_code == 0, result.output
    text = result.stdout
    if fmt == "csv":
        assert list(csv.DictReader(io.StringIO(text)))[0]["model"] == "named"
    elif fmt == "json":
        (data,) = json.loads(text)
        assert data["model"] == "named" and sum(g["share"] for g in data["by_op"]) <= 1
    else:
        assert "### By op type (the kernel ORT ran)" in text and "### By block" not in text


def test_compare_diffs_with_an_earlier_profile_op_type_by_op_type(here, named):
    assert invoke("profile", named, *FAST, "--output-dir", here / "before").exit_code == 0
    result = invoke("profile", named, *FAST, "--graph-opt", "basic", "--compare", here / "before", "--format",
                    "markdown", "--output-dir", here / "after")
    assert result.exit_code == 0, result.output
    assert "## Compared with" in result.stdout and "| op type | base ms | ms | change ms | ratio |" in result.stdout
    assert "| Relu |" in result.stdout  # unfused now, fused (under the Conv kernel) before
    assert "## Compared with" in (here / "after" / "profile.md").read_text()


def test_no_model_and_the_default_folder(here, named):
    (here / "models").mkdir()
    named.rename(here / "models" / "named.onnx")
    result = invoke("profile", *FAST)
    assert result.exit_code == 0, result.output
    (folder,) = (here / "results").iterdir()
    assert folder.name.startswith("profile-") and (folder / "profile.md").is_file()


@pytest.mark.parametrize("args, message", [
    (["--depth", "0"], "depth must be from 1 to 32"),
    (["--rounds", "1"], "rounds must be from 2"),
    (["--threads", "0"], "thread counts start at 1"),
    (["--top", "0"], "top must be from 1"),
    (["--by", "layer"], "'layer' is not one of 'op', 'block', 'node'"),
    (["missing.onnx"], "no such file or folder: missing.onnx"),
    (["--compare", "nowhere"], "there is no profile.csv there"),
    (["--output-dir", "named.onnx"], "is a file; pass a folder"),
    (["--target", "dev-a"], "not an ssh:// URL"),
])  # fmt: skip
def test_bad_input_is_one_line_and_writes_nothing(here, named, args, message):
    snapshot = Snapshot(here)
    model = [] if args[0].endswith(".onnx") and not args[0].startswith("-") else [named]
    assert_refused(invoke("profile", *model, *FAST, *args), message)
    snapshot.assert_unchanged()


def test_an_old_profile_is_never_overwritten(here, named):
    assert invoke("profile", named, *FAST, "--output-dir", here / "out").exit_code == 0
    snapshot = Snapshot(here)
    assert_refused(invoke("profile", named, *FAST, "--output-dir", here / "out"), "already exists")
    snapshot.assert_unchanged()


def test_a_model_that_does_not_load_is_one_line_from_a_real_process(here):
    (here / "bad.onnx").write_bytes(b"not onnx")
    result = run_cli("profile", "bad.onnx", *FAST, "--output-dir", "out", cwd=here)
    assert_refused(result, "cannot load bad.onnx", status=1)
    assert not (here / "out").exists()  # the folder this run made is gone again
