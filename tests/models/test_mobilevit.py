import math

import pytest
import torch
import torch.nn.functional as F

import mbbench
from mbbench.models import deploy
from mbbench.models.facts import FOLD_FORMS
from mbbench.models.mobilevit import MobileViTBlock, MultiHeadAttention
from tests.conftest import rel_err


def naive_attention(mha: MultiHeadAttention, x: torch.Tensor) -> torch.Tensor:
    """Per-head attention written from the definition, one head and one sequence at a time."""
    d = x.shape[-1]
    heads = mha.num_heads
    hd = d // heads
    w, b = mha.qkv_proj.weight, mha.qkv_proj.bias
    out = torch.empty_like(x)
    for s in range(x.shape[0]):
        qkv = x[s] @ w.T + b  # (N, 3d), features laid out [q|k|v], each [head][head_dim]
        per_head = []
        for h in range(heads):
            q = qkv[:, h * hd:(h + 1) * hd]
            k = qkv[:, d + h * hd:d + (h + 1) * hd]
            v = qkv[:, 2 * d + h * hd:2 * d + (h + 1) * hd]
            att = torch.softmax(q @ k.T / math.sqrt(hd), dim=-1)
            per_head.append(att @ v)
        out[s] = torch.cat(per_head, dim=-1) @ mha.out_proj.weight.T + mha.out_proj.bias
    return out


def test_attention_matches_definition():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4)
    x = torch.randn(3, 10, 32)
    with torch.no_grad():
        assert rel_err(mha(x), naive_attention(mha, x)) < 1e-5


def test_attention_uses_no_fused_kernels():
    # Exportable at opset 12: explicit matmul + softmax only.
    import inspect

    source = inspect.getsource(MultiHeadAttention)
    assert "scaled_dot_product_attention" not in source
    assert "MultiheadAttention" not in source


@pytest.mark.parametrize("impl", FOLD_FORMS)
def test_unfold_layout_and_fold_inverse(impl):
    block = MobileViTBlock(channels=8, dim=8, ffn_dim=16, depth=1, fold_impl=impl).eval()
    fm = torch.randn(2, 8, 6, 8)
    patches, info = block.unfold(fm)
    assert patches.shape == (2 * 4, 12, 8)
    # patches[b*P + (i*2 + j), nh*n_w + nw, c] == fm[b, c, nh*2 + i, nw*2 + j]
    for b in range(2):
        for i in range(2):
            for j in range(2):
                for nh in range(3):
                    for nw in range(4):
                        assert torch.equal(patches[b * 4 + i * 2 + j, nh * 4 + nw], fm[b, :, nh * 2 + i, nw * 2 + j])
    assert torch.equal(block.fold(patches, info), fm)


@pytest.mark.parametrize("size", [256, 97])
def test_fold_forms_are_exactly_equal_end_to_end(size):
    model = mbbench.create_model("mobilevit-xxs")
    assert {b.fold_impl for b in model.modules() if isinstance(b, MobileViTBlock)} == {"reshape"}  # the default
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected = model(x)
        for impl in FOLD_FORMS:
            assert torch.equal(deploy(model, fold=impl)(x), expected), impl


def test_odd_sizes_resize_bilinear_without_corners_and_back():
    torch.manual_seed(0)
    block = MobileViTBlock(channels=8, dim=16, ffn_dim=32, depth=1).eval()
    x = torch.randn(1, 8, 7, 9)
    with torch.no_grad():
        out = block(x)
        fm = block.local_rep(x)
        up = F.interpolate(fm, size=(8, 10), mode="bilinear", align_corners=False)
        patches, info = block.unfold(up)
        folded = block.fold(block.global_rep(patches), info)
        back = F.interpolate(folded, size=(7, 9), mode="bilinear", align_corners=False)
        expected = block.fusion(torch.cat((x, block.conv_proj(back)), dim=1))
    assert out.shape == x.shape
    assert rel_err(out, expected) < 1e-6


def test_transformer_layout():
    model = mbbench.create_model("mobilevit-xxs")
    layer = model.layer_3[1]
    assert len(layer.global_rep) == 3  # 2 transformer layers + final LayerNorm
    assert isinstance(layer.global_rep[-1], torch.nn.LayerNorm)
    assert [len(getattr(model, f"layer_{i}")[1].global_rep) - 1 for i in (3, 4, 5)] == [2, 4, 3]


@pytest.mark.parametrize("name", ["mobilevit-xxs", "mobilevit-xs", "mobilevit-s"])
@pytest.mark.parametrize("size", [224, 256, 193])
def test_output_shapes(name, size):
    model = mbbench.create_model(name)
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 1000)
