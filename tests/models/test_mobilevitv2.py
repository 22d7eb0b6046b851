import pytest
import torch
import torch.nn.functional as F

import mbbench
from mbbench.models import deploy
from mbbench.models.mobilevitv2 import LinearSelfAttention, MobileViTBlockV2
from tests.conftest import rel_err


def test_separable_attention_matches_definition():
    torch.manual_seed(0)
    attn = LinearSelfAttention(6)
    x = torch.randn(2, 6, 4, 10)
    with torch.no_grad():
        out = attn(x)
        w = attn.qkv_proj.block.conv.weight[:, :, 0, 0]
        bias = attn.qkv_proj.block.conv.bias
        expected = torch.empty_like(x)
        for b in range(2):
            for p in range(4):
                tokens = x[b, :, p, :].T  # (N, d)
                qkv = tokens @ w.T + bias
                q, k, v = qkv[:, :1], qkv[:, 1:7], qkv[:, 7:]
                scores = torch.softmax(q[:, 0], dim=0)  # one score per patch
                context = (k * scores[:, None]).sum(dim=0)  # (d,)
                mixed = torch.relu(v) * context
                ow = attn.out_proj.block.conv.weight[:, :, 0, 0]
                expected[b, :, p, :] = (mixed @ ow.T + attn.out_proj.block.conv.bias).T
    assert rel_err(out, expected) < 1e-5


def test_groupnorm_normalises_over_channels_pixels_and_patches():
    model = mbbench.create_model("mobilevitv2-050")
    norm = model.layer_3[1].global_rep[0].pre_norm_attn[0]
    assert isinstance(norm, torch.nn.GroupNorm) and norm.num_groups == 1
    x = torch.randn(2, norm.num_channels, 4, 9)
    with torch.no_grad():
        y = (norm(x) - norm.bias[:, None, None]) / norm.weight[:, None, None]
    assert y[0].mean().abs() < 1e-5 and y[0].std(unbiased=False) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("size", [(8, 10), (6, 6), (2, 14)])
def test_reshape_unfold_fold_equal_torch(size):
    block = MobileViTBlockV2(channels=8, dim=8, depth=1)
    fm = torch.randn(2, 8, *size)
    block.fold_impl = "unfold"  # ml-cvnets' F.unfold / F.fold
    ref = block.unfold(fm)
    refolded = block.fold(ref, size)
    assert torch.equal(refolded, fm)
    for impl in ("col2im", "reshape", "pixel"):
        block.fold_impl = impl
        assert torch.equal(block.unfold(fm), ref), impl
        assert torch.equal(block.fold(ref, size), refolded), impl


def test_unknown_fold_impl_is_refused_and_the_authors_form_is_the_default():
    with pytest.raises(ValueError, match="fold_impl must be one of col2im, unfold, pixel, reshape"):
        MobileViTBlockV2(channels=8, dim=8, depth=1, fold_impl="im2col")
    assert MobileViTBlockV2(channels=8, dim=8, depth=1).fold_impl == "unfold"
    assert {b.fold_impl for b in mbbench.create_model("mobilevitv2-050").modules()
            if isinstance(b, MobileViTBlockV2)} == {"unfold"}



@pytest.mark.parametrize("size", [256, 224, 97])
def test_fold_forms_are_exactly_equal_end_to_end(size):
    model = mbbench.create_model("mobilevitv2-050")
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        expected = model(x)
        for impl in ("col2im", "reshape", "pixel"):
            assert torch.equal(deploy(mbbench.create_model("mobilevitv2-050"), fold=impl)(x), expected)
        assert torch.equal(mbbench.create_model("mobilevitv2-050", fold_impl="pixel")(x), expected)


def test_fold_norm_affine_is_the_same_function():
    model = mbbench.create_model("mobilevitv2-075")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    deployed = deploy(model, fuse_norms=True)
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        assert rel_err(deployed(x), model(x)) < 1e-5  # the same sums, rounded in another order
    norms = [m for m in deployed.modules() if isinstance(m, torch.nn.GroupNorm)]
    assert len(norms) == (2 + 4 + 3) * 2 + 3 and not any(n.affine for n in norms)  # two per layer, one per block
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # input untouched


def test_pixel_kernel_is_not_in_the_state_dict():
    model = mbbench.create_model("mobilevitv2-050")
    assert not any("unfold_kernel" in k for k in model.state_dict())
    assert any("unfold_kernel" in k for k, _ in model.named_buffers())


def test_odd_input_is_resized_up_with_corners_and_not_back():
    torch.manual_seed(0)
    block = MobileViTBlockV2(channels=8, dim=8, depth=1).eval()
    x = torch.randn(1, 8, 7, 9)
    with torch.no_grad():
        out = block(x)
        expected = block(F.interpolate(x, size=(8, 10), mode="bilinear", align_corners=True))
    assert out.shape == (1, 8, 8, 10)
    assert torch.equal(out, expected)


def test_layer5_runs_at_8x8_for_224_input():
    model = mbbench.create_model("mobilevitv2-050")
    seen = {}
    model.layer_5[1].register_forward_hook(lambda mod, inp, out: seen.update(inp=inp[0].shape, out=out.shape))
    with torch.no_grad():
        model(torch.randn(1, 3, 224, 224))
    assert seen["inp"][-2:] == (7, 7)
    assert seen["out"][-2:] == (8, 8)


@pytest.mark.parametrize("name", ["mobilevitv2-050", "mobilevitv2-125", "mobilevitv2-200"])
@pytest.mark.parametrize("size", [224, 256, 193])
def test_output_shapes(name, size):
    model = mbbench.create_model(name)
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 1000)


def test_deploy_walker_sets_the_fold_and_leaves_the_input_alone():
    model = mbbench.create_model("mobilevitv2-050")
    pixel = deploy(model, fold="pixel")
    blocks = [m for m in pixel.modules() if isinstance(m, MobileViTBlockV2)]
    assert len(blocks) == 3 and all(b.fold_impl == "pixel" for b in blocks)
    assert all(m.fold_impl == "unfold" for m in model.modules() if isinstance(m, MobileViTBlockV2))
    assert mbbench.models.deploy_transforms(model) == {"fold", "fuse_norms"}


# Added for the mutation run (scripts/mutation.py): the four forms compute the same numbers (above), so what tells
# them apart is the graph each one records, which is what decides the exported ONNX ops and opset.
FORM_OPS = {"col2im": ("aten::_convolution", "aten::col2im"), "unfold": ("aten::im2col", "aten::col2im"),
            "pixel": ("aten::_convolution", "aten::pixel_shuffle"),
            "reshape": ("aten::permute", "aten::permute")}  # fmt: skip
ALL_FORM_OPS = {op for pair in FORM_OPS.values() for op in pair}


@pytest.mark.parametrize("impl", list(FORM_OPS))
def test_each_fold_form_records_its_own_ops(impl):
    block = MobileViTBlockV2(channels=8, dim=8, depth=1, fold_impl=impl)
    fm = torch.randn(1, 8, 6, 4)

    def ops(fn, x):
        return {node.kind() for node in torch.jit.trace(fn, x).inlined_graph.nodes()}

    unfold_ops = ops(lambda x: block.unfold(x), fm)  # noqa: PLW0108  (trace takes no bound method of a module)
    fold_ops = ops(lambda patches: block.fold(patches, (6, 4)), block.unfold(fm))
    unfold_op, fold_op = FORM_OPS[impl]
    assert unfold_op in unfold_ops and fold_op in fold_ops
    # each half records its own op and none of the other forms' ops
    assert not (ALL_FORM_OPS - {unfold_op}) & unfold_ops, impl
    assert not (ALL_FORM_OPS - {fold_op}) & fold_ops, impl
