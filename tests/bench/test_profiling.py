"""mbbench profile's core: the trace parser (exact numbers on a hand-written trace), module paths and blocks, the
graph mapping (fused kernels), and real ORT profiles of a tiny graph whose node names are module paths."""

from __future__ import annotations

import json
import math
from pathlib import Path

import onnx
import pytest

from mbbench.bench import profiling
from mbbench.bench.attribution import (
    ROOT_BLOCK,
    Graph,
    GraphNode,
    block_name,
    foreign_path,
    map_graphs,
    module_path,
    read_graph,
    read_trace,
)
from mbbench.bench.environment import usable_cores
from mbbench.bench.modelfile import ModelFile
from mbbench.bench.profiling import Profile, ProfileError, build_profile, profile_model, run_profile_job
from mbbench.errors import UserInputError

from .named_onnx import ATTN, named_graph
from .tiny_onnx import broken


def event(cat, name, ts, dur, **args):
    return {"cat": cat, "pid": 1, "tid": 1, "ts": ts, "dur": dur, "ph": "X", "name": name, "args": args}


CPU = {"provider": "CPUExecutionProvider"}
#: One warm-up run (dropped), then two runs; the MatMul runs twice in the last one.
TRACE = [
    event("Session", "model_loading_uri", 0, 50),
    event("Session", "session_initialization", 50, 250),
    event("Node", "/layer_1/conv/Conv_kernel_time", 310, 40, op_name="Conv", **CPU),
    event("Session", "SequentialExecutor::Execute", 305, 60),
    event("Session", "model_run", 300, 70),
    event("Node", "/layer_1/conv/Conv_fence_before", 409, 0, op_name="Conv"),  # older ORT: not a kernel time
    event("Node", "/layer_1/conv/Conv_kernel_time", 410, 30, op_name="Conv", **CPU),
    event("Node", "/layer_3/global_rep/attn/MatMul_kernel_time", 445, 20, op_name="MatMul", **CPU),
    event("Session", "SequentialExecutor::Execute", 405, 65),
    event("Session", "model_run", 400, 80),
    event("Node", "/layer_1/conv/Conv_kernel_time", 510, 34, op_name="Conv", **CPU),
    event("Node", "/layer_3/global_rep/attn/MatMul_kernel_time", 550, 16, op_name="MatMul", **CPU),
    event("Node", "/layer_3/global_rep/attn/MatMul_kernel_time", 570, 10, op_name="MatMul", **CPU),
    event("Session", "SequentialExecutor::Execute", 505, 80),
    event("Session", "model_run", 500, 100),
]
FILE = ModelFile(path=Path("net.onnx"), label="net", sha256="0" * 64, opset=13)


def test_the_trace_parser_drops_the_warm_up_and_sums_each_kernel():
    times = read_trace(TRACE, skip=1)
    assert times.runs_us == (80.0, 100.0)
    assert times.execute_us == (65.0, 80.0)
    assert times.session_us == 250.0 and times.runs_seen == 3
    (conv, matmul) = times.kernels
    assert (conv.node, conv.op_type, conv.provider, conv.total_us, conv.calls) == (
        "/layer_1/conv/Conv", "Conv", "CPUExecutionProvider", 64.0, 2)
    assert (matmul.node, matmul.total_us, matmul.calls) == ("/layer_3/global_rep/attn/MatMul", 46.0, 3)


def test_a_profile_from_the_trace_has_exact_means_shares_and_between_ops():
    p = build_profile(FILE, read_trace(TRACE, skip=1), None, threads=1, rounds=2, warmup=1)
    assert p.end_to_end_ms == pytest.approx(0.090)
    conv, matmul = p.nodes
    assert conv.mean_ms == pytest.approx(0.032) and conv.calls == 1
    assert matmul.mean_ms == pytest.approx(0.023) and matmul.calls == 1.5
    assert p.node_ms == pytest.approx(0.055)
    assert p.between_ops_ms == pytest.approx(0.035)
    assert p.coverage == pytest.approx(0.055 / 0.090)
    assert conv.share == pytest.approx(0.032 / 0.090)
    assert sum(n.share for n in p.nodes) + p.between_ops_share == pytest.approx(1.0, abs=1e-12)
    assert p.outside_executor_ms == pytest.approx(0.090 - 0.0725)
    assert [(g.name, round(g.mean_ms, 6), g.calls) for g in p.by_block()] == [
        ("layer_1/conv", 0.032, 1.0), ("layer_3/global_rep", 0.023, 1.5)]
    assert [g.name for g in p.by_op()] == ["Conv", "MatMul"]
    assert [n.node for n in p.top(1)] == ["/layer_1/conv/Conv"]
    assert p.session_ms == 0.25 and p.run_ms == (0.08, 0.1)


@pytest.mark.parametrize("name, path, depth1, depth2, depth3", [
    (f"{ATTN}.0/attn/MatMul", ("layer_3.1", "global_rep.0", "attn"), "layer_3.1", "layer_3.1/global_rep",
     "layer_3.1/global_rep/attn"),
    ("/stage2/stage2.3/reparam_conv/Conv", ("stage2.3", "reparam_conv"), "stage2.3", "stage2.3/reparam_conv",
     "stage2.3/reparam_conv"),
    ("/features/features.3/block/block.0/block.0.0/Conv", ("features.3", "block.0.0"), "features.3",
     "features.3/block", "features.3/block"),
    ("/classifier/fc/Gemm", ("classifier", "fc"), "classifier", "classifier/fc", "classifier/fc"),
    ("/Flatten", (), ROOT_BLOCK, ROOT_BLOCK, ROOT_BLOCK),
])  # fmt: skip
def test_module_paths_and_blocks(name, path, depth1, depth2, depth3):
    assert module_path(name) == path
    assert [block_name(path, d) for d in (1, 2, 3)] == [depth1, depth2, depth3]


def test_names_without_a_path():
    assert module_path("Gemm_37") is None
    assert foreign_path("resnetv17_stage1_conv0_fwd") == ("resnetv17", "stage1", "conv0")
    assert block_name(foreign_path("resnetv17_stage1_conv0_fwd"), 2) == "resnetv17/stage1"


def test_the_graph_reader_agrees_with_onnx(tmp_path):
    path = named_graph(tmp_path / "named.onnx")
    graph = read_graph(path.read_bytes())
    model = onnx.load(str(path))
    assert [(n.name, n.op_type, n.inputs, n.outputs) for n in graph.nodes] == [
        (n.name, n.op_type, tuple(n.input), tuple(n.output)) for n in model.graph.node]
    assert graph.inputs == {"image"}  # the initializers are constants, not inputs
    with pytest.raises(ValueError):
        read_graph(b"not a model")


def node(name, op, inputs, outputs, domain=""):
    return GraphNode(name, op, domain, tuple(inputs), tuple(outputs))


ORIGINAL = Graph((
    node("/layer_1/conv/Conv", "Conv", ["x", "w"], ["c"]),
    node("/layer_1/act/Relu", "Relu", ["c"], ["r"]),
    node("/layer_2/conv/Conv", "Conv", ["r", "w2"], ["c2"]),
    node("/layer_2/Add", "Add", ["c2", "r"], ["a"]),
    node("/layer_2/Constant", "Constant", [], ["k"]),
    node("Reshape_5", "Reshape", ["a", "k"], ["y"]),
), frozenset({"x"}))


def test_a_fused_conv_covers_the_relu_and_a_tool_named_node_takes_its_producers_block():
    optimized = Graph((
        node("/layer_1/conv/Conv", "FusedConv", ["x", "w"], ["r"], "com.microsoft"),
        node("/layer_2/conv/Conv", "Conv", ["r", "w2"], ["c2"]),
        node("/layer_2/Add", "Add", ["c2", "r"], ["a"]),
        node("Reshape_5", "Reshape", ["a", "k"], ["y"]),
    ))
    mapping = map_graphs(ORIGINAL, optimized)
    fused = mapping.nodes["/layer_1/conv/Conv"]
    assert fused.covers == ("Conv", "Relu") and fused.path == ("layer_1", "conv") and not fused.inherited
    reshape = mapping.nodes["Reshape_5"]
    assert reshape.covers == ("Reshape",) and reshape.path == ("layer_2",) and reshape.inherited
    assert (mapping.folded, mapping.untraced, mapping.original_nodes) == (1, 0, 6)


def test_nchwc_kernels_named_by_their_output_cover_the_relu_and_the_residual_add():
    """ORT's NCHWc Conv is named <output>_nchwc; the second one adds the residual (a 'Sum' input) and its result
    leaves the NCHWc layout through a ReorderOutput, which computes nothing of the model."""
    optimized = Graph((
        node("r_nchwc", "Conv", ["x", "w"], ["t1"], "com.microsoft.nchwc"),
        node("c2_nchwc", "Conv", ["t1", "w2", "", "t1"], ["t2"], "com.microsoft.nchwc"),
        node("ReorderOutput", "ReorderOutput", ["t2"], ["a"], "com.microsoft.nchwc"),
        node("Reshape_5", "Reshape", ["a", "k"], ["y"]),
    ))
    mapping = map_graphs(ORIGINAL, optimized).nodes
    assert mapping["r_nchwc"].covers == ("Conv", "Relu") and mapping["r_nchwc"].path == ("layer_1", "conv")
    assert mapping["c2_nchwc"].covers == ("Conv", "Add") and mapping["c2_nchwc"].path == ("layer_2", "conv")
    assert mapping["ReorderOutput"].covers == () and mapping["ReorderOutput"].path == ("layer_2",)


@pytest.fixture(scope="module")
def named(tmp_path_factory):
    return named_graph(tmp_path_factory.mktemp("named") / "named.onnx")


@pytest.fixture(scope="module")
def profiled(named):
    return {level: profile_model(named, 1, rounds=3, warmup=1, graph_opt=level, reference=False)
            for level in ("disable", "all")}


def check_sums(p: Profile) -> None:
    assert len(p.run_ms) == p.rounds and len({n.node for n in p.nodes}) == len(p.nodes)
    assert sum(n.share for n in p.nodes) + p.between_ops_share == pytest.approx(1.0, abs=1e-9)
    assert p.coverage == pytest.approx(p.node_ms / p.end_to_end_ms)
    assert p.between_ops_ms == pytest.approx(p.end_to_end_ms - p.node_ms)
    assert 0 < p.coverage <= 1
    for groups in (p.by_op(), p.by_block()):
        assert sum(g.mean_ms for g in groups) == pytest.approx(p.node_ms)
        assert sum(g.share for g in groups) + p.between_ops_share == pytest.approx(1.0, abs=1e-9)
    # every original node is covered by one kernel, or folded at load, or untraced: never by two
    assert sum(len(n.covers) for n in p.nodes) + p.folded + p.untraced == p.original_nodes


def test_without_graph_optimisation_every_node_is_its_own_kernel_in_its_module_block(profiled):
    p = profiled["disable"]
    check_sums(p)
    assert p.kernels_per_run == 11 and all(n.calls == 1 and n.covers == (n.op_type,) for n in p.nodes)
    blocks = {n.node: n.block for n in p.nodes}
    assert blocks["/layer_1/conv/Conv"] == "layer_1/conv" and blocks["/layer_1/act/Relu"] == "layer_1/act"
    assert blocks["/layer_2/layer_2.0/Add"] == "layer_2.0"
    assert blocks[f"{ATTN}.0/attn/Softmax"] == blocks[f"{ATTN}.1/attn/MatMul"] == "layer_3.1/global_rep"
    assert blocks["/Flatten"] == ROOT_BLOCK
    reshape = next(n for n in p.nodes if n.node == "Reshape_5")
    assert reshape.block == "layer_2.0" and reshape.inherited  # no path of its own: its producer's block
    assert [g.name for g in p.by_block()] == ["layer_1/conv", "layer_1/act", "layer_2.0/conv", "layer_2.0",
                                              "layer_3.1/global_rep", "classifier", ROOT_BLOCK]
    assert [g.name for g in p.by_block(depth=1)] == ["layer_1", "layer_2.0", "layer_3.1", "classifier", ROOT_BLOCK]
    assert "layer_3.1/global_rep/attn" in [g.name for g in p.by_block(depth=3)]


def test_ort_fuses_the_conv_and_relu_into_one_kernel_that_is_counted_once(profiled):
    p = profiled["all"]
    check_sums(p)
    fused = [n for n in p.nodes if "Relu" in n.covers]
    assert len(fused) == 1, [(n.node, n.covers) for n in p.nodes]
    (conv,) = fused
    # FusedConv, or on an AVX machine its NCHWc form (reported as Conv, in domain com.microsoft.nchwc)
    assert conv.covers == ("Conv", "Relu") and conv.op_type in ("FusedConv", "Conv") and conv.fused
    assert conv.block == "layer_1/conv" and conv.covers_text == "Conv+Relu"
    assert not any(n.op_type == "Relu" for n in p.nodes)
    inserted = [n for n in p.nodes if not n.covers]
    assert all(n.covers_text == "(inserted by ORT)" for n in inserted)
    assert {n.block for n in p.nodes if "MatMul" in n.covers} == {"layer_3.1/global_rep"}


def test_the_profile_survives_json_and_the_device_job(named):
    p = profile_model(named, 1, rounds=2, warmup=0, reference=True)
    assert len(p.plain_ms) == 2 and p.plain_ms_mean > 0
    again = Profile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert again == p and again.trace == p.trace and json.loads(p.trace)
    events = []
    job = {"kind": "profile", "models": [{"path": str(named), "label": "named", "sha256": "a" * 64}],
           "options": {"threads": [1], "rounds": 2, "warmup": 0, "reference": False}}
    assert run_profile_job(job, lambda kind, **fields: events.append({"event": kind, **fields})) == 0
    assert [e["event"] for e in events] == ["profile", "done"]
    remote = Profile.from_dict(json.loads(json.dumps(events[0]["profile"])))
    assert remote.model == "named" and remote.sha256 == "a" * 64 and remote.rounds == 2


def test_more_threads_than_cores_is_flagged_not_hidden(named):
    cores = usable_cores()
    p = profile_model(named, cores + 1, rounds=2, warmup=0, reference=False)
    assert p.oversubscribed and p.cores == cores
    assert any("oversubscribed" in note for note in p.notes)


@pytest.mark.parametrize("options, message", [
    ({"rounds": 1}, "rounds must be from 2"),
    ({"warmup": -1}, "warmup must be from 0"),
    ({"depth": 0}, "depth must be from 1 to 32"),
    ({"threads": 0}, "thread counts start at 1"),
    ({"threads": "1,2"}, "one thread count"),
    ({"graph_opt": "max"}, "graph_opt must be one of"),
])  # fmt: skip
def test_options_out_of_range_are_refused_before_any_session(named, options, message):
    with pytest.raises(UserInputError, match=message):
        profile_model(named, **{"threads": 1, **options})


def test_a_broken_file_is_one_line(tmp_path):
    with pytest.raises(ProfileError, match="cannot load bad.onnx") as info:
        profile_model(broken(tmp_path / "bad.onnx"), reference=False)
    assert "\n" not in str(info.value)


def test_rounds_beyond_the_profilers_event_limit_are_refused_with_the_most_that_fit(named, monkeypatch):
    monkeypatch.setattr(profiling, "MAX_TRACE_EVENTS", 60)
    with pytest.raises(UserInputError, match=r"records at most 60 events: use --rounds \d+ or fewer"):
        profile_model(named, rounds=20, warmup=0, reference=False)


def test_shares_are_nan_free_and_finite(profiled):
    for p in profiled.values():
        assert all(math.isfinite(n.share) and n.share >= 0 for n in p.nodes)
