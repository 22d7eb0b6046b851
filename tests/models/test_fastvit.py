"""FastViT: each re-parameterizable block folds exactly, the whole network too, and both forms export."""

import onnx
import pytest
import torch

import mbbench
from mbbench.export import export_onnx
from mbbench.models import count_params, is_reparameterized, list_models, model_info, reparameterize
from mbbench.models.checkpoint import shape_signature
from mbbench.models.fastvit import MHSA, MobileOneBlock, ReparamLargeKernelConv, RepCPE, RepMixer
from tests.conftest import rel_err

RES = 64

# ml-fastvit's training-form parameter counts (classifier included).
OFFICIAL_PARAMS = {
    "fastvit-t8": 4_026_232,
    "fastvit-t12": 7_553_704,
    "fastvit-s12": 9_473_576,
    "fastvit-sa12": 11_580_968,
    "fastvit-sa24": 21_554_216,
    "fastvit-sa36": 31_527_464,
    "fastvit-ma36": 44_068_004,
}


def _randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-trivial BN statistics and affines, and layer scales, so that every fold term is exercised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.copy_(torch.randn(m.out_channels, generator=g) * 0.2)
            if hasattr(m, "layer_scales"):
                for scale in m.layer_scales():
                    scale.copy_(torch.rand(scale.shape, generator=g) + 0.5)
    return module.eval()


@pytest.mark.parametrize(
    "make, channels",
    [
        (lambda: MobileOneBlock(8, 8, 3, groups=8), 8),  # depthwise: conv, scale and skip branches, GELU
        (lambda: MobileOneBlock(3, 8, 3, stride=2), 3),  # stem: no skip
        (lambda: MobileOneBlock(8, 8, 1), 8),  # pointwise with skip, no scale branch
        (lambda: MobileOneBlock(8, 16, 3, groups=8, use_se=True), 8),  # the head block: channel multiplier 2, SE
        (lambda: MobileOneBlock(8, 8, 3, groups=8, num_conv_branches=0, use_scale_branch=False), 8),  # BN only
        (lambda: ReparamLargeKernelConv(8, 16, 7, stride=2, groups=8, small_kernel=3), 8),  # patch embedding
        (lambda: RepMixer(8), 8),
        (lambda: RepCPE(8), 8),
    ],
    ids=["depthwise", "stem", "pointwise", "head", "norm-only", "large-kernel", "repmixer", "repcpe"],
)
def test_each_block_owns_an_exact_fold(make, channels):
    block = _randomise(make())
    x = torch.randn(2, channels, 13, 11, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = block(x)
        block.reparameterize()
        assert block.inference_mode
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in block.modules())
        assert rel_err(block(x), expected) < 1e-5


def test_repmixer_norm_is_a_bare_batchnorm():
    mixer = _randomise(RepMixer(8))
    x = torch.randn(1, 8, 9, 9)
    with torch.no_grad():
        assert torch.equal(mixer.norm(x), mixer.norm.rbr_skip(x))  # no conv, no scale branch, no activation
        expected = x + mixer.layer_scale * (mixer.mixer(x) - mixer.norm.rbr_skip(x))
        assert rel_err(mixer(x), expected) < 1e-6


def test_attention_heads_are_32_wide_and_match_sdpa():
    attn = _randomise(MHSA(64))
    assert attn.num_heads == 2 and attn.qkv.bias is None
    x = torch.randn(2, 64, 5, 3)
    with torch.no_grad():
        tokens = x.flatten(2).transpose(1, 2)
        q, k, v = attn.qkv(tokens).reshape(2, 15, 3, 2, 32).permute(2, 0, 3, 1, 4)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(2, 15, 64)
        expected = attn.proj(out).transpose(1, 2).reshape(2, 64, 5, 3)
        assert rel_err(attn(x), expected) < 1e-5


@pytest.mark.parametrize("name", ["fastvit-t8", "fastvit-sa12"])
def test_reparameterized_network_equals_unfused(name):
    model = mbbench.create_model(name)
    scales = [s for m in model.modules() if hasattr(m, "layer_scales") for s in m.layer_scales()]
    # The init gives trained-like layer scales: at the training init (1e-5) every block would be an identity
    # and this comparison would not see the folds at all.
    assert scales and min(float(s.detach().min()) for s in scales) >= 0.1
    deployed = reparameterize(model)
    assert is_reparameterized(deployed) and not is_reparameterized(model)
    x = torch.randn(2, 3, RES, RES, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert rel_err(deployed(x), model(x)) <= 1e-5


@pytest.mark.parametrize("name", list_models("fastvit"))
def test_official_parameter_counts_and_a_direct_deploy_build(name):
    info = model_info(name)
    with torch.device("meta"):
        unfused = info.build()
        assert count_params(unfused) == OFFICIAL_PARAMS[name]
        # inference_mode=True builds the fused form directly, as the fold would leave it.
        assert shape_signature(info.build(inference_mode=True)) == shape_signature(reparameterize(unfused))


def test_sa_variants_end_in_attention_behind_a_positional_encoding():
    with torch.device("meta"):
        plain, network = model_info("fastvit-s12").build(), model_info("fastvit-sa12").build().network
    assert "AttentionBlock" not in {type(m).__name__ for m in plain.modules()}
    assert [type(m).__name__ for m in network] == [
        "Sequential", "PatchEmbed", "Sequential", "PatchEmbed", "Sequential", "PatchEmbed", "RepCPE", "Sequential"
    ]  # fmt: skip
    assert {type(m).__name__ for m in network[7]} == {"AttentionBlock"}


def test_unfused_and_fused_checkpoints_load(tmp_path):
    source = mbbench.create_model("fastvit-t8", seed=4)
    x = torch.randn(1, 3, RES, RES)
    with torch.no_grad():
        expected = source(x)
    torch.save({"state_dict": source.state_dict()}, tmp_path / "fastvit_t8.pth.tar")
    loaded = mbbench.create_model("fastvit_t8", weights=tmp_path / "fastvit_t8.pth.tar")
    assert not is_reparameterized(loaded)
    torch.save(reparameterize(source).state_dict(), tmp_path / "fastvit_t8_reparam.pth.tar")
    fused = mbbench.create_model("fastvit-t8", weights=tmp_path / "fastvit_t8_reparam.pth.tar")
    assert is_reparameterized(fused)
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)
        assert rel_err(fused(x), expected) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("opset", [12, 13, 17, 18])
def test_exports_at_every_opset_with_parity(tmp_path, opset):
    result = export_onnx("fastvit-t8", opset=opset, resolution=RES, output_dir=tmp_path)
    assert result.opset == opset and result.reparameterized and result.parity_max_rel <= 1e-4


def test_attention_variant_and_training_form_export(tmp_path):
    sa = export_onnx("fastvit-sa12", opset=12, resolution=RES, output_dir=tmp_path)
    ops = {node.op_type for node in onnx.load(sa.path).graph.node}
    assert {"Softmax", "MatMul"} <= ops and sa.parity_max_rel <= 1e-4
    unfused = export_onnx("fastvit-t8", opset=17, resolution=RES, reparam=False, output_dir=tmp_path)
    fused = export_onnx("fastvit-t8", opset=17, resolution=RES, output_dir=tmp_path)
    assert unfused.path.endswith("-unfused.onnx") and not unfused.reparameterized
    assert unfused.params == OFFICIAL_PARAMS["fastvit-t8"] > fused.params
    assert unfused.nodes_after > fused.nodes_after


def test_random_init_graph_has_the_structure_of_a_real_checkpoint(tmp_path):
    """No identity the simplifier could delete: a perturbed 'trained' checkpoint gives the same graph."""
    g = torch.Generator().manual_seed(99)
    state = {
        k: v + 0.05 * torch.randn(v.shape, generator=g) * v.abs().mean() if v.is_floating_point() else v
        for k, v in mbbench.create_model("fastvit-t8").state_dict().items()
    }
    state = {k: v.abs() + 0.01 if k.endswith("running_var") else v for k, v in state.items()}
    torch.save(state, tmp_path / "real.pth")
    random_init = export_onnx("fastvit-t8", resolution=RES, output_dir=tmp_path / "a")
    real = export_onnx("fastvit-t8", resolution=RES, weights=tmp_path / "real.pth", output_dir=tmp_path / "b")
    a, b = onnx.load(random_init.path), onnx.load(real.path)
    assert random_init.nodes_after == real.nodes_after
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]
