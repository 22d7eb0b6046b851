"""Every runtime for real: each converts and runs a zoo export, applies the thread count asked (read back from the
runtime), records its fidelity to the export; refusals are recorded rows; artifacts are cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from mbbench.bench.modelfile import inspect_model
from mbbench.bench.options import BenchConfig
from mbbench.cli import main
from mbbench.measure import sweep, with_runtimes
from mbbench.report import build_document, load, to_markdown
from mbbench.runtimes import get_runtime, parse_runtimes, runtime_facts
from mbbench.runtimes.artifacts import CACHE_DIR, Conversion, Refusal, artifact_for, prepare_artifacts

CONVERTING = ("openvino", "mnn", "ncnn", "litert")
# every test here converts with a real runtime's converter or runs a real runtime: end to end (pytest --all)
pytestmark = pytest.mark.slow


def _fast(**overrides) -> BenchConfig:
    return BenchConfig(**{"threads": (1, 2), "rounds": 3, "warmup": 1, **overrides})


@pytest.mark.parametrize("runtime", CONVERTING)
def test_each_runtime_runs_a_zoo_export_at_the_threads_asked_and_records_its_fidelity(zoo_exports, runtime, tmp_path,
                                                                                      request):
    if runtime == "litert":
        request.getfixturevalue("litert_converter")
    model = inspect_model(zoo_exports["mobileone-s0"])
    result = sweep([model], _fast(), runtimes=[runtime], output=tmp_path / "r.csv")
    assert not result.failures
    rows = pd.read_csv(tmp_path / "r.csv")
    assert list(rows["runtime"]) == [runtime, runtime]
    assert list(rows["applied_threads"]) == [1, 2]  # read back from the runtime, not echoed
    assert set(rows["applied_precision"]) <= {"f32", "fp32"}
    assert (rows["conversion_cosine"] >= 0.9999).all() and (rows["conversion_max_abs"] < 1e-3).all()
    assert (rows["source_sha256"] == model.sha256).all()
    assert (rows["p50_ms"] > 0).all() and rows["runtime_version"].notna().all()
    assert rows["input_shape"].iloc[0] == "1x3x64x64"  # the export's input, whatever the runtime's layout


def test_openvino_reads_back_the_precision_its_kernels_run_in(zoo_exports):
    """f32 is pinned by default (a plain compile picks bfloat16 on a CPU that has it); asking for bf16 on such a
    CPU is read back as bf16, so the column reports what ran, not what was asked."""
    engine = get_runtime("openvino")
    path = str(zoo_exports["mobileone-s0"])
    core = __import__("openvino").Core()
    has_bf16 = "BF16" in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    for asked, expected in (("f32", "f32"), ("bf16", "bf16" if has_bf16 else "f32")):
        session = engine.open(path, 1, engine.check_options({"precision": asked}))
        try:
            kernels = session.applied()["precision"].split("+")  # every precision an executed kernel ran in
            assert expected in kernels and (asked == "bf16" or kernels == ["f32"])
        finally:
            session.close()


def test_a_model_ncnn_cannot_run_is_a_recorded_row_and_a_table_cell_while_the_sweep_goes_on(zoo_exports, tmp_path):
    models = [inspect_model(zoo_exports[n]) for n in ("mobilevit-xxs", "mobileone-s0")]
    out = tmp_path / "r.csv"
    result = sweep(models, _fast(threads=(1,)), runtimes=["onnxruntime", "ncnn"], output=out)
    rows = pd.read_csv(out)
    refused = rows[rows["unsupported"].notna()]
    assert list(zip(refused["model"], refused["runtime"])) == [("mobilevit-xxs", "ncnn")]
    assert "Tensor.reshape" in refused["unsupported"].iloc[0] and refused["rounds"].iloc[0] == 0
    assert refused["p50_ms"].isna().all()
    measured = rows[rows["unsupported"].isna()]
    assert sorted(zip(measured["model"], measured["runtime"])) == [
        ("mobileone-s0", "ncnn"), ("mobileone-s0", "onnxruntime"), ("mobilevit-xxs", "onnxruntime")]
    assert not result.failures
    text = to_markdown(build_document(load([out], samples=True)))
    table = text.split("### Latency by runtime", 1)[1]
    assert "| mobilevit-xxs | 1 thread |" in table and "not supported [1]" in table
    assert "[1] mobilevit-xxs: not supported by ncnn: Tensor.reshape" in table


def test_a_second_run_converts_nothing_and_a_lost_artifact_is_made_again(zoo_exports):
    model = inspect_model(zoo_exports["mobileone-s0"])
    first = artifact_for(model.path, model.sha256, "mnn")
    again = artifact_for(model.path, model.sha256, "mnn")
    assert isinstance(first, Conversion) and isinstance(again, Conversion)
    assert again.cached and again.path == first.path
    assert first.path.is_relative_to(model.path.parent / CACHE_DIR / "mnn")
    record = json.loads((first.path.parent / "artifact.json").read_text())
    assert record["source_sha256"] == model.sha256 and record["converter"].startswith("mnn ")
    first.path.unlink()
    remade = artifact_for(model.path, model.sha256, "mnn")
    assert isinstance(remade, Conversion) and not remade.cached and remade.path.is_file()


def test_a_refusal_is_cached_too(zoo_exports):
    model = inspect_model(zoo_exports["mobilevit-xxs"])
    first = artifact_for(model.path, model.sha256, "ncnn")
    again = artifact_for(model.path, model.sha256, "ncnn")
    assert isinstance(first, Refusal) and isinstance(again, Refusal)
    assert again.cached and again.reason == first.reason and first.input_shape == "1x3x64x64"


def test_an_artifact_below_min_cosine_is_refused_with_its_figures(zoo_exports):
    model = inspect_model(zoo_exports["mobilevit-xxs"])
    made = artifact_for(model.path, model.sha256, "openvino")
    assert isinstance(made, Conversion) and made.cosine < 1.0
    refused = artifact_for(model.path, model.sha256, "openvino", min_cosine=1.0)
    assert isinstance(refused, Refusal) and refused.cosine == made.cosine
    assert "below --min-cosine 1.0" in refused.reason


def test_onnxruntime_measures_the_export_itself(zoo_exports):
    model = inspect_model(zoo_exports["mobileone-s0"])
    ((same, made),) = prepare_artifacts([model], ["onnxruntime"])
    assert made.path == model.path and with_runtimes([model], ["onnxruntime"], _fast()) == [model]


def test_runtime_names_are_checked_and_listed():
    assert parse_runtimes("mnn, onnxruntime,mnn") == ("mnn", "onnxruntime")
    with pytest.raises(Exception, match="unknown runtime 'tflite'"):
        parse_runtimes("tflite")
    facts = {f["name"]: f for f in runtime_facts()}
    assert set(facts) >= {"onnxruntime", *CONVERTING}
    assert all(facts[n]["version"] for n in CONVERTING)  # the test extra installs them
    assert facts["openvino"]["options"]["precision"]["default"] == "f32"


def test_the_command_line_compares_runtimes_start_to_end(zoo_exports, tmp_path):
    out = tmp_path / "r.csv"
    runner = CliRunner()
    done = runner.invoke(main, ["bench", *map(str, zoo_exports.values()), "--runtime",
                                "onnxruntime,openvino,mnn,ncnn", "--threads", "1", "--rounds", "3", "-o", str(out)])
    assert done.exit_code == 0, done.output
    rows = pd.read_csv(out)
    assert len(rows) == 8 and rows["unsupported"].notna().sum() == 1
    shown = runner.invoke(main, ["report", str(out), "--format", "markdown"])
    assert shown.exit_code == 0, shown.output
    assert "| mobileone-s0 (mnn) |" in shown.output  # labels say the runtime when rows mix them
    assert "### Latency by runtime" in shown.output


def test_a_runtime_missing_from_the_environment_gets_one_line_naming_the_extra(zoo_exports, tmp_path):
    """The real MNN is hidden from a child Python by a package of that name that cannot be imported."""
    hider = tmp_path / "hide"
    (hider / "MNN").mkdir(parents=True)
    (hider / "MNN" / "__init__.py").write_text("raise ImportError('No module named MNN')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hider), str(Path(__file__).parents[2])])}
    done = subprocess.run([sys.executable, "-m", "mbbench", "bench", str(zoo_exports["mobileone-s0"]),
                           "--runtime", "mnn", "--threads", "1", "--rounds", "2", "-o", str(tmp_path / "r.csv")],
                          capture_output=True, text=True, env=env, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'mbbench[mnn]'" in lines[0] and "Traceback" not in done.stderr


def test_runtimes_over_the_loopback_ssh_target_push_artifacts_by_sha256_and_record_refusals(zoo_exports, sshd,
                                                                                            tmp_path):
    """The device gets each runtime's artifact (an ncnn graph with its weights), measures it in that runtime;
    what ncnn cannot run is a row for the device too; a second run pushes nothing."""
    out = tmp_path / "r.csv"
    cache = tmp_path / "device"
    target = sshd.target("dev-a", cache)
    args = ["bench", *map(str, zoo_exports.values()), "--runtime", "onnxruntime,mnn,ncnn", "--threads", "1",
            "--rounds", "3", "--warmup", "0", "--target", target, "--ssh-config", str(sshd.config),
            "--remote-python", sshd.python, "-o", str(out)]
    done = CliRunner().invoke(main, args)
    assert done.exit_code == 0, done.output
    rows = pd.read_csv(out)
    assert set(rows["target"]) == {target}
    refused = rows[rows["unsupported"].notna()]
    assert list(zip(refused["model"], refused["runtime"])) == [("mobilevit-xxs", "ncnn")]
    measured = rows[rows["unsupported"].isna()]
    assert sorted(measured["runtime"]) == ["mnn", "mnn", "ncnn", "onnxruntime", "onnxruntime"]
    assert (measured["applied_threads"] == 1).all() and (measured["p50_ms"] > 0).all()
    pushed = sorted(p.suffix for p in (cache / "models").iterdir())
    assert pushed == [".bin", ".json", ".mnn", ".mnn", ".onnx", ".onnx", ".param"]
    before = {p.name: p.stat().st_mtime_ns for p in (cache / "models").iterdir()}
    again = CliRunner().invoke(main, [*args[:-1], str(tmp_path / "again.csv")])
    assert again.exit_code == 0, again.output
    assert {p.name: p.stat().st_mtime_ns for p in (cache / "models").iterdir()} == before  # nothing pushed again


def test_litert_refuses_a_file_no_manifest_names_and_converts_mobilevitv2_through_a_fold_it_runs(
        litert_converter, zoo_exports, tmp_path):
    from mbbench.export import export_onnx
    from tests.bench.tiny_onnx import conv_relu

    bare = inspect_model(conv_relu(tmp_path / "bare.onnx"))
    refused = artifact_for(bare.path, bare.sha256, "litert")
    assert isinstance(refused, Refusal) and "no mbbench manifest" in refused.reason
    v2 = inspect_model(export_onnx("mobilevitv2-050", resolution=64, output_dir=tmp_path).path)
    made = artifact_for(v2.path, v2.sha256, "litert")
    assert isinstance(made, Conversion) and made.cosine >= 0.9999 and made.path.suffix == ".tflite"
