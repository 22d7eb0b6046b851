import gc
import weakref

import numpy as np
import onnxruntime as ort
import pytest

from mbbench.bench import session as core
from mbbench.bench.options import BenchConfig, parse_input_shapes
from mbbench.bench.session import ModelRunError, ProviderError, check_provider, make_inputs, measure, timed_rounds
from .tiny_onnx import add_two, broken, fails_at_run

FAST = dict(rounds=3, warmup=1, isolate=False)


def test_measure_static_model(conv_model):
    m = measure(conv_model, 1, BenchConfig(**FAST))
    assert len(m.samples_ns) == 3 and all(isinstance(s, int) and s > 0 for s in m.samples_ns)
    assert m.samples_ms == pytest.approx(np.array(m.samples_ns) / 1e6)
    assert m.input_shape == "1x3x16x16"
    assert m.session_ms > 0 and m.first_run_ms > 0
    assert m.provider == "CPUExecutionProvider" and m.onnxruntime_version == ort.__version__


def test_dynamic_dims_default_to_one_and_follow_input_shape(models):
    assert measure(models["matmul"], 1, BenchConfig(**FAST)).input_shape == "1x8"
    assert measure(models["matmul"], 1, BenchConfig(**FAST, input_shapes=("batch=5",))).input_shape == "5x8"
    assert measure(models["matmul"], 1, BenchConfig(**FAST, input_shapes=("x:7x8",))).input_shape == "7x8"


def test_several_inputs_are_all_fed_and_described(models):
    m = measure(models["add"], 2, BenchConfig(**FAST, input_shapes=("a:4x3",)))
    assert m.input_shape == "a:4x3;b:1x3"


def test_input_shape_conflicting_with_a_fixed_dim_fails_that_model(models):
    with pytest.raises(ModelRunError, match="fixed size 8 on axis 1"):
        measure(models["matmul"], 1, BenchConfig(**FAST, input_shapes=("x:2x9",)))


def test_inputs_are_seeded_realistic_and_typed(tmp_path):
    from mbbench.runtimes.onnxruntime import input_specs

    inputs = input_specs(ort.InferenceSession(str(add_two(tmp_path / "add.onnx"))))
    shapes = parse_input_shapes("a:64x3")
    feed, described = make_inputs(inputs, shapes, seed=3)
    again, _ = make_inputs(inputs, shapes, seed=3)
    other, _ = make_inputs(inputs, shapes, seed=4)
    assert described == "a:64x3;b:1x3"
    assert feed["a"].dtype == np.float32 and feed["b"].dtype == np.int64
    assert feed["a"].shape == (64, 3) and feed["b"].shape == (1, 3)
    assert np.array_equal(feed["a"], again["a"]) and not np.array_equal(feed["a"], other["a"])
    assert np.count_nonzero(feed["a"]) == feed["a"].size  # not zeros
    assert 0.5 < feed["a"].std() < 1.5 and abs(feed["a"].mean()) < 0.5  # normalised-image-like
    assert feed["b"].min() >= 0 and feed["b"].max() <= 9


def test_broken_file_is_a_one_line_model_error(tmp_path):
    with pytest.raises(ModelRunError, match="^cannot load junk.onnx: ") as info:
        measure(broken(tmp_path / "junk.onnx"), 1, BenchConfig(**FAST))
    assert "\n" not in str(info.value)


def test_model_failing_at_run_time_is_a_model_error(tmp_path):
    with pytest.raises(ModelRunError, match="^cannot run reshape.onnx: "):
        measure(fails_at_run(tmp_path / "reshape.onnx"), 1, BenchConfig(**FAST))


def test_provider_check_lists_what_is_available():
    check_provider("CPUExecutionProvider")
    with pytest.raises(ProviderError, match="has no FooExecutionProvider; use one of: .*CPUExecutionProvider"):
        check_provider("FooExecutionProvider")


def test_session_options_follow_the_config():
    options = core.session_options(3, BenchConfig(graph_opt="basic", spinning=False, inter_threads=2))
    assert options.intra_op_num_threads == 3 and options.inter_op_num_threads == 2
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    assert options.execution_mode == ort.ExecutionMode.ORT_PARALLEL
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    default = core.session_options(1, BenchConfig())
    assert default.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert default.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL


def test_only_one_session_is_alive_at_a_time(models, monkeypatch):
    """Sessions are released before measure() returns or raises, also for failing models."""
    alive = weakref.WeakSet()
    peak = []
    real = ort.InferenceSession

    def tracking(*args, **kwargs):
        session = real(*args, **kwargs)
        alive.add(session)
        peak.append(len(alive))
        return session

    import mbbench.runtimes.onnxruntime as ort_runtime

    monkeypatch.setattr(ort_runtime.ort, "InferenceSession", tracking)
    config = BenchConfig(**FAST, input_shapes=("x:2x9",))
    for path in (models["conv"], models["matmul"], models["add"], models["conv"]):
        try:
            measure(path, 1, config)
        except ModelRunError:
            pass  # matmul refuses the shape after its session was created
        gc.collect()
        assert len(alive) == 0
    assert peak == [1, 1, 1, 1]


class FakeClock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def test_timed_rounds_times_run_alone_and_honours_min_time(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(core.time, "perf_counter_ns", clock)

    def run():
        clock.now += 1_000_000  # each run takes 1 ms of fake time

    samples = timed_rounds(run, rounds=3)
    assert list(samples) == [1_000_000] * 3
    samples = timed_rounds(run, rounds=2, min_time=0.0105)
    assert len(samples) == 11  # rounds reached after 2 ms, min_time after 11
    samples = timed_rounds(run, rounds=20, min_time=0.005)
    assert len(samples) == 20


def test_timed_rounds_pauses_the_collector_and_restores_it():
    states = []
    assert gc.isenabled()
    timed_rounds(lambda: states.append(gc.isenabled()), rounds=2)
    assert states == [False, False] and gc.isenabled()


def test_a_huge_static_input_is_refused_before_it_is_allocated(tmp_path):
    # issue 20: --input-shape is bounded to 2**31 elements; a shape fixed in the file must be too
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "huge",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 100_000, 100_000])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 100_000, 100_000])])
    path = tmp_path / "huge.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), path)
    with pytest.raises(ModelRunError, match=r"input 'x' of shape 1x3x100000x100000 has 30,000,000,000 elements, "
                                            r"more than the limit of 2\*\*31"):
        measure(path, 1, BenchConfig(threads=1, **FAST))
