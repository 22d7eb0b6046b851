"""One rule for exit statuses, every command (README, "Exit status"): 2 when the command line is wrong (an
unknown option, a missing argument, a value wrong in itself, wherever it is found), 1 when the command could not
do what was asked (a missing file, a model that is not exported)."""

import pytest

from tests.bench.tiny_onnx import conv_relu
from tests.cli._helpers import invoke


@pytest.mark.parametrize("args", [
    ["bench", "x.onnx", "--threads", "0"],           # found by BenchConfig, not click
    ["bench", "x.onnx", "--rounds", "1"],
    ["bench", "x.onnx", "--input-shape", "1xfoo"],
    ["bench", "mobilone-s0"],                        # an unknown model name is a bad value
    ["profile", "x.onnx", "--depth", "0"],
    ["export", "mobileone-s0", "--opset", "9"],      # found by click's callback
    ["export", "mobilone-s0"],
    ["run", "--threads", "2-1"],
    ["report", "x.csv", "--alpha", "2"],
    ["bench", "--no-such-option"],
])
def test_a_wrong_command_line_exits_2(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    conv_relu(tmp_path / "x.onnx")
    result = invoke(*args)
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code == 2 and len(errors) == 1, result.output


@pytest.mark.parametrize("args", [
    ["bench", "missing.onnx"],
    ["bench", "mobileone-s0", "--models-dir", "empty"],  # a valid name that has no export here
    ["report", "missing.csv"],
])
def test_what_cannot_be_done_exits_1(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    result = invoke(*args)
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert result.exit_code == 1 and len(errors) == 1, result.output
