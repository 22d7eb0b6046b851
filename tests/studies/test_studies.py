"""Each study end to end on tiny settings: the CSV schema plus study/factor/value, the analysis, the files."""

from __future__ import annotations

import csv
import math
import subprocess
import sys

import pytest

from mbbench.bench.schema import RESULT_COLUMNS
from mbbench.errors import UserInputError
from mbbench.pipeline import RunFolder
from mbbench.studies import activation_study, attention_study, block_study

TINY = dict(threads=1, rounds=2, warmup=0, isolate=False)


def header(path) -> list[str]:
    with open(path, newline="") as fh:
        return next(csv.reader(fh))


def assert_png(path) -> None:
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 300


def assert_files(result, stem: str, models: list[str]) -> None:
    folder = result.folder
    assert result.csv == folder.directory / f"{stem}.csv"
    assert header(result.csv) == [*RESULT_COLUMNS, "study", "factor", "value"]
    assert folder.samples.exists()
    assert_png(result.plot)
    assert result.summary.read_text().startswith(f"# mbbench study: {stem}")
    assert sorted(p.stem for p in folder.models.glob("*.onnx")) == sorted(models)
    assert sorted(p.stem for p in folder.models.glob("*.json")) == sorted(models)


def test_activation_study(tmp_path):
    result = activation_study("gelu,dyrelu-a", depth=3, width=16, resolution=32, output=tmp_path / "act", **TINY)
    models = ["act-relu", "act-gelu", "act-dyrelu-a"]  # ReLU, the baseline, comes first even when not asked
    assert list(result.results["model"]) == models
    assert set(result.results["study"]) == {"activations"}
    assert list(result.results["factor"]) == ["activation"] * 3
    assert list(result.results["value"]) == ["relu", "gelu", "dyrelu-a"]
    table = result.table.set_index("model")
    assert table.at["act-relu", "ratio"] == 1.0
    assert all(math.isfinite(r) and r > 0 for r in table["ratio"])
    assert (table["latency_ms"] == result.results.set_index("model")["p50_ms"]).all()  # median by default
    latency = table["latency_ms"]
    assert table.at["act-gelu", "ratio"] == pytest.approx(latency["act-gelu"] / latency["act-relu"], rel=1e-12)
    assert_files(result, "activations", models)
    summary = result.summary.read_text()
    assert "| act-dyrelu-a | DY-ReLU-A |" in summary and "median" in summary
    assert all(e.opset == 17 and e.resolution == 32 for e in result.exports)


@pytest.mark.slow
def test_block_study_with_the_mean(tmp_path):
    result = block_study(["branches-k4", "se"], width=16, pairs=1, resolution=32, metric="mean",
                         output=tmp_path / "blocks", **TINY)  # fmt: skip
    models = ["block-plain", "block-branches-k4", "block-se"]
    assert list(result.results["model"]) == models
    assert list(result.results["factor"]) == ["baseline", "branches", "se"]
    table = result.table.set_index("model")
    assert table.at["block-plain", "ratio"] == 1.0 and all(math.isfinite(r) for r in table["ratio"])
    assert (table["latency_ms"] == result.results.set_index("model")["mean_ms"]).all()
    by_model = {e.model: e for e in result.exports}
    assert by_model["block-branches-k4"].reparameterized is False
    assert by_model["block-branches-k4"].macs > 3 * by_model["block-plain"].macs  # four conv branches
    assert_files(result, "blocks", models)
    assert "mean ± std" in result.summary.read_text()


@pytest.mark.slow
def test_attention_study(tmp_path):
    result = attention_study("16,64", dim=32, kinds=("mha", "separable"), output=tmp_path / "attn", **TINY)
    models = ["attn-mha-k16", "attn-mha-k64", "attn-separable-k16", "attn-separable-k64"]
    assert list(result.results["model"]) == models
    assert list(result.results["factor"]) == ["mha", "mha", "separable", "separable"]
    assert [str(v) for v in result.results["value"]] == ["16", "64", "16", "64"]
    assert sorted(result.table["k"].unique()) == [16, 64]
    assert {(s["threads"], s["kind"]) for s in result.facts["slopes"]} == {(1, "mha"), (1, "separable")}
    assert all(math.isfinite(s["slope"]) and math.isfinite(s["macs_slope"]) for s in result.facts["slopes"])
    (cross,) = result.facts["crossovers"]
    assert cross["threads"] == 1 and cross["verdict"]
    assert_files(result, "attention", models)
    assert "Where MHA and separable attention cross" in result.summary.read_text()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda out: activation_study("rleu", output=out), "did you mean 'relu'"),
        (lambda out: activation_study(width=8, output=out), "width must be"),
        (lambda out: activation_study(threads="0", output=out), "thread"),
        (lambda out: activation_study(rounds=1, output=out), "rounds"),
        (lambda out: activation_study(metric="p75", output=out), "unknown metric"),
        (lambda out: block_study("plian", output=out), "unknown block variant"),
        (lambda out: attention_study("0,64", output=out), "outside 1-8192"),
        (lambda out: attention_study(dim=30, output=out), "multiple of 4"),
        (lambda out: attention_study(opset=7, output=out), "opset 7"),
    ],
)
def test_bad_input_fails_before_any_work(call, message, tmp_path):
    with pytest.raises(UserInputError, match=message):
        call(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_run_folder_refuses_to_overwrite_and_unusable_places(tmp_path):
    folder = RunFolder.create(tmp_path / "run", "study")
    folder.csv.write_text("x")
    with pytest.raises(UserInputError, match="already exists"):
        RunFolder.create(tmp_path / "run", "study")
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        RunFolder.create(tmp_path / "file", "study")
    with pytest.raises(UserInputError, match="cannot create output folder"):
        RunFolder.create(tmp_path / "file" / "below", "study")


def test_default_folder_is_new_and_named_after_the_study(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first, second = RunFolder.create(None, "blocks"), RunFolder.create(None, "blocks")
    assert first.directory.parent.name == "results" and first.directory.name.startswith("blocks-")
    assert first.directory != second.directory


def test_importing_the_studies_and_the_pipeline_stays_light():
    code = "import sys, mbbench.studies, mbbench.pipeline, mbbench.cli; print(sorted({'torch', 'pandas', " \
           "'matplotlib'} & set(sys.modules)))"  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_cross_attention_costs_grow_linearly_in_k_where_mha_grows_quadratically():
    """Mobile-Former's bridge: 6 tokens and k positions, 2 directions x 2 matmuls x 6 k dim MACs, no k x k map."""
    from mbbench.models.profile import macs_by_module
    from mbbench.studies.attention import CROSS_TOKENS, build_network

    dim = 32

    def attention_macs(kind, k):
        network = build_network(kind, k, dim)
        by_module = macs_by_module(network, network.resolution)
        return sum(v for name, v in by_module.items() if name and not name.startswith("embed") and "." not in name)

    cross = {k: attention_macs("cross", k) for k in (256, 1024)}
    mha = {k: attention_macs("mha", k) for k in (256, 1024)}
    # 4 matmuls of CROSS_TOKENS x k x dim grow with k; the projections of the 6 tokens do not
    assert cross[1024] - cross[256] == 4 * CROSS_TOKENS * dim * (1024 - 256)
    assert mha[1024] / mha[256] > 8  # k^2 dominates: 16x the attention map for 4x the tokens


@pytest.mark.slow
def test_attention_study_measures_the_cross_kind(tmp_path):
    result = attention_study("16,64", dim=32, kinds=["separable", "cross"], output=tmp_path / "attn", **TINY)
    assert set(result.table["kind"]) == {"separable", "cross"}
    assert "mha / separable" not in (tmp_path / "attn" / "attention.md").read_text()
