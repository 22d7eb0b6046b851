import hashlib
import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from onnx import helper

from .tiny_onnx import conv_relu, matmul_dynamic, write_manifest
from mbbench.bench.modelfile import (
    ModelFile,
    ModelNotFoundError,
    assign_labels,
    inspect_model,
    read_opset,
    resolve_models,
)
from mbbench.bench.schema import MANIFEST_COLUMNS
from mbbench.errors import UserInputError

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_read_opset_matches_onnx(tmp_path, opset):
    path = conv_relu(tmp_path / "m.onnx", opset=opset)
    assert read_opset(path.read_bytes()) == opset == onnx.load(str(path)).opset_import[0].version


def test_read_opset_ignores_other_domains(tmp_path):
    path = conv_relu(tmp_path / "m.onnx")
    model = onnx.load(str(path))
    model.opset_import.insert(0, helper.make_opsetid("com.microsoft", 1))
    assert read_opset(model.SerializeToString()) == 13


@pytest.mark.parametrize("data", [b"", b"not onnx at all", b"\xff" * 11, b"\x42\x10"])
def test_read_opset_of_garbage_is_none(data):
    assert read_opset(data) is None


def test_foreign_file_has_stem_label_and_empty_manifest_columns(conv_model):
    info = inspect_model(conv_model)
    assert info.label == "conv"
    assert info.sha256 == hashlib.sha256(conv_model.read_bytes()).hexdigest()
    assert info.opset == 13
    assert info.manifest_columns() == dict.fromkeys(MANIFEST_COLUMNS)


def test_manifest_facts_are_joined(conv_model):
    write_manifest(conv_model, fold="col2im")
    info = inspect_model(conv_model)
    assert info.label == "mobileone-s0"
    assert info.manifest_columns() == {
        "family": "mobileone", "params": 1234, "macs": 56789, "reparameterized": True, "fold": "col2im",
        "exporter": "torch.onnx.export(dynamo=False)", "precision": None, "fidelity_cosine": None,
        "fidelity_sqnr_db": None, "fidelity_top1": None, "fidelity_top5": None,
    }


def test_stale_or_unreadable_manifest_is_noted(conv_model):
    notes = []
    write_manifest(conv_model, sha256="0" * 64)
    inspect_model(conv_model, notes.append)
    assert len(notes) == 1 and "sha256 differs" in notes[0]
    conv_model.with_suffix(".json").write_text("{oops")
    notes.clear()
    info = inspect_model(conv_model, notes.append)
    assert info.manifest is None and "not a readable JSON manifest" in notes[0]


def test_labels_prefer_unique_manifest_names_then_stems_then_paths(tmp_path):
    def mf(path, label):
        return ModelFile(tmp_path / path, label, "x", 13, None)

    files = assign_labels([
        mf("a/mobileone-s0-224-opset17.onnx", "mobileone-s0"),
        mf("a/mobileone-s0-224-opset17-unfused.onnx", "mobileone-s0"),
        mf("a/mobilevit-xs-256-opset17.onnx", "mobilevit-xs"),
        mf("a/net.onnx", "net"),
        mf("b/net.onnx", "net"),
    ])
    assert [f.label for f in files] == [
        "mobileone-s0-224-opset17",
        "mobileone-s0-224-opset17-unfused",
        "mobilevit-xs",
        (tmp_path / "a/net").as_posix(),
        (tmp_path / "b/net").as_posix(),
    ]


def test_resolve_files_folders_and_duplicates(models, tmp_path):
    folder = models["conv"].parent
    found = resolve_models([folder, models["conv"], str(models["conv"])])
    assert [f.path.name for f in found] == ["add.onnx", "conv.onnx", "matmul.onnx"]


def test_resolve_with_no_argument_uses_models_dir(models, tmp_path):
    assert len(resolve_models(None, models_dir=models["conv"].parent)) == 3
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="has no .onnx files"):
        resolve_models([], models_dir=tmp_path / "empty")
    with pytest.raises(ModelNotFoundError, match="there is no"):
        resolve_models([], models_dir="does-not-exist")


@pytest.mark.parametrize(
    ("arg", "message"),
    [("missing/model.onnx", "no such file"), ("model.onnx", "no such file"), ("notes.txt", "not an .onnx file")],
)
def test_resolve_refuses_bad_paths(tmp_path, arg, message):
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelNotFoundError, match=message) as info:
        resolve_models([tmp_path / arg if arg == "notes.txt" else arg])
    assert isinstance(info.value, UserInputError)


def test_resolve_refuses_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelNotFoundError, match="has no .onnx files"):
        resolve_models([tmp_path / "empty"])


@pytest.fixture
def registry():
    """The real registry (it imports torch, so bench tests that need it skip where torch is missing)."""
    pytest.importorskip("torch")
    from mbbench import models

    return models


def test_registry_name_resolves_to_its_newest_export(tmp_path, registry):
    exported = tmp_path / "models"
    exported.mkdir()
    old = conv_relu(exported / "mobileone-s0-16-opset13.onnx")
    new = conv_relu(exported / "mobileone-s0-16-opset13-unfused.onnx", size=8)
    with_manifest = conv_relu(exported / "renamed.onnx", size=12)
    write_manifest(with_manifest)
    matmul_dynamic(exported / "mobileone-s0x-16-opset13.onnx")  # another model whose name only starts alike
    os.utime(old, (1_000, 1_000))
    os.utime(with_manifest, (2_000, 2_000))
    os.utime(new, (3_000, 3_000))
    notes = []
    found = resolve_models(["mobileone_s0"], exported, note=notes.append, resolve=registry.resolve_name)
    assert [f.path for f in found] == [new]
    assert found[0].label == "mobileone-s0-16-opset13-unfused"  # no manifest: the stem
    assert len(notes) == 1 and "newest of 3" in notes[0]
    assert "mobileone-s0-16-opset13.onnx" in notes[0] and "renamed.onnx" in notes[0]


def test_registry_name_without_export_or_unknown(tmp_path, registry):
    with pytest.raises(ModelNotFoundError, match="run 'mbbench export mobileone-s0' first"):
        resolve_models(["mobileone-s0"], tmp_path, resolve=registry.resolve_name)
    with pytest.raises(registry.UnknownModelError, match="unknown model 'mobilone-s0': did you mean 'mobileone-s0'"):
        resolve_models(["mobilone-s0"], tmp_path, resolve=registry.resolve_name)


def test_without_a_resolver_names_are_refused_and_the_zoo_is_not_imported(tmp_path):
    code = (
        "import sys; from mbbench.bench.modelfile import resolve_models\n"
        "try:\n    resolve_models(['mobileone-s0'], 'models')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
        "print(sorted(m for m in sys.modules if m.startswith(('mbbench.models', 'torch'))))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout.splitlines() == [
        "ModelNotFoundError 'mobileone-s0' is not a file or folder, and model names cannot be resolved here; "
        "pass an .onnx path",
        "[]",
    ], proc.stderr


def _special_entries(folder):
    """A folder named x.onnx, a dangling link, a FIFO and a link to /dev/zero, all globbed by *.onnx."""
    (folder / "dir.onnx").mkdir()
    (folder / "dangling.onnx").symlink_to(folder / "nowhere.onnx")
    os.mkfifo(folder / "fifo.onnx")
    (folder / "zero.onnx").symlink_to("/dev/zero")
    return ["dir.onnx", "dangling.onnx", "fifo.onnx", "zero.onnx"]


def test_a_folder_yields_only_regular_files_and_names_what_it_skips(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    good = conv_relu(folder / "good.onnx")
    (folder / "link.onnx").symlink_to(good)  # a link to a regular file is a model (the same one: measured once)
    specials = _special_entries(folder)
    notes = []
    found = resolve_models([folder], note=notes.append)  # a FIFO read here would hang, /dev/zero never end
    assert [f.path.name for f in found] == ["good.onnx"]
    assert len(notes) == len(specials)
    for name, kind in zip(sorted(specials), ["a dangling link", "a folder", "a FIFO", "a device"]):
        assert any(name in n and kind in n for n in notes), (name, notes)
    notes.clear()
    assert [f.path.name for f in resolve_models([], models_dir=folder, note=notes.append)] == ["good.onnx"]
    assert len(notes) == len(specials)


@pytest.mark.parametrize(("name", "message"), [
    ("fifo.onnx", "is a FIFO, not a regular file"), ("zero.onnx", "is a device, not a regular file"),
    ("dangling.onnx", "is a dangling link"),
])
def test_a_special_file_given_directly_says_what_it_is(tmp_path, name, message):
    _special_entries(tmp_path)
    with pytest.raises(ModelNotFoundError, match=message):
        resolve_models([tmp_path / name])
