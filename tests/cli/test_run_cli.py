"""``mbbench run`` through CliRunner: export -> bench -> report on one small model, defaults, one-line errors."""

from __future__ import annotations

import pytest

import mbbench.pipeline
from tests.cli._helpers import TINY, error_lines, invoke



def test_run_one_model(tmp_path, shared_models):
    out = tmp_path / "out"
    result = invoke("run", "mobileone-s0", *TINY, "--models-dir", str(shared_models), "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert "Median (p50) latency (ms)" in result.output and "mobileone-s0" in result.output
    assert {p.name for p in out.iterdir()} == {"run.csv", "run.samples.csv", "run.md", "run.png"}
    assert (shared_models / "mobileone-s0-224-opset12.onnx").exists()


def test_run_without_models_runs_the_default(tmp_path, shared_models, monkeypatch):
    # the real default is one model per family at 224; one small model keeps the test fast
    monkeypatch.setitem(mbbench.pipeline.PRESETS, "study", ("mobileone-s0",))
    result = invoke("run", *TINY, "--layout", "long", "--models-dir", str(shared_models), "--output-dir",
                    str(tmp_path / "out"))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "[1/1] mobileone-s0 (opset 12, 224x224)" in result.output and "num_threads" in result.output


def test_help_names_the_study_preset_and_how_it_differs_from_export():
    text = " ".join(invoke("run", "--help").output.split())
    assert "original study's preset" in text and "opset 17, each model's own resolution" in text
    assert "every model at 224x224, at opset 12 (MobileOne), 17 (MobileViT) or 18 (MobileViT v2)" in text


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "mobilone-s0"], "did you mean 'mobileone-s0'"),
        (["run", "mobileone-s0", "--opset", "7"], "opset 7 is not supported"),
        (["run", "mobileone-s0", "--threads", "0"], "thread"),
        (["run", "mobileone-s0", "--layout", "tall"], "'tall' is not one of"),
        (["run", "mobileone-s0", "--rounds", "1"], "rounds"),
    ],
)
def test_bad_input_is_one_line(args, message, tmp_path):
    result = invoke(*args, "--output-dir", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert len(error_lines(result)) == 1 and message in error_lines(result)[0], result.output
    assert not (tmp_path / "out").exists()
