import pytest
import torch

import mbbench
from mbbench.models import is_reparameterized, list_models
from mbbench.models.mobileone import MobileOneBlock
from tests.conftest import rel_err


def _randomise_bn(module: torch.nn.Module, generator: torch.Generator) -> None:
    for bn in module.modules():
        if isinstance(bn, torch.nn.BatchNorm2d):
            n = bn.num_features
            bn.weight.data = torch.rand(n, generator=generator) + 0.5
            bn.bias.data = torch.randn(n, generator=generator) * 0.2
            bn.running_mean = torch.randn(n, generator=generator) * 0.3
            bn.running_var = torch.rand(n, generator=generator) + 0.5


@pytest.mark.parametrize(
    "in_ch, out_ch, kernel, stride, groups, branches",
    [
        (8, 8, 3, 1, 8, 4),  # depthwise with skip and scale branch, k=4
        (8, 8, 3, 2, 8, 1),  # strided: no skip
        (8, 16, 1, 1, 1, 2),  # pointwise: no scale branch, no skip
        (16, 16, 1, 1, 1, 1),  # pointwise with skip
        (3, 12, 3, 2, 1, 1),  # stage0-like
    ],
)
def test_block_owns_its_fold(in_ch, out_ch, kernel, stride, groups, branches):
    g = torch.Generator().manual_seed(0)
    block = MobileOneBlock(in_ch, out_ch, kernel, stride=stride, groups=groups, num_conv_branches=branches).eval()
    _randomise_bn(block, g)
    x = torch.randn(2, in_ch, 9, 11, generator=g)
    with torch.no_grad():
        expected = block(x)
        # The branches by hand: each branch, then the sum, then ReLU.
        by_hand = sum(b(x) for b in block.rbr_conv)
        if block.rbr_scale is not None:
            by_hand = by_hand + block.rbr_scale(x)
        if block.rbr_skip is not None:
            by_hand = by_hand + block.rbr_skip(x)
        assert rel_err(expected, torch.relu(by_hand)) < 1e-6
        block.reparameterize()
        assert block.inference_mode
        assert [n for n, _ in block.named_children()] == ["se", "activation", "reparam_conv"]
        assert rel_err(block(x), expected) < 1e-5


def test_block_has_the_official_branches():
    dw = MobileOneBlock(8, 8, 3, groups=8, num_conv_branches=4)
    assert len(dw.rbr_conv) == 4 and dw.rbr_scale is not None and dw.rbr_skip is not None
    pw = MobileOneBlock(8, 16, 1, num_conv_branches=4)
    assert pw.rbr_scale is None and pw.rbr_skip is None


@pytest.mark.parametrize("name", list_models("mobileone"))
def test_reparameterized_output_equals_unfused(name):
    model = mbbench.create_model(name)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # Non-trivial statistics, or the test would not exercise the BN fold.
    assert all(bn.running_var.std() > 0 and bn.running_mean.abs().max() > 0 for bn in bns)
    deployed = mbbench.reparameterize(model)
    assert is_reparameterized(deployed) and not is_reparameterized(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in deployed.modules())
    x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert rel_err(deployed(x), model(x)) <= 1e-5


def test_se_blocks_only_in_s4():
    def se_count(name):
        return sum(1 for m in mbbench.create_model(name).modules() if type(m).__name__ == "SEBlock")

    assert se_count("mobileone-s4") == 12
    assert se_count("mobileone-s1") == 0


@pytest.mark.parametrize("size", [224, 256, 97])
def test_output_shapes(size):
    model = mbbench.create_model("mobileone-s0")
    with torch.no_grad():
        assert model(torch.randn(1, 3, size, size)).shape == (1, 1000)
        assert model.forward_features(torch.randn(1, 3, size, size)).shape[1] == 1024
