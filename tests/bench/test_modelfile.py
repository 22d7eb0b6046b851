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
    ExportSelection,
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


def _rule_resolver(resolution=16, opset=13):
    """A registry lookup as the layer above bench passes it: the canonical name and its export defaults."""
    from mbbench.bench.modelfile import RegistryName

    def resolve(name):
        from mbbench.models import resolve_name

        return RegistryName(resolve_name(name), resolution=resolution, opset=opset)

    return resolve


def test_registry_name_resolves_by_the_rule_never_the_newest(tmp_path, registry):
    exported = tmp_path / "models"
    exported.mkdir()
    fp32 = conv_relu(exported / "mobileone-s0-16-opset13.onnx")
    int8 = conv_relu(exported / "mobileone-s0-16-opset13-int8.onnx", size=8)
    unfused = conv_relu(exported / "mobileone-s0-16-opset13-unfused.onnx", size=8)
    with_manifest = conv_relu(exported / "renamed.onnx", size=12)
    write_manifest(with_manifest, resolution=32)
    matmul_dynamic(exported / "mobileone-s0x-16-opset13.onnx")  # another model whose name only starts alike
    for age, path in enumerate([fp32, with_manifest, unfused, int8]):
        os.utime(path, (1_000 * (age + 1), 1_000 * (age + 1)))  # the INT8 file is the newest
    notes = []
    found = resolve_models(["mobileone_s0"], exported, note=notes.append, resolve=_rule_resolver())
    assert [f.path for f in found] == [fp32]
    assert len(notes) == 1 and "fp32, 16x16, opset 13: the default for a model name" in notes[0]
    for other in ("-int8.onnx (int8, 16x16, opset 13)", "-unfused.onnx (fp32, 16x16, opset 13, unfused)",
                  "renamed.onnx (fp32, 32x32, opset 13)"):
        assert other in notes[0], notes[0]
    assert [f.path for f in resolve_models(["mobileone-s0"], exported, resolve=_rule_resolver(),
                                           select=ExportSelection(precision="int8"))] == [int8]
    assert [f.path for f in resolve_models(["mobileone-s0"], exported, resolve=_rule_resolver(),
                                           select=ExportSelection(resolution=32))] == [with_manifest]


def test_no_export_meeting_the_rule_lists_the_candidates(tmp_path, registry):
    exported = tmp_path / "models"
    exported.mkdir()
    conv_relu(exported / "mobileone-s0-224-opset12.onnx")
    conv_relu(exported / "mobileone-s0-224-opset12-int8.onnx")
    with pytest.raises(ModelNotFoundError, match=r"no export in .* that is fp32, 16x16, opset 13; there are: "
                                                 r"mobileone-s0-224-opset12-int8.onnx \(int8, 224x224, opset 12\); "
                                                 r"mobileone-s0-224-opset12.onnx \(fp32, 224x224, opset 12\)\. "
                                                 r"Choose one with --precision, --opset or --resolution"):
        resolve_models(["mobileone-s0"], exported, resolve=_rule_resolver())
    found = resolve_models(["mobileone-s0"], exported, resolve=_rule_resolver(),
                           select=ExportSelection(opset=12, resolution=224))
    assert found[0].path.name == "mobileone-s0-224-opset12.onnx"


def test_fold_forms_follow_the_auto_preference_and_equal_candidates_are_refused(tmp_path, registry):
    exported = tmp_path / "models"
    exported.mkdir()
    for fold in ("reshape", "pixel", "col2im"):
        conv_relu(exported / f"mobilevitv2-050-16-opset13-{fold}.onnx")
    found = resolve_models(["mobilevitv2-050"], exported, resolve=_rule_resolver())
    assert found[0].path.name == "mobilevitv2-050-16-opset13-col2im.onnx"
    twin = conv_relu(exported / "copy.onnx")
    write_manifest(twin, model="mobilevitv2-050", fold="col2im", opset=13, resolution=16)
    with pytest.raises(ModelNotFoundError, match=r"2 exports in .* are fp32, 16x16, opset 13 .*pass the path"):
        resolve_models(["mobilevitv2-050"], exported, resolve=_rule_resolver())


def test_the_library_follows_the_same_rule(tmp_path, registry):
    import mbbench
    from mbbench.export import export_precisions

    export_precisions("mobileone-s0", "fp32,int8", resolution=64, output_dir=tmp_path / "models",
                      calibration_size=2, fidelity_inputs=2)
    rows = mbbench.benchmark("mobileone-s0", threads=1, rounds=2, warmup=0, isolate=False, resolution=64,
                             models_dir=tmp_path / "models", on_error="raise")
    assert list(rows["precision"]) == ["fp32"]
    rows = mbbench.benchmark("mobileone-s0", threads=1, rounds=2, warmup=0, isolate=False, resolution=64,
                             precision="int8", models_dir=tmp_path / "models", on_error="raise")
    assert list(rows["precision"]) == ["int8"] and rows["file"][0].endswith("-int8.onnx")


def test_registry_name_without_export_or_unknown(tmp_path, registry):
    with pytest.raises(ModelNotFoundError, match="run 'mbbench export mobileone-s0' first"):
        resolve_models(["mobileone-s0"], tmp_path, resolve=_rule_resolver())
    with pytest.raises(registry.UnknownModelError, match="unknown model 'mobilone-s0': did you mean 'mobileone-s0'"):
        resolve_models(["mobilone-s0"], tmp_path, resolve=_rule_resolver())


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


# --- bounded whatever the file holds (issue 20, B3 and B7) --------------------------------------------------


def test_a_zero_filled_file_is_inspected_at_once(tmp_path):
    import time

    from mbbench.bench.modelfile import read_opset_file

    zeros = tmp_path / "zeros.onnx"
    zeros.write_bytes(bytes(20 << 20))
    started = time.monotonic()
    assert read_opset(zeros.read_bytes()) is None and read_opset_file(zeros) is None
    assert inspect_model(zeros).opset is None
    assert time.monotonic() - started < 5  # it once walked 10 million empty fields for 12 s


def test_a_huge_sparse_file_is_never_read_whole(tmp_path):
    import time

    from mbbench.bench.modelfile import read_opset_file

    sparse = tmp_path / "sparse.onnx"
    real = conv_relu(tmp_path / "real.onnx", opset=17).read_bytes()
    with open(sparse, "wb") as handle:  # a real model's fields, then a 1.5 GB hole inside a field
        handle.write(real)
        handle.write(bytes([0x3A]) + _varint_bytes(1_500_000_000))  # field 7 (graph), 1.5 GB long
        handle.truncate(len(real) + 6 + 1_500_000_000)
    started = time.monotonic()
    assert read_opset_file(sparse) == 17
    assert time.monotonic() - started < 2
    too_big = tmp_path / "big.onnx"
    with open(too_big, "wb") as handle:
        handle.truncate(3 << 30)
    with pytest.raises(ModelNotFoundError, match=r"is 3,221,225,472 bytes, more than the 2 GiB a single-file ONNX"):
        inspect_model(too_big)


def _varint_bytes(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_read_opset_file_agrees_with_read_opset(tmp_path):
    from mbbench.bench.modelfile import read_opset_file

    for opset in (11, 13, 17):
        path = conv_relu(tmp_path / f"m{opset}.onnx", opset=opset)
        assert read_opset_file(path) == read_opset(path.read_bytes()) == opset


def test_a_deeply_nested_or_odd_manifest_is_ignored_with_a_note(tmp_path):
    path = conv_relu(tmp_path / "m.onnx")
    path.with_suffix(".json").write_text("[" * 200_000 + "]" * 200_000)
    notes = []
    found = inspect_model(path, note=notes.append)
    assert found.manifest is None and "nested too deeply" in notes[0]
    path.with_suffix(".json").write_text('{"model": "=HYPERLINK(1)", "params": {"a": {"b": {"c": 1}}}, "macs": 5}')
    found = inspect_model(path)
    assert found.label == "m"  # a manifest name that is not a name is not a label
    assert "params" not in found.manifest and found.manifest["macs"] == 5
