import json

import pytest
import torch

import mbbench
from tests.cli._helpers import error_lines, invoke


def test_export_two_models_then_skip(tmp_path):
    # positional MODEL like bench and run, --model as an alias
    args = ["export", "mobileone_s0", "-m", "mobilevitv2-0.5", "--resolution", "64", "--opset", "13",
            "--models-dir", str(tmp_path)]  # fmt: skip
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    # not a terminal: one line per model as it finishes (CI logs, | tee), in the order they finish
    lines = [line for line in result.output.splitlines() if line.startswith("[")]
    assert sorted(line[:6] for line in lines) == ["[1/2] ", "[2/2] "]
    by_model = {line.split()[1].rstrip(":"): line for line in lines}
    assert " exported in " in by_model["mobileone-s0"] and by_model["mobileone-s0"].endswith("mobileone-s0-64-opset13.onnx")
    assert " exported in " in by_model["mobilevitv2-050"]
    assert "mobileone-s0-64-opset13.onnx" in result.output
    assert "mobilevitv2-050-64-opset13-pixel.onnx" in result.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "mobileone-s0-64-opset13.json", "mobileone-s0-64-opset13.onnx",
        "mobilevitv2-050-64-opset13-pixel.json", "mobilevitv2-050-64-opset13-pixel.onnx",
    ]  # fmt: skip
    manifest = json.loads((tmp_path / "mobileone-s0-64-opset13.json").read_text())
    assert manifest["opset"] == 13
    again = invoke("export", "mobileone-s0", "mobilevitv2-050", "--resolution", "64", "--opset", "13",
                   "--models-dir", str(tmp_path))  # fmt: skip
    assert again.exit_code == 0 and "mobilevitv2-050: skipped" in again.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["export", "-m", "mobilone-s0"], "did you mean 'mobileone-s0'"),
        (["export", "-m", "mobileone-s0", "--opset", "7"], "opset 7 is not supported"),
        (["export", "-m", "mobileone-s0", "--resolution", "8"], "resolution 8"),
        (["export", "mobileone-s0", "--resolution", "0"], "resolution 0 is outside 32-2048"),
        (["export", "mobilevitv2-050", "--fold", "cols"], "'cols' is not one of 'auto', 'col2im', 'unfold', 'pixel', 'reshape'"),
        (["export", "-m", "mobilevitv2-050", "--fold", "col2im", "--opset", "12"], "needs opset 18"),
        (["export"], "--all"),
        (["export", "--all", "-m", "mobileone-s0"], "not both"),
    ],
)
def test_bad_input_is_one_line(tmp_path, args, message):
    result = invoke(*args, "--models-dir", str(tmp_path / "out"))
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert len(error_lines(result)) == 1 and message in error_lines(result)[0]
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


@pytest.mark.slow
def test_unreadable_and_mismatched_weights(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"garbage")
    result = invoke("export", "-m", "mobileone-s0", "--weights", str(junk), "--models-dir", str(tmp_path / "o"))
    assert result.exit_code == 1 and "cannot read" in error_lines(result)[0]

    other = tmp_path / "s1.pth.tar"
    torch.save(mbbench.create_model("mobileone-s1").state_dict(), other)
    result = invoke("export", "-m", "mobileone-s0", "--weights", str(other), "--models-dir", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "matches 'mobileone-s1' instead" in error_lines(result)[0]
    assert not list((tmp_path / "o").glob("*.onnx"))


def test_output_dir_that_is_a_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = invoke("export", "-m", "mobileone-s0", "--resolution", "64", "--models-dir", str(blocker / "sub"))
    assert result.exit_code == 1 and "cannot create output folder" in error_lines(result)[0]


@pytest.mark.slow
def test_on_a_terminal_export_shows_model_k_of_n_its_stage_and_an_eta(tmp_path):
    """Run in a real pseudo-terminal: the live bar names the model being exported, k/n and an ETA, and each
    finished model still gets its line."""
    import os
    import pty
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mbbench", "export", "mobileone-s0", "mobilenetv3-small", "--resolution", "64",
         "--models-dir", str(tmp_path)], stdin=follower, stdout=follower, stderr=follower,
        env={**os.environ, "PYTHONPATH": str(repo), "COLUMNS": "160", "TERM": "xterm"}, close_fds=True,
    )  # fmt: skip
    os.close(follower)
    seen = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    assert proc.wait(timeout=300) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    assert "mobileone-s0: " in text and "0/2" in text and "ETA" in text  # the bar, while the first model runs
    assert "mobilenetv3-small: " in text and "1/2" in text
    import re

    finished = re.findall(r"\[([12])/2\] (mobileone-s0|mobilenetv3-small): exported in ", text)
    assert sorted(finished) == [("1", "mobileone-s0"), ("2", "mobilenetv3-small")] or sorted(
        finished) == [("1", "mobilenetv3-small"), ("2", "mobileone-s0")], text  # in the order they finish
