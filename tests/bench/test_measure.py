import warnings

import pandas as pd
import pytest

import mbbench
from mbbench.measure import benchmark
from mbbench.bench.schema import RESULT_COLUMNS, SAMPLE_COLUMNS, samples_path
from mbbench.bench.session import ModelRunError
from mbbench.errors import UserInputError
from .tiny_onnx import broken

FAST = dict(rounds=3, warmup=0, isolate=False)


def test_benchmark_is_the_public_lazy_api():
    assert mbbench.benchmark is benchmark


def test_benchmark_returns_the_csv_schema(models, tmp_path):
    output = tmp_path / "r.csv"
    frame = benchmark([models["conv"], models["add"]], threads="1-2", output=output, **FAST)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(RESULT_COLUMNS)
    assert list(zip(frame["model"], frame["threads"])) == [("conv", 1), ("conv", 2), ("add", 1), ("add", 2)]
    assert (frame["rounds"] == 3).all() and frame.attrs["failures"] == []
    on_disk = pd.read_csv(output)
    assert list(on_disk.columns) == list(frame.columns)
    assert on_disk["mean_ms"].tolist() == pytest.approx(frame["mean_ms"].tolist(), abs=1e-6)


def test_benchmark_accepts_a_single_path_and_returns_samples(conv_model):
    frame, samples = benchmark(str(conv_model), threads=1, return_samples=True, **FAST)
    assert len(frame) == 1 and list(samples.columns) == list(SAMPLE_COLUMNS)
    assert samples["round"].tolist() == [1, 2, 3]
    assert samples["ms"].mean() == pytest.approx(frame["mean_ms"].iloc[0])


def test_benchmark_extra_columns_for_studies(models):
    frame = benchmark(
        [models["conv"], models["matmul"]], threads=1,
        extra_columns={models["conv"]: {"study": "fold", "value": "col2im"},
                       models["matmul"]: {"study": "fold", "value": "reshape"}},
        **FAST,
    )
    assert list(frame.columns[-2:]) == ["study", "value"]
    assert frame["value"].tolist() == ["col2im", "reshape"]


def test_benchmark_failure_policies(conv_model, tmp_path):
    junk = broken(tmp_path / "junk.onnx")
    with pytest.warns(RuntimeWarning, match="junk skipped: cannot load junk.onnx"):
        frame = benchmark([junk, conv_model], threads=1, **FAST)
    assert frame["model"].tolist() == ["conv"]
    assert frame.attrs["failures"][0]["model"] == "junk"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(benchmark([junk, conv_model], threads=1, on_error="ignore", **FAST)) == 1
    output = tmp_path / "r.csv"
    with pytest.raises(ModelRunError, match="1 model\\(s\\) failed, first junk"):
        benchmark([junk, conv_model], threads=1, on_error="raise", output=output, **FAST)
    assert len(pd.read_csv(output)) == 1  # the good model ran and was saved first
    with pytest.raises(UserInputError, match="on_error"):
        benchmark([conv_model], on_error="explode")


def test_benchmark_refuses_bad_input_without_writing(conv_model, tmp_path):
    output = tmp_path / "r.csv"
    for kwargs in ({"threads": "0"}, {"rounds": 1}, {"provider": "NopeExecutionProvider"},
                   {"input_shape": "1xq"}):
        with pytest.raises(UserInputError):
            benchmark([conv_model], output=output, **{**FAST, **kwargs})
    with pytest.raises(UserInputError, match="no such file"):
        benchmark(["nowhere/x.onnx"], output=output)
    assert not output.exists() and not samples_path(output).exists()
