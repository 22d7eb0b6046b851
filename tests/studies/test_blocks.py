"""The blocks study's stacks: layout, the folded plain stack equals the branched one, what each export contains."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import mbbench
from mbbench.models.mobileone import MobileOneBlock
from mbbench.studies.blocks import VARIANTS, BlockStack, build_network

from ..conftest import rel_err

WIDTH, PAIRS, RES = 16, 1, 32


def test_stack_layout():
    stack = BlockStack(width=32, pairs=4)
    blocks = [b for b in stack.blocks if isinstance(b, MobileOneBlock)]
    assert len(blocks) == 1 + 3 * 4 * 2
    assert [b.stride for b in blocks if b.stride == 2] == [2] * 4  # stem + the first block of each stage
    assert [b.out_channels for b in blocks][-1] == 128
    skip = BlockStack(width=32, pairs=4, skip=True)
    # every stride-1 depthwise block (3 per stage), and every pointwise block that keeps its width (all 4 in
    # the first stage, whose width is the stem's; 3 in the others, whose first pointwise block doubles it)
    assert sum(skip.residual) == 3 * 3 + (4 + 3 + 3)


def test_plain_is_the_branched_stack_folded():
    x = torch.randn(2, 3, RES, RES)
    with torch.no_grad():
        plain = build_network("plain", WIDTH, PAIRS, RES)(x)
        branched = build_network("branches-k1", WIDTH, PAIRS, RES)(x)
    assert rel_err(plain, branched) < 1e-5


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_exports_what_it_claims(name, tmp_path):
    spec = VARIANTS[name]
    net = build_network(name, WIDTH, PAIRS, RES)
    result = mbbench.export_onnx(net, tmp_path / f"block-{name}.onnx", name=f"block-{name}", opset=17,
                                 resolution=RES, reparam=spec.reparameterized)  # fmt: skip
    assert result.reparameterized == spec.reparameterized
    model = onnx.load(result.path)
    ops = Counter(node.op_type for node in model.graph.node)
    blocks = 1 + 3 * PAIRS * 2
    convs = blocks * (3 if spec.use_se else 1)  # SE adds its two 1x1 convs per block
    if spec.reparameterized:
        assert ops["Conv"] == convs  # one conv per block, nothing left of the branches
    else:
        assert ops["Conv"] > convs and ops["Add"] > 0
    pooled = ops["GlobalAveragePool"] + ops["ReduceMean"]
    assert pooled == (1 + blocks if spec.use_se else 1)  # SE pools once per block; the head pools once
    assert (ops["Add"] > 0) == (spec.skip or not spec.reparameterized)
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"input": np.ones((1, 3, RES, RES), np.float32)})
    assert out.shape == (1, 1000)
