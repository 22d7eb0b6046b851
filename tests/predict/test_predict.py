"""mbbench predict: kernels read off a graph under a device's fusion patterns, a predictor learned from real
profiles, saved as data and loaded again, and the command line over it."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from mbbench.bench.modelfile import inspect_model
from mbbench.bench.profiling import profile_model
from mbbench.errors import OptionError, UserInputError
from mbbench.predict.build import build_predictor, check_budget, predict_models
from mbbench.predict.kernels import CONV, MATMUL, OTHER, kernels, patterns_from_profiles
from mbbench.predict.model import Predictor
from mbbench.predict.variants import random_variants
from tests.cli._helpers import invoke


def conv_graph(path, channels=8, size=16, blocks=2, residual=True):
    """stem Conv(3->C, 3x3, stride 2)+Relu, then per block Conv(C->C, 3x3)+Relu(+Add of the block's input), a
    shape computation on constants only, GlobalAveragePool, Flatten, Gemm."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((channels, 3, 3, 3)).astype(np.float32) * 0.2, "w0"),
             numpy_helper.from_array(rng.standard_normal((10, channels)).astype(np.float32) * 0.2, "fc"),
             numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "shape_in")]
    nodes = [helper.make_node("Conv", ["image", "w0"], ["s"], name="/stem/Conv", pads=[1, 1, 1, 1], strides=[2, 2]),
             helper.make_node("Relu", ["s"], ["x0"], name="/stem/Relu"),
             helper.make_node("Mul", ["shape_in", "shape_in"], ["folded"], name="/const/Mul")]
    x = "x0"
    for b in range(blocks):
        inits.append(numpy_helper.from_array(rng.standard_normal((channels, channels, 3, 3)).astype(np.float32)
                                             * 0.1, f"w{b + 1}"))
        nodes += [helper.make_node("Conv", [x, f"w{b + 1}"], [f"c{b}"], name=f"/b{b}/Conv", pads=[1, 1, 1, 1]),
                  helper.make_node("Relu", [f"c{b}"], [f"r{b}"], name=f"/b{b}/Relu")]
        if residual:
            nodes.append(helper.make_node("Add", [f"r{b}", x], [f"a{b}"], name=f"/b{b}/Add"))
            x = f"a{b}"
        else:
            x = f"r{b}"
    nodes += [helper.make_node("GlobalAveragePool", [x], ["g"], name="/head/GlobalAveragePool"),
              helper.make_node("Flatten", ["g"], ["f"], name="/head/Flatten"),
              helper.make_node("Gemm", ["f", "fc"], ["out"], name="/head/Gemm", transB=1)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                              [1, 3, size * 2, size * 2])], [helper.make_tensor_value_info("out", TensorProto.FLOAT,
                              None), helper.make_tensor_value_info("folded", TensorProto.INT64, None)],
                              initializer=inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_kernels_follow_the_fusion_patterns_along_single_reader_chains(tmp_path):
    path = conv_graph(tmp_path / "g.onnx")
    plain = kernels(path)
    assert [k.pattern for k in plain.kernels] == ["Conv", "Relu", "Conv", "Relu", "Add", "Conv", "Relu", "Add",
                                                  "GlobalAveragePool", "Gemm"]  # Flatten is a view; Mul folded
    assert plain.folded == 1
    fused = kernels(path, [("Conv", "Relu"), ("Conv", "Relu", "Add")])
    # the stem's Relu output has two readers (the block's Conv and the residual Add): the chain stops there
    assert [k.pattern for k in fused.kernels] == ["Conv+Relu", "Conv+Relu+Add", "Conv+Relu+Add",
                                                  "GlobalAveragePool", "Gemm"]
    assert fused.kernels[1].sources == ("/b0/Conv", "/b0/Relu", "/b0/Add")
    stem = fused.kernels[0].features
    assert stem["cin"] == 3 and stem["cout"] == 8 and stem["k"] == 3 and stem["stride"] == 2
    assert stem["hout"] == stem["wout"] == 16 and stem["macs"] == 8 * 16 * 16 * 3 * 3 * 3
    assert fused.kernels[1].features["fused_add"] == 1.0 and fused.kernels[1].features["fused_act"] == 1.0
    assert [k.family for k in fused.kernels] == [CONV, CONV, CONV, OTHER, MATMUL]
    assert fused.macs == pytest.approx(sum(k.features["macs"] for k in fused.kernels))


def test_a_file_that_is_not_onnx_is_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(UserInputError, match="cannot read"):
        kernels(bad)


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """A predictor learned from real profiles of three graphs of other widths and depths (this machine)."""
    folder = tmp_path_factory.mktemp("learn")
    graphs = [conv_graph(folder / f"g{i}.onnx", channels=c, size=s, blocks=b)
              for i, (c, s, b) in enumerate([(8, 16, 2), (16, 24, 3), (24, 12, 4)])]
    profiles = [profile_model(inspect_model(g), threads=1, rounds=5, warmup=2, reference=True) for g in graphs]
    patterns = patterns_from_profiles(profiles)
    predictor = Predictor(device={"cpu_model": "test CPU"}, runtime={"name": "onnxruntime", "version": "1"},
                          threads=1, patterns=patterns)
    for graph, profile in zip(graphs, profiles):
        predictor.add(kernels(graph, patterns), profile, float(np.median(profile.plain_ms)), graph.stem)
    predictor.fit()
    return predictor, graphs, profiles, folder


def test_the_device_profiles_show_its_fusions(learned):
    predictor, *_ = learned
    assert ("Conv", "Relu") in predictor.patterns  # ORT's FusedConv on CPU


def test_every_measured_kernel_time_is_learned_and_a_prediction_holds_together(learned):
    predictor, graphs, profiles, folder = learned
    # every kernel the runtime timed went to one of ours, or (inserted by it) to the model's own overhead
    for model, profile in zip(predictor.models, profiles):
        assert model["kernel_ms"] + model["inserted_ms"] == pytest.approx(sum(n.mean_ms for n in profile.nodes))
    unseen = conv_graph(folder / "unseen.onnx", channels=12, size=20, blocks=3)
    prediction = predictor.predict(unseen, "unseen")
    assert prediction.model == "unseen" and prediction.predicted_ms > 0
    assert prediction.low_ms <= prediction.high_ms
    a, b, c = predictor._fitted["correction"]
    assert sum(k.predicted_ms for k in prediction.kernels) + b * len(prediction.kernels) + c == pytest.approx(
        prediction.predicted_ms)
    baseline = predictor.predict(unseen, fused=False)  # every op its own kernel: the Relus and Adds count again
    assert len(baseline.kernels) > len(prediction.kernels)


def test_a_saved_predictor_is_data_and_predicts_the_same_when_loaded(learned, tmp_path):
    predictor, graphs, *_ = learned
    path = predictor.save(tmp_path / "p.json")
    data = json.loads(path.read_text())
    assert data["format"] == "mbbench-predictor/1" and data["samples"] and data["models"]
    again = Predictor.load(path)
    assert [again.predict(g).predicted_ms for g in graphs] == pytest.approx(
        [predictor.predict(g).predicted_ms for g in graphs], rel=1e-12)


@pytest.mark.parametrize("damage, message", [
    (lambda d: d.update(format="pickle"), "not an mbbench-predictor/1 file"),
    (lambda d: d["samples"][0].update(ms=float("nan")), "damaged"),
    (lambda d: d["samples"][0].update(family="gpu"), "kernel family"),
    (lambda d: d.pop("models"), "damaged"),
])
def test_a_damaged_predictor_file_is_refused_in_one_line(learned, tmp_path, damage, message):
    predictor, *_ = learned
    data = predictor.to_dict()
    data["samples"] = [dict(s) for s in data["samples"]]
    damage(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(UserInputError, match=message):
        Predictor.load(path)


def test_variants_are_seeded_and_never_the_zoo(tmp_path):
    from mbbench.models.mobilenetv3 import MOBILENETV3_VARIANTS
    from mbbench.models.mobileone import MOBILEONE_VARIANTS
    from mbbench.models.mobilevit import MOBILEVIT_VARIANTS

    first, again = random_variants(30, seed=3), random_variants(30, seed=3)
    assert first == again and first != random_variants(30, seed=4)
    assert len({v.name for v in first}) == 30
    zoo = [json.dumps(c, sort_keys=True, default=list) for table in (MOBILEONE_VARIANTS, MOBILENETV3_VARIANTS,
                                                                    MOBILEVIT_VARIANTS) for c in table.values()]
    assert not any(json.dumps(v.config, sort_keys=True, default=list) in zoo for v in first)
    assert {v.family for v in first} == {"mobileone", "mobilenetv3", "mobilevit"}


def test_options_out_of_range_are_refused():
    for budget in (0, -1, float("nan"), 10_000, True):
        with pytest.raises(OptionError):
            check_budget(budget)
    with pytest.raises(UserInputError, match="--runtime openvino cannot be profiled"):
        build_predictor(budget_minutes=1, runtime="openvino")


def test_the_command_line_predicts_as_json_and_refuses_in_one_line(learned, tmp_path):
    predictor, graphs, *_ = learned
    path = predictor.save(tmp_path / "p.json")
    result = invoke("predict", str(graphs[0]), str(graphs[1]), "--predictor", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [r["model"] for r in rows] == ["g0", "g1"]
    assert all(math.isfinite(r["predicted_ms"]) and r["predicted_ms"] > 0 and r["kernels"] for r in rows)
    table = invoke("predict", str(graphs[0]), "--predictor", str(path))
    assert table.exit_code == 0 and "predicted latency on test CPU" in table.stdout
    import csv
    import io

    as_csv = list(csv.DictReader(io.StringIO(invoke("predict", str(graphs[0]), "--predictor", str(path),
                                                    "--format", "csv").stdout)))
    assert [r["model"] for r in as_csv] == ["g0"]
    assert float(as_csv[0]["predicted_ms"]) == pytest.approx(rows[0]["predicted_ms"], abs=1e-3)
    markdown = invoke("predict", str(graphs[0]), "--predictor", str(path), "--format", "markdown").stdout
    assert "| g0 | " in markdown and "Predicted latency on test CPU" in markdown
    for args, status, message in [
        (["predict"], 2, "name the models to predict"),
        (["predict", str(graphs[0]), "--predictor", str(tmp_path / "none.json")], 1, "does not exist"),
        (["predict", "build", "--budget", "0"], 2, "budget must be above 0"),
        (["predict", "build", "--runtime", "mnn", "--budget", "1"], 1, "cannot be profiled"),
    ]:
        refused = invoke(*args)
        assert refused.exit_code == status, refused.output
        assert message in refused.output and "Traceback" not in refused.output


@pytest.mark.slow
def test_a_predictor_is_built_from_generated_variants_and_predicts_a_zoo_export(tmp_path):
    report = build_predictor(budget_minutes=10, max_variants=3, rounds=3, warmup=1, workdir=tmp_path)
    predictor = report.predictor
    assert len(report.profiled) == 3 and predictor.samples
    assert predictor.device["cpu_model"] and predictor.runtime["name"] == "onnxruntime"
    from mbbench.export import export_onnx

    made = export_onnx("mobileone-s0", output_dir=tmp_path / "zoo", resolution=128)
    (prediction,) = predict_models([made.path], predictor, ["mobileone-s0"])
    assert 0 < prediction.predicted_ms < 1e4 and prediction.kernels


@pytest.mark.slow
def test_a_predictor_is_built_on_a_target(sshd, tmp_path):
    from mbbench.cli.options import remote_run

    remote = remote_run([sshd.target("dev-a", tmp_path / "cache")], sshd.config, sshd.python)
    report = build_predictor(budget_minutes=10, max_variants=1, rounds=2, warmup=0, remote=remote,
                             workdir=tmp_path)
    assert report.predictor.device["target"] == sshd.target("dev-a", tmp_path / "cache")
    assert report.predictor.samples


def test_a_matrix_product_counts_its_own_operands_whichever_is_the_constant(tmp_path):
    """Mobile-Former's bridges multiply a constant-shaped token matrix by the feature map: MACs come from the
    output's shape and A's contraction size (its MACs read 1.98 G for a 92 M model before)."""
    tokens = numpy_helper.from_array(np.ones((2, 6, 16), np.float32), "tokens")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["tokens", "x"], ["y"], name="/bridge/MatMul")], "m",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 16, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[tokens])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "m.onnx")
    (kernel,) = kernels(tmp_path / "m.onnx").kernels
    assert kernel.family == MATMUL
    assert (kernel.features["m"], kernel.features["kdim"], kernel.features["n"], kernel.features["batch"]) == (
        6, 16, 32, 2)
    assert kernel.features["macs"] == 2 * 6 * 32 * 16


def test_zoo_macs_read_off_the_graph_are_the_registry_counts(tmp_path):
    """The kernels' MACs of a real export equal what `mbbench list` counts from the PyTorch model."""
    from mbbench.export import export_onnx

    for name in ("mobileone-s0", "mobilevit-xxs", "mobileformer-26m"):
        made = export_onnx(name, output_dir=tmp_path)
        assert kernels(made.path).macs == pytest.approx(made.macs, rel=0.02), name
