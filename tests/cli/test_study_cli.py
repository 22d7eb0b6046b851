"""``mbbench study ...`` through CliRunner: every subcommand on tiny settings, and one-line errors."""

from __future__ import annotations

import pytest

from tests.cli._helpers import TINY, error_lines, invoke



@pytest.mark.slow
@pytest.mark.parametrize(
    "args, stem, expect",
    [
        (["activations", "--activations", "se-relu,dyshiftmax", "--depth", "3", "--resolution", "32"], "activations",
         ["act-relu", "act-se-relu", "act-dyshiftmax", "SE-ReLU", "Dynamic Shift-Max", "vs act-relu"]),
        (["blocks", "--variants", "skip", "--width", "16", "--pairs", "1", "--resolution", "32", "--metric", "mean"],
         "blocks", ["block-plain", "block-skip", "skip connections", "mean ± std"]),
        (["attention", "--tokens", "16,64", "--dim", "32"], "attention",
         ["attn-mha-k16", "attn-separable-k64", "slope (all k)", "Where MHA and separable attention cross"]),
    ],
)  # fmt: skip
def test_each_study_on_tiny_settings(args, stem, expect, tmp_path):
    out = tmp_path / "out"
    result = invoke("study", *args, *TINY, "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert f"mbbench study: {stem}" in result.output
    for text in expect:
        assert text in result.output
    assert f"Wrote {out / (stem + '.csv')}" in result.output
    assert {p.name for p in out.iterdir()} == {f"{stem}.csv", f"{stem}.samples.csv", f"{stem}.md", f"{stem}.png",
                                               "models"}  # fmt: skip


def test_reproduce_on_one_model(tmp_path, shared_models):
    out = tmp_path / "rep"
    result = invoke("study", "reproduce", "--quick", "--model", "mobileone-s0", *TINY, "--models-dir",
                    str(shared_models), "--output-dir", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "mobileone-s0 (opset 12, 224x224)" in result.output
    assert "num_threads" in result.output  # the study's long layout
    assert "Does median (p50) latency follow MACs or params?" in result.output
    summary = (out / "reproduce.md").read_text()
    assert "| model | rounds | num_threads | p50 (ms) |" in summary
    # the thread cell may carry flag marks ("1 ! ‡" on a busy machine): match up to them
    assert summary.count("| mobileone-s0 | 2 | 1 ") == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["study", "nope"], "unknown study 'nope': choose one of activations, blocks, attention, reproduce"),
        (["study", "attention", "--tokens", "64,x"], "token count 'x' is not a whole number"),
        (["study", "attention", "--tokens", "100000"], "outside 1-8192"),
        (["study", "attention", "--dim", "30"], "dim 30 does not split into 4 heads"),
        (["study", "attention", "--dim", "0"], "dim must be a whole number"),
        (["study", "activations", "--activations", "swish"], "unknown activation 'swish'"),
        (["study", "activations", "--rounds", "abc"], "'abc' is not a valid integer"),
        (["study", "blocks", "--threads", "2-1"], "thread"),
        (["study", "blocks", "--metric", "p75"], "--metric"),
        (["study", "reproduce", "--model", "mobilone-s0"], "did you mean 'mobileone-s0'"),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path):
    result = invoke(*args, "--output-dir", str(tmp_path / "out")) if len(args) > 2 else invoke(*args)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert len(error_lines(result)) == 1 and message in error_lines(result)[0], result.output
    assert not (tmp_path / "out").exists()


def test_unwritable_or_taken_output_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    result = invoke("study", "attention", "--output-dir", str(tmp_path / "file" / "sub"))
    assert result.exit_code == 1 and "cannot create output folder" in error_lines(result)[0]
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "attention.csv").write_text("x")
    result = invoke("study", "attention", "--output-dir", str(tmp_path / "taken"))
    assert result.exit_code == 1 and "already exists" in error_lines(result)[0]
    assert "Traceback" not in result.output
