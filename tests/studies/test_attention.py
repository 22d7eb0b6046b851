"""The attention study's graphs at small k, and its analysis (slopes, crossover) on known curves."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

import mbbench
from mbbench.errors import UserInputError
from mbbench.models.mobilevit import MultiHeadAttention
from mbbench.models.mobilevitv2 import LinearSelfAttention
from mbbench.studies.attention import (
    TokenAttention,
    analyse,
    build_network,
    crossover,
    loglog_slope,
    parse_tokens,
)


@pytest.mark.parametrize("tokens, size", [(1, 32), (16, 32), (64, 32), (100, 40), (1024, 32), (4096, 64)])
def test_image_size_gives_enough_tokens(tokens, size):
    assert TokenAttention.image_size(tokens) == size
    grid = math.ceil(math.sqrt(tokens))
    assert (size // (size // grid)) ** 2 >= tokens


@pytest.mark.parametrize("kind, module, shape", [("mha", MultiHeadAttention, (1, 50, 32)),
                                                 ("separable", LinearSelfAttention, (1, 32, 1, 50))])  # fmt: skip
def test_the_zoo_module_sees_k_tokens(kind, module, shape):
    net = build_network(kind, 50, dim=32)
    assert isinstance(net.attention, module)
    seen = []
    net.attention.register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    with torch.no_grad():
        out = net(torch.randn(1, 3, net.resolution, net.resolution))
    assert seen == [shape] and out.shape == (1, 32)


@pytest.mark.parametrize("kind", ["mha", "separable"])
@pytest.mark.parametrize("tokens", [16, 64])
def test_graphs_export_and_run_at_small_k(kind, tokens, tmp_path):
    net = build_network(kind, tokens, dim=32)
    result = mbbench.export_onnx(net, tmp_path / "a.onnx", name=f"attn-{kind}-k{tokens}", opset=17,
                                 resolution=net.resolution)  # fmt: skip
    model = onnx.load(result.path)
    ops = {node.op_type for node in model.graph.node}
    assert "Softmax" in ops
    assert ("MatMul" in ops) if kind == "mha" else ("ReduceSum" in ops)  # q k^T v, or one weighted key sum
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": np.ones((1, 3, net.resolution, net.resolution), np.float32)})
    assert out.shape == (1, 32)


def test_mha_work_grows_with_k_squared_and_separable_linearly():
    from mbbench.models import count_macs

    dim = 32  # k well above 2 dim, where MHA's k^2 term dominates
    macs = {(kind, k): count_macs(build_network(kind, k, dim), TokenAttention.image_size(k))
            for kind in ("mha", "separable") for k in (256, 1024)}  # fmt: skip
    # the embedding is the same R^2 * 3 * dim for both kinds at R = 32; take it out
    embed = 32 * 32 * 3 * dim
    growth = {kind: (macs[(kind, 1024)] - embed) / (macs[(kind, 256)] - embed) for kind in ("mha", "separable")}
    assert growth["mha"] > 10  # between 4 (linear) and 16 (quadratic), near 16
    assert growth["separable"] == pytest.approx(4, rel=0.01)


def test_slope_of_known_power_laws():
    k = np.array([64, 256, 1024, 4096])
    assert loglog_slope(k, 3e-6 * k**2.0) == pytest.approx(2.0)
    assert loglog_slope(k, 0.01 * k) == pytest.approx(1.0)
    assert math.isnan(loglog_slope([64], [1.0]))


def test_crossover_is_the_last_sign_change_interpolated_in_log_log():
    k = [16, 64, 256, 1024]
    separable = [1.0, 1.0, 1.0, 1.0]
    mha = [0.5, 0.5, 2.0, 4.0]  # log ratio -0.69 at 64, +0.69 at 256: crosses midway in log k, k = 128
    assert crossover(k, mha, separable) == pytest.approx(128.0)
    assert crossover(k, [2.0, 0.5, 0.5, 2.0], separable) == pytest.approx(512.0)  # two crossings: the last
    assert crossover(k, [2.0] * 4, separable) is None
    assert crossover(k, [0.5, 1.0, 2.0, 3.0], separable) == 64


def test_analyse_reports_slopes_and_crossover():
    rows = []
    for threads in (1, 2):
        for k in (64, 256, 1024, 4096):
            for kind, ms in (("mha", 0.05 + 2e-6 * k**2 / threads), ("separable", 0.05 + 1e-3 * k / threads)):
                rows.append({"model": f"attn-{kind}-k{k}", "factor": kind, "value": k, "threads": threads,
                             "p50_ms": ms, "mean_ms": ms, "std_ms": 0.01, "min_ms": ms, "p90_ms": ms,
                             "macs": k, "oversubscribed": False, "unstable": False})  # fmt: skip
    table, facts = analyse(pd.DataFrame(rows))
    assert list(table["k"].unique()) == [64, 256, 1024, 4096]
    slopes = {(s["threads"], s["kind"]): s for s in facts["slopes"]}
    assert slopes[(1, "mha")]["tail_slope"] == pytest.approx(2.0, abs=0.05)
    assert slopes[(1, "separable")]["tail_slope"] == pytest.approx(1.0, abs=0.1)
    assert slopes[(1, "mha")]["slope"] < slopes[(1, "mha")]["tail_slope"]  # fixed costs flatten small k
    crossings = {c["threads"]: c for c in facts["crossovers"]}
    assert 256 < crossings[1]["k"] < 1024
    assert "separable above" in crossings[1]["verdict"]


@pytest.mark.parametrize("spec, message", [("0", "outside 1-8192"), ("64,abc", "not a whole number"),
                                           ("", "no token count"), ("9000", "outside")])  # fmt: skip
def test_bad_token_counts(spec, message):
    with pytest.raises(UserInputError, match=message):
        parse_tokens(spec)


def test_token_counts_are_sorted_and_unique():
    assert parse_tokens("1024, 64,256,64") == [64, 256, 1024]
    assert parse_tokens([16, 4]) == [4, 16]
