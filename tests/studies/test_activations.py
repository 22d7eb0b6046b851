"""The activation study's networks: the papers' activations against plain loop references, shapes, exports."""

from __future__ import annotations

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import mbbench
from mbbench.studies.activations import (
    ACTIVATIONS,
    ARelu,
    DynamicReLU,
    DynamicShiftMax,
    PlainCNN,
    build_network,
)

from ..conftest import rel_err


def _fc(x: list[float], layer: torch.nn.Linear) -> list[float]:
    weight, bias = layer.weight.tolist(), layer.bias.tolist()
    return [sum(w * v for w, v in zip(row, x)) + b for row, b in zip(weight, bias)]


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _randomise(module: torch.nn.Module, seed: int = 1) -> None:
    # Large enough weights that the hyper-functions move the coefficients well away from their initial values.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.7)


# --- ARelu ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha, beta", [(0.90, 2.0), (1.7, -0.4), (-0.2, 0.3)])
def test_arelu_matches_the_papers_piecewise_definition(alpha, beta):
    module = ARelu(alpha, beta)
    x = torch.randn(2, 3, 4, 5, generator=torch.Generator().manual_seed(0)) * 3
    expected = torch.empty_like(x)
    a = min(max(alpha, 0.01), 0.99)
    for index, value in np.ndenumerate(x.numpy()):
        expected[index] = float((1 + _sigmoid(beta)) * value if value > 0 else a * value)
    with torch.no_grad():
        assert rel_err(module(x), expected) < 1e-6


# --- Dynamic ReLU --------------------------------------------------------------------------------------------


def _dyrelu_reference(module: DynamicReLU, x: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = x.shape
    k = module.pieces
    out = torch.empty_like(x)
    for b in range(batch):
        pooled = [float(x[b, c].mean()) for c in range(channels)]
        hidden = [max(0.0, v) for v in _fc(pooled, module.fc1)]
        theta = [2 * _sigmoid(v) - 1 for v in _fc(hidden, module.fc2)]
        for c in range(channels):
            group = 0 if module.variant == "A" else c
            t = theta[group * 2 * k : (group + 1) * 2 * k]
            slopes = [(1.0 if j == 0 else 0.0) + 1.0 * t[j] for j in range(k)]
            intercepts = [0.0 + 0.5 * t[k + j] for j in range(k)]
            for i in range(height):
                for j in range(width):
                    v = float(x[b, c, i, j])
                    out[b, c, i, j] = max(a * v + bias for a, bias in zip(slopes, intercepts))
    return out


@pytest.mark.parametrize("variant", ["A", "B"])
def test_dynamic_relu_matches_a_loop_reference(variant):
    module = DynamicReLU(8, variant)
    _randomise(module)
    x = torch.randn(2, 8, 3, 4, generator=torch.Generator().manual_seed(0))
    x[1] += torch.linspace(-2, 2, 8).reshape(8, 1, 1)  # samples with different channel means
    with torch.no_grad():
        assert rel_err(module(x), _dyrelu_reference(module, x)) < 1e-5
    # the coefficients really are input-dependent, and per channel only for B
    with torch.no_grad():
        coefs = module.coefficients(x)
    assert coefs.shape == (2, 4, 1 if variant == "A" else 8, 1, 1)
    assert not torch.allclose(coefs[0], coefs[1])


@pytest.mark.parametrize("variant", ["A", "B"])
def test_dynamic_relu_starts_as_relu(variant):
    module = DynamicReLU(16, variant)
    torch.nn.init.zeros_(module.fc2.weight)
    torch.nn.init.zeros_(module.fc2.bias)
    x = torch.randn(1, 16, 5, 5)
    assert torch.equal(module(x), torch.relu(x))


# --- Dynamic Shift-Max ---------------------------------------------------------------------------------------


def _shift_max_reference(module: DynamicShiftMax, x: torch.Tensor) -> torch.Tensor:
    batch, channels, height, width = x.shape
    pieces, terms = module.pieces, module.terms
    out = torch.empty_like(x)
    for b in range(batch):
        pooled = [float(x[b, c].mean()) for c in range(channels)]
        hidden = [max(0.0, v) for v in _fc(pooled, module.fc1)]
        raw = _fc(hidden, module.fc2)
        hard_sigmoid = [min(max(v / 6 + 0.5, 0.0), 1.0) for v in raw]
        # layout (piece, term, channel)
        a = [[[module.scale * (2 * hard_sigmoid[(p * terms + t) * channels + c] - 1)
               + (1.0 if p == 0 and t == 0 else 0.0) for c in range(channels)] for t in range(terms)]
             for p in range(pieces)]  # fmt: skip
        for c in range(channels):
            partner = (c + channels // 4) % channels  # groups=4: the shift is C/G channels
            for i in range(height):
                for j in range(width):
                    mine, theirs = float(x[b, c, i, j]), float(x[b, partner, i, j])
                    out[b, c, i, j] = max(a[p][0][c] * mine + a[p][1][c] * theirs for p in range(pieces))
    return out


def test_dynamic_shift_max_matches_a_loop_reference():
    module = DynamicShiftMax(8, groups=4)
    _randomise(module, seed=3)
    x = torch.randn(2, 8, 3, 3, generator=torch.Generator().manual_seed(0))
    x[1] += torch.linspace(-2, 2, 8).reshape(8, 1, 1)
    with torch.no_grad():
        assert rel_err(module(x), _shift_max_reference(module, x)) < 1e-5


def test_dynamic_shift_max_starts_as_relu_and_rejects_bad_groups():
    module = DynamicShiftMax(16, groups=4)
    torch.nn.init.zeros_(module.fc2.weight)
    torch.nn.init.zeros_(module.fc2.bias)
    x = torch.randn(1, 16, 4, 4)
    assert torch.equal(module(x), torch.relu(x))
    with pytest.raises(ValueError, match="groups"):
        DynamicShiftMax(10, groups=4)


# --- the network ---------------------------------------------------------------------------------------------


def test_plain_cnn_layout_and_shared_weights():
    net = PlainCNN("gelu", depth=30, width=16)
    assert len(net.convs) == 30
    strides = [conv.stride[0] for conv in net.convs]
    assert [i for i, s in enumerate(strides) if s == 2] == [0, 10, 20]
    assert [net.convs[i].out_channels for i in (0, 10, 20)] == [16, 32, 64]
    relu, dyrelu = build_network("relu", 6, 16, 32), build_network("dyrelu-b", 6, 16, 32)
    for a, b in zip(relu.convs, dyrelu.convs):
        assert torch.equal(a.weight, b.weight)  # same seed: only the activation differs
    assert torch.equal(relu.classifier.weight, dyrelu.classifier.weight)
    assert relu(torch.randn(2, 3, 32, 32)).shape == (2, 1000)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_every_activation_network_exports_and_runs(name, tmp_path):
    opset = 13 if name in ("dyshiftmax", "mish", "hardswish") else 17  # older opsets too, where it matters
    net = build_network(name, depth=3, width=16, resolution=32)
    result = mbbench.export_onnx(net, tmp_path / f"act-{name}.onnx", name=f"act-{name}", opset=opset,
                                 resolution=32)  # fmt: skip
    assert result.model == f"act-{name}" and result.opset == opset
    model = onnx.load(result.path)
    assert {o.version for o in model.opset_import if o.domain in ("", "ai.onnx")} == {opset}
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {"input": np.random.default_rng(0).standard_normal((1, 3, 32, 32), "float32")})
    assert output.shape == (1, 1000) and np.isfinite(output).all()
    if name in ("se-relu", "dyrelu-a", "dyrelu-b", "dyshiftmax"):
        ops = {node.op_type for node in model.graph.node}
        assert ops & {"GlobalAveragePool", "ReduceMean"}, "the hyper-function's global pooling must be in the graph"
