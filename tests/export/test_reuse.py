"""An existing export is reused only when everything that defines it matches what is asked (issue 20, A1)."""

import hashlib
import json

import pytest
import torch

import mbbench
from mbbench.errors import UserInputError
from mbbench.export import export_onnx, export_precisions
from mbbench.export.api import toolchain_fingerprint

RES = 64
NAME = "mobileone-s0"


@pytest.fixture
def exported(tmp_path):
    """A random-init export of NAME in tmp_path/models, and its manifest's text."""
    result = export_onnx(NAME, resolution=RES, output_dir=tmp_path / "models")
    return result


def _checkpoint(path, seed):
    torch.save(mbbench.create_model(NAME, seed=seed).state_dict(), path)
    return path


def test_a_missing_checkpoint_is_an_error_whatever_is_on_disk(tmp_path, exported):
    before = (tmp_path / "models").joinpath("mobileone-s0-64-opset17.json").read_bytes()
    with pytest.raises(UserInputError, match="checkpoint 'nope.pth' does not exist"):
        export_onnx(NAME, resolution=RES, output_dir=tmp_path / "models", weights="nope.pth")
    assert (tmp_path / "models" / "mobileone-s0-64-opset17.json").read_bytes() == before


def test_weights_are_compared_by_sha256(tmp_path, exported):
    models = tmp_path / "models"
    ckpt = _checkpoint(tmp_path / "trained.pth", seed=7)
    # the file on disk came from random init: it must not pass for the trained model, nor be silently replaced
    with pytest.raises(UserInputError, match=r"other inputs \(random init, asked weights '.*trained.pth' \(sha256"):
        export_onnx(NAME, resolution=RES, output_dir=models, weights=ckpt)
    assert json.loads((models / "mobileone-s0-64-opset17.json").read_text())["weights"] is None
    trained = export_onnx(NAME, resolution=RES, output_dir=models, weights=ckpt, force=True)
    assert trained.weights_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest() and not trained.skipped
    assert export_onnx(NAME, resolution=RES, output_dir=models, weights=ckpt).skipped
    # the same path now holds other weights: the export no longer describes them
    _checkpoint(ckpt, seed=8)
    with pytest.raises(UserInputError, match="made from other inputs"):
        export_onnx(NAME, resolution=RES, output_dir=models, weights=ckpt)
    # and a random-init request does not take the trained file either
    with pytest.raises(UserInputError, match=r"asked random init"):
        export_onnx(NAME, resolution=RES, output_dir=models)


@pytest.mark.slow
@pytest.mark.parametrize(
    "asked, words",
    [
        (dict(seed=3), "seed 0, asked 3"),
        (dict(batch=2), "batch 1, asked 2"),
        (dict(simplify=False), "simplify True, asked False"),
        (dict(dynamic_batch=True), "dynamic batch False, asked True"),
        (dict(tolerance=1e-12), "above the asked tolerance 1e-12"),
    ],
)
def test_every_input_that_defines_the_file_is_compared(tmp_path, exported, asked, words):
    models = tmp_path / "models"
    before = {p.name: p.read_bytes() for p in models.iterdir()}
    with pytest.raises(UserInputError, match=words):
        export_onnx(NAME, resolution=RES, output_dir=models, **asked)
    assert {p.name: p.read_bytes() for p in models.iterdir()} == before


def test_what_does_not_define_the_file_still_reuses_it(tmp_path, exported):
    # a looser tolerance is met by the recorded parity; the file is the same
    assert export_onnx(NAME, resolution=RES, output_dir=tmp_path / "models", tolerance=1e-2).skipped


def test_variant_calibration_is_compared(tmp_path):
    models = tmp_path / "models"
    export_precisions(NAME, "fp32,int8", resolution=RES, output_dir=models, calibration_size=4, fidelity_inputs=4)
    again = export_precisions(NAME, "fp32,int8", resolution=RES, output_dir=models, calibration_size=4,
                              fidelity_inputs=4)
    assert all(r.skipped for r in again)
    with pytest.raises(UserInputError, match="calibration size 4, asked 8"):
        export_precisions(NAME, "int8", resolution=RES, output_dir=models, calibration_size=8, fidelity_inputs=4)
    with pytest.raises(UserInputError, match="keep-float \\[\\], asked \\['Softmax'\\]"):
        export_precisions(NAME, "int8", resolution=RES, output_dir=models, calibration_size=4, keep_float="Softmax")


@pytest.mark.slow
def test_a_file_made_by_other_code_is_made_again(tmp_path, exported):
    manifest = tmp_path / "models" / "mobileone-s0-64-opset17.json"
    data = json.loads(manifest.read_text())
    assert data["toolchain"] == toolchain_fingerprint()
    manifest.write_text(json.dumps({**data, "toolchain": "0000000000000000"}))
    again = export_onnx(NAME, resolution=RES, output_dir=tmp_path / "models")
    assert not again.skipped and again.remade == "made by other mbbench code or tool versions"
    assert json.loads(manifest.read_text())["toolchain"] == toolchain_fingerprint()
    # a manifest from before the toolchain was recorded: the same inputs, so it is made again too
    manifest.write_text(json.dumps({k: v for k, v in data.items() if k != "toolchain"}))
    assert export_onnx(NAME, resolution=RES, output_dir=tmp_path / "models").remade.startswith("made before")


def test_the_cli_refuses_a_missing_checkpoint_after_export_all_style_reuse(tmp_path, exported):
    from click.testing import CliRunner

    from mbbench.cli import main

    result = CliRunner().invoke(main, ["export", NAME, "--resolution", str(RES), "--models-dir",
                                       str(tmp_path / "models"), "--weights", str(tmp_path / "nope.pth")])
    assert result.exit_code == 1 and "does not exist" in result.output and "skipped" not in result.output
