import pytest
import torch

import mbbench
from mbbench.models import UnknownModelError, list_models, model_info, reparameterize, resolve_name

EXPECTED = [
    "mobilenetv3-large", "mobilenetv3-small",
    "mobileone-s0", "mobileone-s1", "mobileone-s2", "mobileone-s3", "mobileone-s4",
    "fastvit-t8", "fastvit-t12", "fastvit-s12", "fastvit-sa12", "fastvit-sa24", "fastvit-sa36", "fastvit-ma36",
    "mobilevit-xxs", "mobilevit-xs", "mobilevit-s",
    "mobilevitv2-050", "mobilevitv2-075", "mobilevitv2-100", "mobilevitv2-125",
    "mobilevitv2-150", "mobilevitv2-175", "mobilevitv2-200",
    "mobileformer-26m", "mobileformer-52m", "mobileformer-96m", "mobileformer-151m", "mobileformer-214m",
    "mobileformer-294m", "mobileformer-508m",
]  # fmt: skip


def test_names_are_exactly_the_registry():
    assert list_models() == EXPECTED
    assert mbbench.list_models() == EXPECTED
    assert list_models("mobilevit") == ["mobilevit-xxs", "mobilevit-xs", "mobilevit-s"]


@pytest.mark.parametrize(
    "alias, name",
    [
        ("mobileone_s0", "mobileone-s0"),
        ("MobileOne-S2", "mobileone-s2"),
        ("mobilevit_xxs", "mobilevit-xxs"),
        ("mobilevitv2_100", "mobilevitv2-100"),
        ("mobilevitv2-1.0", "mobilevitv2-100"),
        ("mobilevitv2_0.5", "mobilevitv2-050"),
        ("mobilevitv2-050", "mobilevitv2-050"),
        ("mobilevitv2_175", "mobilevitv2-175"),
        ("mobilevitv2-2.0", "mobilevitv2-200"),
        ("mobilevit-v2-1.25", "mobilevitv2-125"),
        ("mobilenet_v3_large", "mobilenetv3-large"),
        ("mobilenetv3_small_100", "mobilenetv3-small"),
        ("fastvit_sa12", "fastvit-sa12"),
    ],
)
def test_aliases_resolve(alias, name):
    assert resolve_name(alias) == name


@pytest.mark.parametrize("typo, suggestion", [("mobilone-s2", "mobileone-s2"), ("mobilevit-xss", "mobilevit-xs")])
def test_typo_is_refused_with_the_closest_name(typo, suggestion):
    with pytest.raises(UnknownModelError) as info:
        resolve_name(typo)
    assert f"did you mean '{suggestion}'" in str(info.value)
    assert typo in str(info.value)


def test_unrelated_name_points_to_list():
    with pytest.raises(UnknownModelError, match="mbbench list"):
        resolve_name("resnet50")
    with pytest.raises(UnknownModelError):
        mbbench.create_model("mobilevitv2-300")


def test_model_info_facts():
    assert model_info("mobileone_s1").default_resolution == 224
    assert model_info("mobilevit-s").default_resolution == 256
    assert model_info("mobilevitv2-1.5").default_resolution == 256
    assert model_info("mobileone-s4").reparameterizable
    assert not model_info("mobilevitv2-050").reparameterizable


def test_create_model_is_eval_and_seeded():
    a = mbbench.create_model("mobilevit-xxs", seed=3)
    b = mbbench.create_model("mobilevit-xxs", seed=3)
    c = mbbench.create_model("mobilevit-xxs", seed=4)
    assert not a.training
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa if sa[k].is_floating_point())


def test_init_has_no_identity_norms():
    # A simplifier would delete a norm with scale 1 / shift 0 or BN statistics 0 / 1 (export guarantee 5).
    for name in ("mobileone-s0", "mobilevit-xxs", "mobilevitv2-050"):
        model = mbbench.create_model(name)
        for module in model.modules():
            if isinstance(module, (torch.nn.BatchNorm2d, torch.nn.LayerNorm, torch.nn.GroupNorm)):
                assert not torch.all(module.weight == 1)
                assert not torch.all(module.bias == 0)
            if isinstance(module, torch.nn.BatchNorm2d):
                assert not torch.all(module.running_mean == 0)
                assert not torch.all(module.running_var == 1)


def test_overrides_reach_the_constructor():
    model = mbbench.create_model("mobileone-s0", num_classes=10)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 10)


def test_reparameterize_returns_a_copy():
    model = mbbench.create_model("mobileone-s0")
    keys = list(model.state_dict())
    deployed = mbbench.reparameterize(model)
    assert deployed is not model
    assert list(model.state_dict()) == keys  # original untouched
    assert any("reparam_conv" in k for k in deployed.state_dict())

    v1 = mbbench.create_model("mobilevit-xxs")
    copy = reparameterize(v1)
    assert copy is not v1
    assert list(copy.state_dict()) == list(v1.state_dict())
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(copy(x), v1(x))
