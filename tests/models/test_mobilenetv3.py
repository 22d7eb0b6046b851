"""MobileNetV3: torchvision's layout and function, and hard-swish exported exactly at every opset."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

import mbbench
from mbbench.export import export_onnx
from mbbench.models import count_params, list_models, model_info
from mbbench.models.mobilenetv3 import SqueezeExcitation
from tests.conftest import rel_err

RES = 64


def test_registered_with_torchvision_parameter_counts():
    assert list_models("mobilenetv3") == ["mobilenetv3-large", "mobilenetv3-small"]
    with torch.device("meta"):
        # torchvision's published figures for mobilenet_v3_large / _small (IMAGENET1K_V1 weights).
        assert count_params(model_info("mobilenetv3-large").build()) == 5_483_032
        assert count_params(model_info("mobilenetv3-small").build()) == 2_542_856


def _modules(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize(
    "name, se_blocks, hardswish, residuals",
    [
        # Paper Table 1 / 2: SE in 8 of large's 15 blocks and 9 of small's 11; hard-swish from the 7th (large)
        # and 4th (small) block, twice per block with an expansion, plus stem, last conv and classifier.
        ("mobilenetv3-large", 8, 9 * 2 + 3, 10),
        ("mobilenetv3-small", 9, 8 * 2 + 3, 6),
    ],
)
def test_structure_follows_the_paper(name, se_blocks, hardswish, residuals):
    model = model_info(name).build()
    assert len(_modules(model, SqueezeExcitation)) == se_blocks
    assert len(_modules(model, torch.nn.Hardswish)) == hardswish
    assert sum(getattr(m, "use_residual", False) for m in model.modules()) == residuals
    # torchvision trains with eps 1e-3; published weights computed with 1e-5 would shift every activation.
    assert {bn.eps for bn in _modules(model, torch.nn.BatchNorm2d)} == {1e-3}


def test_se_block_computes_torchvision_function():
    """features.4 of large (5x5 depthwise, SE, ReLU) written out with functional ops."""
    model = mbbench.create_model("mobilenetv3-large")
    block = model.features[4]
    x = torch.randn(2, 24, 14, 14, generator=torch.Generator().manual_seed(0))

    def bn(t, norm):
        return F.batch_norm(t, norm.running_mean, norm.running_var, norm.weight, norm.bias, eps=1e-3)

    expand, depthwise, se, project = block.block
    with torch.no_grad():
        h = F.relu(bn(F.conv2d(x, expand[0].weight), expand[1]))
        h = F.relu(bn(F.conv2d(h, depthwise[0].weight, stride=2, padding=2, groups=72), depthwise[1]))
        squeeze = F.relu(F.conv2d(h.mean((2, 3), keepdim=True), se.fc1.weight, se.fc1.bias))
        h = h * (F.conv2d(squeeze, se.fc2.weight, se.fc2.bias) / 6 + 0.5).clamp(0, 1)
        by_hand = bn(F.conv2d(h, project[0].weight), project[1])
        assert se.fc1.out_channels == 24  # make_divisible(72 / 4, 8)
        assert rel_err(block(x), by_hand) < 1e-6


def test_checkpoint_round_trip(tmp_path):
    source = mbbench.create_model("mobilenetv3-small", seed=3)
    path = tmp_path / "mobilenet_v3_small-047dcff4.pth"
    torch.save(source.state_dict(), path)
    loaded = mbbench.create_model("mobilenet_v3_small", weights=path)
    x = torch.randn(1, 3, RES, RES)
    with torch.no_grad():
        assert torch.equal(loaded(x), source(x))


@pytest.mark.slow
@pytest.mark.parametrize("opset", [12, 13, 17, 18])
def test_exports_at_every_opset_with_parity(tmp_path, opset):
    result = export_onnx("mobilenetv3-small", opset=opset, resolution=RES, output_dir=tmp_path)
    graph = onnx.load(result.path)
    assert result.opset == opset and result.parity_max_rel <= 1e-4
    ops = [node.op_type for node in graph.graph.node]
    # HardSwish is an ONNX op from opset 14; below that it is x * HardSigmoid(x) with torch's constants.
    assert ("HardSwish" in ops) == (opset >= 14)
    for node in graph.graph.node:
        if node.op_type == "HardSigmoid":
            attrs = {"beta": 0.5, **{a.name: a.f for a in node.attribute}}  # beta 0.5 is ONNX's default
            assert attrs == pytest.approx({"alpha": 1 / 6, "beta": 0.5})
    x = np.random.default_rng(5).standard_normal((1, 3, RES, RES), dtype=np.float32)
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = mbbench.create_model("mobilenetv3-small")(torch.from_numpy(x)).numpy()
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    assert np.abs(got - expected).max() / np.abs(expected).max() < 1e-4


def test_hardswish_decomposition_is_exact_around_the_kinks(tmp_path):
    """Below opset 14 hard-swish must be the same function, not an approximation (e.g. near +-3)."""
    values = torch.linspace(-4.0, 4.0, 3 * RES * RES).reshape(1, 3, RES, RES)
    scale = torch.nn.Conv2d(3, 3, 1, bias=False)
    with torch.no_grad():
        scale.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1) * 4.0)  # the random test input reaches the kinks
    module = torch.nn.Sequential(scale, torch.nn.Hardswish()).eval()
    result = export_onnx(module, tmp_path / "hs.onnx", name="hardswish", opset=12, resolution=RES, simplify=False)
    session = ort.InferenceSession(result.path, providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: (values / 4).numpy()})[0]
    assert np.abs(got - F.hardswish(values).numpy()).max() < 1e-6
