import hashlib
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import mbbench
from mbbench.errors import UserInputError
from mbbench.export import ExportError, ParityError, export_onnx, ops_newer_than, output_filename
from mbbench.export.opset import MAX_OPSET, default_opset, first_opset

SMALLEST = ["mobileone-s0", "mobilevit-xxs", "mobilevitv2-050"]
RES = 64


def run(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def reference(name, x, **overrides):
    model = mbbench.create_model(name, **overrides)
    if name.startswith("mobileone"):
        model = mbbench.reparameterize(model)
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.slow
@pytest.mark.parametrize("opset", [12, 13, 17, 18, MAX_OPSET])
@pytest.mark.parametrize("name", SMALLEST)
def test_opset_matrix(tmp_path, name, opset):
    result = export_onnx(name, opset=opset, resolution=RES, output_dir=tmp_path)
    model = onnx.load(result.path)
    assert default_opset(model) == opset == result.opset
    assert ops_newer_than(model, opset) == {}
    assert result.parity_max_rel <= 1e-4
    x = np.random.default_rng(3).standard_normal((1, 3, RES, RES), dtype=np.float32)
    expected = reference(name, x)
    assert np.max(np.abs(run(result.path, x) - expected)) / np.max(np.abs(expected)) < 1e-4
    if name.startswith("mobilevit"):  # v1 and v2: the fastest unfold/fold form the opset has
        assert result.fold == ("col2im" if opset >= 18 else "pixel")
        assert result.norms_fused is (True if name.startswith("mobilevitv2") else None)  # v1 has no norm to fuse
        ops = {n.op_type for n in model.graph.node}
        assert ("Col2Im" in ops) == (result.fold == "col2im")
        if name.startswith("mobilevitv2"):  # (v1's attention picks q, k, v with Gathers)
            assert "Gather" not in ops  # the unfold is the one-hot Conv, never F.unfold's Gathers


@pytest.mark.slow
def test_fold_forms_give_equal_outputs_across_opsets(tmp_path):
    x = np.random.default_rng(0).standard_normal((1, 3, RES, RES), dtype=np.float32)
    outputs = {}
    # each form is named by the graph it produces: its fold op, and Gathers only for F.unfold's im2col
    produces = {"col2im": {"Col2Im"}, "unfold": {"Col2Im", "Gather"}, "pixel": {"DepthToSpace"}, "reshape": set()}
    telling = {"Col2Im", "Gather", "DepthToSpace"}
    for opset, fold in [(12, "pixel"), (12, "reshape"), (17, "pixel"), (18, "reshape"), (18, "col2im"),
                        (18, "unfold")]:
        result = export_onnx("mobilevitv2-050", opset=opset, fold=fold, resolution=RES, output_dir=tmp_path)
        assert result.fold == fold
        assert result.path.endswith(f"-opset{opset}-{fold}.onnx")
        ops = {n.op_type for n in onnx.load(result.path).graph.node}
        assert ops & telling == produces[fold], fold
        outputs[(opset, fold)] = run(result.path, x)
    base = outputs[(18, "col2im")]
    for key, out in outputs.items():
        np.testing.assert_allclose(out, base, rtol=0, atol=1e-5 * np.abs(base).max(), err_msg=str(key))


@pytest.mark.parametrize("fold", ["col2im", "unfold"])
def test_col2im_below_18_names_the_minimum(tmp_path, fold):
    with pytest.raises(UserInputError, match=f"--fold {fold} needs opset 18"):
        export_onnx("mobilevitv2-050", opset=17, fold=fold, resolution=RES, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_dynamo_below_18_is_caught_not_trusted(tmp_path):
    # dynamo silently writes opset 18 when asked for 12: the export must refuse, not mislabel the file.
    with pytest.raises(ExportError, match="wrote opset 18 instead of 12"):
        export_onnx("mobileone-s0", opset=12, exporter="dynamo", resolution=RES, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_first_opset_table():
    assert first_opset("Col2Im") == 18
    assert first_opset("LayerNormalization") == 17
    assert first_opset("Conv") == 1


def test_parity_failure_leaves_no_file(tmp_path):
    with pytest.raises(ParityError, match="above the tolerance"):
        export_onnx("mobileone-s0", resolution=RES, tolerance=1e-12, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_manifest_records_the_facts(tmp_path):
    result = export_onnx("mobileone-s0", opset=13, resolution=RES, output_dir=tmp_path)
    path = tmp_path / "mobileone-s0-64-opset13.onnx"
    assert result.path == str(path)
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert manifest["model"] == "mobileone-s0" and manifest["family"] == "mobileone"
    assert manifest["opset"] == 13 and manifest["exporter"] == "torchscript"
    assert manifest["reparameterized"] is True and manifest["fold"] is None
    assert manifest["params"] == 2_078_504
    assert manifest["macs"] == mbbench.models.model_stats("mobileone-s0", RES)["macs"]
    assert manifest["nodes_after"] == len(onnx.load(path).graph.node)
    assert set(manifest["versions"]) == {"torch", "onnx", "onnxruntime", "onnxsim", "mbbench"}
    assert manifest["mbbench_version"] == mbbench.__version__
    assert manifest["parity_max_rel"] <= manifest["tolerance"] == 1e-4
    assert manifest["export_seconds"] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_unfused_export_is_bigger_and_named(tmp_path):
    fused = export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    unfused = export_onnx("mobileone-s0", resolution=RES, reparam=False, output_dir=tmp_path)
    assert unfused.path.endswith("-opset17-unfused.onnx") and not unfused.reparameterized
    assert unfused.nodes_after > fused.nodes_after
    assert unfused.params == 5_293_272


def test_existing_file_is_skipped_unless_forced(tmp_path):
    first = export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    stamp = os.stat(first.path).st_mtime_ns
    again = export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    assert again.skipped and again.sha256 == first.sha256
    assert os.stat(first.path).st_mtime_ns == stamp
    forced = export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path, force=True)
    assert not forced.skipped and os.stat(first.path).st_mtime_ns != stamp


def _listing(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch):
    import mbbench.export.api as api

    real_stage = api.stage_bytes

    def interrupted_at_the_manifest(target, data):
        if target.suffix == ".json":
            raise KeyboardInterrupt
        return real_stage(target, data)

    monkeypatch.setattr(api, "stage_bytes", interrupted_at_the_manifest)
    with pytest.raises(KeyboardInterrupt):
        export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("failing", ["stage", "rename"])
def test_failed_forced_export_keeps_the_previous_pair(tmp_path, monkeypatch, failing):
    import mbbench.export.api as api

    export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    before = _listing(tmp_path)
    real_replace, real_stage = os.replace, api.stage_bytes

    def replace_failing_on_the_manifest(src, dst):
        if str(dst).endswith(".json"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    def stage_failing_on_the_manifest(target, data):
        if target.suffix == ".json":
            raise OSError(28, "No space left on device")
        return real_stage(target, data)

    if failing == "rename":  # the .onnx is already renamed when the manifest's rename fails: it must be put back
        monkeypatch.setattr(api.os, "replace", replace_failing_on_the_manifest)
    else:
        monkeypatch.setattr(api, "stage_bytes", stage_failing_on_the_manifest)
    with pytest.raises(OSError):
        export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path, force=True, seed=5)
    assert _listing(tmp_path) == before  # old .onnx and old manifest, matching; no temp file


def test_stale_temp_files_of_a_killed_export_are_removed(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".mobileone-s0-64-opset17.onnx.{int(dead.stdout)}.x1y2.mbbench.tmp"
    live = tmp_path / f".mobileone-s0-64-opset17.json.{os.getpid()}.z3.mbbench.tmp"  # a concurrent export
    other = tmp_path / ".notes.tmp"  # not this tool's
    for path in (stale, live, other):
        path.write_bytes(b"partial")
    export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    assert not stale.exists() and live.exists() and other.exists()


def test_stale_temp_files_are_removed_even_when_the_export_is_reused(tmp_path):
    import subprocess
    import sys

    export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".mobileone-s0-64-opset17.onnx.{int(dead.stdout)}.k9.mbbench.tmp"  # a SIGKILLed --force
    stale.write_bytes(b"partial")
    assert export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path).skipped
    assert not stale.exists()


def test_manifest_that_does_not_match_its_file_is_not_reused(tmp_path):
    first = export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    onnx_path = tmp_path / "mobileone-s0-64-opset17.onnx"
    onnx_path.write_bytes(onnx_path.read_bytes() + b"\0")  # what a crash between the two renames looks like
    with pytest.raises(UserInputError, match="sha256 differs .* use --force"):
        export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path)
    again = export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path, force=True)
    assert again.sha256 == first.sha256 == hashlib.sha256(onnx_path.read_bytes()).hexdigest()


def test_manifest_of_the_old_fold_vocabulary_is_read_as_the_form_it_describes(tmp_path):
    result = export_onnx("mobilevitv2-050", opset=13, resolution=RES, output_dir=tmp_path)
    manifest = json.loads(open(result.path[:-5] + ".json").read())
    old = {**manifest, "fold": "reshape", "fold_impl": "pixel"}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    assert mbbench.export.ExportResult.from_manifest(path).fold == "pixel"


def test_dynamic_batch(tmp_path):
    result = export_onnx("mobilevit-xxs", resolution=RES, dynamic_batch=True, output_dir=tmp_path)
    x = np.random.default_rng(1).standard_normal((3, 3, RES, RES), dtype=np.float32)
    expected = reference("mobilevit-xxs", x)
    assert np.max(np.abs(run(result.path, x) - expected)) / np.abs(expected).max() < 1e-4
    assert result.input_shape == ["batch", 3, RES, RES]


def test_weights_are_used(tmp_path):
    source = mbbench.create_model("mobilevitv2-050", seed=11)
    ckpt = tmp_path / "ckpt.pt"
    torch.save(source.state_dict(), ckpt)
    result = export_onnx("mobilevitv2-050", resolution=RES, weights=ckpt, output_dir=tmp_path / "out")
    x = np.random.default_rng(2).standard_normal((1, 3, RES, RES), dtype=np.float32)
    with torch.no_grad():
        expected = source(torch.from_numpy(x)).numpy()
    assert np.max(np.abs(run(result.path, x) - expected)) / np.abs(expected).max() < 1e-4
    assert result.weights == str(ckpt) and result.weights_sha256 == hashlib.sha256(ckpt.read_bytes()).hexdigest()


def _perturbed_checkpoint(name, path):
    g = torch.Generator().manual_seed(99)
    state = {
        k: (v + 0.05 * torch.randn(v.shape, generator=g) * v.abs().mean() if v.is_floating_point() else v)
        for k, v in mbbench.create_model(name).state_dict().items()
    }
    for k in state:
        if k.endswith("running_var"):
            state[k] = state[k].abs() + 0.01
    torch.save(state, path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SMALLEST)
def test_random_init_graph_has_the_structure_of_a_real_checkpoint(tmp_path, name):
    ckpt = tmp_path / "real.pth"
    _perturbed_checkpoint(name, ckpt)
    random_init = export_onnx(name, resolution=RES, output_dir=tmp_path / "a")
    real = export_onnx(name, resolution=RES, weights=ckpt, output_dir=tmp_path / "b")
    assert random_init.nodes_after == real.nodes_after
    a, b = onnx.load(random_init.path), onnx.load(real.path)
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]


def test_pytorch_default_init_would_shrink_the_graph(tmp_path):
    # Why the init matters: identity norms get deleted by the simplifier, so the graph is not the real one.
    model = mbbench.create_model("mobilevitv2-050")
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.fill_(1.0)
                m.bias.zero_()
    naive = export_onnx(model, tmp_path / "naive.onnx", resolution=RES, name="mobilevitv2-050", fuse_norms=False)
    proper = export_onnx("mobilevitv2-050", resolution=RES, output_dir=tmp_path, fuse_norms=False)
    assert naive.nodes_after < proper.nodes_after


def test_exporting_a_plain_module(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
    result = export_onnx(module, tmp_path / "tiny.onnx", opset=12, resolution=32)
    assert result.family is None and result.model == "sequential"
    assert onnx.load(result.path).opset_import[0].version == 12


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(opset=9), "opset 9 is not supported"),
        (dict(opset=30), "from 11 to 23"),
        (dict(resolution=16), "resolution 16"),
        (dict(resolution=0), "resolution 0 is outside 32-2048"),
        (dict(resolution=4096), "resolution 4096 is outside 32-2048"),
        (dict(resolution=64.5), "resolution must be a whole number"),
        (dict(batch=0), "batch 0 is outside 1-1024"),
        (dict(batch=1025), "batch 1025 is outside 1-1024"),
        (dict(seed=-1), "seed -1 is outside 0-4294967295"),
        (dict(seed=2**32), "seed 4294967296 is outside"),
        (dict(tolerance=0.0), "tolerance must be a finite number above 0"),
        (dict(tolerance=float("nan")), "not nan"),
        (dict(tolerance=float("inf")), "not inf"),
        (dict(fold="im2col"), "unknown fold"),
        (dict(exporter="tflite"), "unknown exporter"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(UserInputError, match=match):
        export_onnx("mobileone-s0", output_dir=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_output_filename():
    assert output_filename("mobileone-s2", 224, 12) == "mobileone-s2-224-opset12.onnx"
    assert output_filename("mobileone-s2", 224, 12, reparameterized=False) == "mobileone-s2-224-opset12-unfused.onnx"
    assert output_filename("mobilevitv2-100", 256, 18, fold="col2im") == "mobilevitv2-100-256-opset18-col2im.onnx"


def test_fused_checkpoint_cannot_be_exported_unfused(tmp_path):
    ckpt = tmp_path / "fused.pth.tar"
    torch.save(mbbench.reparameterize(mbbench.create_model("mobileone-s0")).state_dict(), ckpt)
    with pytest.raises(UserInputError, match="fused"):
        export_onnx("mobileone-s0", resolution=RES, weights=ckpt, reparam=False, output_dir=tmp_path / "out")
    assert not list((tmp_path / "out").glob("*.onnx"))
    fused = export_onnx("mobileone-s0", resolution=RES, weights=ckpt, output_dir=tmp_path / "out")
    assert fused.reparameterized and fused.parity_max_rel <= 1e-4


def test_the_measuring_cores_fold_words_match_the_forms_and_autos_order():
    # the core pushed to devices cannot import mbbench.models, so it spells the fold forms out: they must not drift
    from mbbench.bench.formatting import _FOLD_WORDS
    from mbbench.bench.modelfile import FOLD_PREFERENCE
    from mbbench.export.api import _fold_candidates
    from mbbench.models.facts import FOLD_FORMS

    assert set(_FOLD_WORDS) == set(FOLD_FORMS) == set(FOLD_PREFERENCE[1:]) and FOLD_PREFERENCE[0] is None
    # a registry name resolves to the file --fold auto would have written, at any opset
    for opset in (17, 18):
        auto = _fold_candidates("auto", opset)
        assert [f for f in FOLD_PREFERENCE if f in auto] == auto
        assert FOLD_PREFERENCE.index(auto[0]) == min(FOLD_PREFERENCE.index(f) for f in auto)
