"""Mobile-Former against the paper: parameters and MACs of all seven sizes, the bridge's attention, export."""

import math

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

import mbbench
from mbbench.models import macs_by_module, model_info, model_stats
from mbbench.models.mobileformer import (
    DownsampleMobileSubBlock,
    Former,
    FormerToMobile,
    MobileFormerBlock,
    MobileSubBlock,
    MobileToFormer,
    TokenDynamicReLU,
)
from tests.conftest import rel_err

# Chen et al., "Mobile-Former: Bridging MobileNet and Transformer", CVPR 2022 (arXiv:2108.05895): the ImageNet
# table's Mobile-Former rows (MAdds at 224x224, parameters; the same figures head the unofficial timm-based
# release github.com/AAboys/MobileFormer) and the appendix's global tokens (count x dimension).
# name: (params in M, MAdds in M, tokens, token dim)
PAPER = {
    "mobileformer-26m": (3.2, 26, 3, 128),
    "mobileformer-52m": (3.5, 52, 3, 128),
    "mobileformer-96m": (4.6, 96, 4, 128),
    "mobileformer-151m": (7.6, 151, 6, 192),
    "mobileformer-214m": (9.4, 214, 6, 192),
    "mobileformer-294m": (11.4, 294, 6, 192),
    "mobileformer-508m": (14.0, 508, 6, 192),
}
#: The paper's MAdds also count each dynamic ReLU's per-element work, max(a1 x, a2 x): two multiplies and a max.
#: ``count_macs`` counts convolutions, linear layers and matmuls only, for every family alike.
PAPER_DYRELU_OPS_PER_ELEMENT = 3


def _meta(name):
    with torch.device("meta"):
        return model_info(name).build().eval()


def dynamic_relu_elements(model, resolution):
    """Elements the dynamic ReLUs produce in one forward pass at ``resolution`` (on the model's device)."""
    total = []
    hooks = [
        m.register_forward_hook(lambda module, args, out: total.append(out.numel()))
        for m in model.modules()
        if isinstance(m, TokenDynamicReLU)
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, resolution, resolution, device=next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return sum(total)


def test_the_registry_has_the_papers_seven_sizes():
    assert mbbench.list_models("mobileformer") == list(PAPER)


@pytest.mark.parametrize("name", list(PAPER))
def test_parameters_within_3_percent_of_the_paper(name):
    params_m = PAPER[name][0]
    stats = model_stats(name)
    assert stats["params"] == stats["params_train"]  # nothing to re-parameterize
    assert stats["params"] / 1e6 == pytest.approx(params_m, rel=0.03)


@pytest.mark.parametrize("name", list(PAPER))
def test_macs_within_3_percent_of_the_paper_under_its_convention(name):
    madds_m = PAPER[name][1]
    macs = model_stats(name)["macs"]
    elementwise = PAPER_DYRELU_OPS_PER_ELEMENT * dynamic_relu_elements(_meta(name), 224)
    assert (macs + elementwise) / 1e6 == pytest.approx(madds_m, rel=0.03)
    # What `mbbench list` shows leaves that element-wise work out, as it does for every family: below the paper.
    assert macs / 1e6 < madds_m


@pytest.mark.parametrize("name", list(PAPER))
def test_tokens_are_the_papers(name):
    _, _, tokens, dim = PAPER[name]
    assert tuple(_meta(name).tokens.weight.shape) == (tokens, dim)


def test_smallest_differs_from_52m_by_grouped_pointwise_convs_only():
    small, large = _meta("mobileformer-26m"), _meta("mobileformer-52m")
    pointwise = [m for m in small.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    assert pointwise and all(conv.groups == 4 for conv in pointwise)
    assert [p.shape[0] for p in small.parameters()] == [p.shape[0] for p in large.parameters()]


def test_cross_attention_matmuls_are_counted_per_block():
    # Each direction costs T*d*C per token projection plus 2*T*H*W*C for its two matmuls (scores, weighted sum).
    model = _meta("mobileformer-294m")
    per_module = macs_by_module(model, 224)
    tokens, dim = model.tokens.weight.shape
    size = 224 // 2  # after the stem; the lite bottleneck of 294m keeps it
    for index, block in enumerate(model.blocks):
        m2f, f2m = block.mobile_to_former, block.former_to_mobile
        c_in, c_out = m2f.q.out_features, f2m.k.out_features
        out_size = size // 2 if isinstance(block.mobile, DownsampleMobileSubBlock) else size
        m2f_macs = 3 * tokens * dim * c_in + 2 * tokens * size**2 * c_in  # q, gate, proj; scores, weighted sum
        f2m_macs = 2 * tokens * dim * c_out + 2 * tokens * out_size**2 * c_out  # k, v; scores, weighted sum
        assert per_module[f"blocks.{index}.mobile_to_former"] == m2f_macs
        assert per_module[f"blocks.{index}.former_to_mobile"] == f2m_macs
        size = out_size
    assert per_module[""] == model_stats("mobileformer-294m")["macs"]


# --- the bridge and the Former, against their definitions, one head and one sample at a time ----------------


def _hard_sigmoid(x):
    return torch.clamp(x + 3, 0, 6) / 6


def _linear(layer, x):
    return x @ layer.weight.T + layer.bias


def test_mobile_to_former_matches_definition():
    torch.manual_seed(0)
    module = MobileToFormer(channels=8, token_dim=12).eval()
    x, z = torch.randn(2, 8, 5, 3), torch.randn(2, 4, 12)
    heads, width = module.heads, 8 // module.heads
    expected = torch.empty_like(z)
    for b in range(2):
        q = _linear(module.q, z[b])  # (T, C)
        pixels = x[b].reshape(8, -1).T  # (HW, C): keys and values, unprojected
        cols = [slice(h * width, (h + 1) * width) for h in range(heads)]
        out = torch.cat(
            [torch.softmax(q[:, c] @ pixels[:, c].T / math.sqrt(width), dim=-1) @ pixels[:, c] for c in cols], dim=1
        )
        out = out * 2 * _hard_sigmoid(_linear(module.gate, z[b]))
        expected[b] = F.layer_norm(z[b] + _linear(module.proj, out), (12,), module.norm.weight, module.norm.bias)
    with torch.no_grad():
        assert rel_err(module(x, z), expected) < 1e-5


def test_former_to_mobile_matches_definition():
    torch.manual_seed(0)
    module = FormerToMobile(channels=8, token_dim=12).eval()
    x, z = torch.randn(2, 8, 5, 3), torch.randn(2, 4, 12)
    heads, width = module.heads, 8 // module.heads
    expected = x.clone()
    for b in range(2):
        pixels = x[b].reshape(8, -1).T  # (HW, C): the queries, unprojected
        k, v = _linear(module.k, z[b]), _linear(module.v, z[b])  # (T, C)
        for h in range(heads):
            cols = slice(h * width, (h + 1) * width)
            attn = torch.softmax(pixels[:, cols] @ k[:, cols].T / math.sqrt(width), dim=-1)  # over the tokens
            expected[b, cols] += (attn @ v[:, cols]).T.reshape(width, 5, 3)
    with torch.no_grad():
        assert rel_err(module(x, z), expected) < 1e-5


def test_former_matches_definition():
    torch.manual_seed(0)
    module = Former(token_dim=16).eval()
    z = torch.randn(3, 6, 16)
    heads, width = module.heads, 16 // module.heads
    expected = torch.empty_like(z)
    for b in range(3):
        q, kv = _linear(module.q, z[b]), z[b]  # keys and values: the tokens, unprojected
        cols = [slice(h * width, (h + 1) * width) for h in range(heads)]
        out = torch.cat([torch.softmax(q[:, c] @ kv[:, c].T / math.sqrt(width), -1) @ kv[:, c] for c in cols], dim=1)
        z1 = module.norm1(z[b] + _linear(module.proj, out))
        expected[b] = module.norm2(z1 + module.ffn(z1))
    with torch.no_grad():
        assert rel_err(module(z), expected) < 1e-5


def test_dynamic_relu_is_max_of_two_token_driven_slopes_and_starts_as_relu():
    torch.manual_seed(0)
    act = TokenDynamicReLU(channels=6, token_dim=16).eval()
    x, token = torch.randn(2, 6, 4, 4), torch.randn(2, 16)
    with torch.no_grad():
        theta = 2 * _hard_sigmoid(act.hyper(token)).reshape(2, 2, 6, 1, 1)
        assert rel_err(act(x, token), torch.maximum(x * theta[:, 0], x * (theta[:, 1] - 1))) < 1e-6
        act.hyper[2].weight.zero_()
        act.hyper[2].bias.zero_()
        assert torch.equal(act(x, token), F.relu(x))


@pytest.mark.parametrize("stride", [1, 2])
def test_mobile_sub_block_reads_the_first_token_of_the_formers_output(stride):
    torch.manual_seed(0)
    block = MobileFormerBlock(16, 48, 24 if stride == 2 else 16, stride, token_dim=32, groups=1).eval()
    assert isinstance(block.mobile, DownsampleMobileSubBlock if stride == 2 else MobileSubBlock)
    seen = {}
    block.former.register_forward_hook(lambda m, args, out: seen.update(former=out))
    for act in block.mobile.dynamic_relus():
        act.register_forward_pre_hook(lambda m, args: seen.update({id(m): args[1]}))  # None: args unchanged
    with torch.no_grad():
        x, z = block(torch.randn(2, 16, 8, 8), torch.randn(2, 6, 32))
    assert x.shape == (2, block.former_to_mobile.k.out_features, 8 // stride, 8 // stride)
    assert torch.equal(z, seen["former"])
    for act in block.mobile.dynamic_relus():
        assert torch.equal(seen[id(act)], seen["former"][:, 0])


# --- the whole network ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [64, 97])
def test_output_shape_and_determinism(size):
    first = mbbench.create_model("mobileformer-26m")
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        out = first(x)
        assert out.shape == (2, 1000)
        assert torch.equal(mbbench.create_model("mobileformer-26m")(x), out)
        assert not torch.equal(mbbench.create_model("mobileformer-26m", seed=1)(x), out)


def test_random_init_is_latency_faithful():
    # No norm is an identity a simplifier could drop, the tokens are seeded, and the head's BatchNorm1d is
    # calibrated like the 2-D ones.
    model = mbbench.create_model("mobileformer-26m")
    kinds = (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d, torch.nn.LayerNorm)
    norms = [m for m in model.modules() if isinstance(m, kinds)]
    assert all(not torch.allclose(m.weight, torch.ones_like(m.weight)) for m in norms)
    head_norm = model.head.norm
    assert not torch.allclose(head_norm.running_var, torch.ones_like(head_norm.running_var))
    assert torch.equal(model.tokens.weight, mbbench.create_model("mobileformer-26m").tokens.weight)


RES = 64


@pytest.mark.slow
@pytest.mark.parametrize("opset", [12, 13, 17, 18])
def test_export_matches_pytorch_and_keeps_the_bridge_names(tmp_path, opset):
    result = mbbench.export_onnx("mobileformer-26m", opset=opset, resolution=RES, output_dir=tmp_path)
    assert result.opset == opset and result.parity_max_rel <= 1e-4
    assert result.macs == model_stats("mobileformer-26m", RES)["macs"]
    x = np.random.default_rng(3).standard_normal((1, 3, RES, RES), dtype=np.float32)
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = mbbench.create_model("mobileformer-26m")(torch.from_numpy(x)).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.max(np.abs(got - expected)) / np.max(np.abs(expected)) < 1e-4
    if result.exporter == "torchscript":  # the dynamo exporter (opset 18) names nodes by op, not by module
        matmuls = [n.name for n in onnx.load(result.path).graph.node if n.op_type == "MatMul"]
        assert any("/mobile_to_former/" in n for n in matmuls)
        assert any("/former_to_mobile/" in n for n in matmuls)
