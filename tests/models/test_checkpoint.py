import os

import pytest
import torch

import mbbench
from mbbench.models import CheckpointError, create_model, find_matching_model, reparameterize
from tests.conftest import rel_err


@pytest.fixture(scope="module")
def source():
    """A 'trained' model: seed 7, distinct from create_model's default seed 0."""
    return create_model("mobileone-s0", seed=7)


def _same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize(
    "suffix, wrap",
    [
        (".pth.tar", lambda sd: sd),
        (".pth", lambda sd: {"state_dict": sd, "epoch": 3}),
        (".pt", lambda sd: {"model": sd}),
        (".pth", lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}}),
        (".pt", lambda sd: {f"encoder.{k}": v for k, v in sd.items()}),
    ],
    ids=["plain", "state_dict", "model", "module-prefix", "encoder-prefix"],
)
def test_checkpoint_layouts_load_strictly(tmp_path, source, suffix, wrap):
    path = tmp_path / f"ckpt{suffix}"
    torch.save(wrap(source.state_dict()), path)
    loaded = create_model("mobileone_s0", weights=path)
    assert not loaded.training
    assert _same_weights(loaded, source)


def test_fused_mobileone_checkpoint_loads_into_deploy_form(tmp_path, source):
    fused = reparameterize(source)
    path = tmp_path / "mobileone_s0.pth.tar"
    torch.save(fused.state_dict(), path)
    loaded = create_model("mobileone-s0", weights=path)
    assert any("reparam_conv" in k for k in loaded.state_dict())
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        assert rel_err(loaded(x), source(x)) < 1e-5


def test_mobilevit_checkpoint_round_trip(tmp_path):
    src = create_model("mobilevitv2-050", seed=5)
    path = tmp_path / "mobilevitv2-0.5.pt"
    torch.save(src.state_dict(), path)
    assert _same_weights(create_model("mobilevitv2_0.5", weights=path), src)


def test_mismatched_checkpoint_names_counts_and_the_matching_model(tmp_path):
    path = tmp_path / "s1.pth.tar"
    torch.save(create_model("mobileone-s1").state_dict(), path)
    with pytest.raises(CheckpointError) as info:
        create_model("mobileone-s0", weights=path)
    message = str(info.value)
    assert "\n" not in message
    assert "missing" in message and "mis-shaped" in message
    assert "it matches 'mobileone-s1' instead" in message


def test_mismatch_with_no_registry_match(tmp_path):
    state = create_model("mobilevit-xxs").state_dict()
    del state["conv_1.block.conv.weight"]
    state["extra.weight"] = torch.zeros(3)
    path = tmp_path / "broken.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError) as info:
        create_model("mobilevit-xxs", weights=path)
    message = str(info.value)
    assert "1 missing (conv_1.block.conv.weight)" in message
    assert "1 unexpected (extra.weight)" in message
    assert "matches no registry model" in message


def test_find_matching_model_ignores_a_different_head():
    state = create_model("mobilevit-xs", num_classes=10).state_dict()
    assert find_matching_model(state) == "mobilevit-xs"
    fused = reparameterize(create_model("mobileone-s2")).state_dict()
    assert find_matching_model(fused) == "mobileone-s2"


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickle_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": create_model("mobileone-s0").state_dict(), "hook": _Payload(str(marker))}, path)
    with pytest.raises(CheckpointError, match="refused"):
        create_model("mobileone-s0", weights=path)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04garbage"])
def test_unreadable_files(tmp_path, content):
    path = tmp_path / "bad.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="cannot read"):
        create_model("mobileone-s0", weights=path)


def test_missing_file_and_non_state_dict(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        create_model("mobileone-s0", weights=tmp_path / "nope.pth")
    path = tmp_path / "list.pt"
    torch.save({"epoch": 3, "note": "no tensors"}, path)
    with pytest.raises(CheckpointError, match="holds no state_dict"):
        mbbench.create_model("mobileone-s0", weights=path)


def test_training_checkpoint_with_optimizer_state_still_fits_the_size_bound(tmp_path, source):
    # The bound against inflating archives must not refuse a real training checkpoint (Adam moments + EMA).
    state = source.state_dict()
    extra = {k: v.clone() for k, v in state.items() if v.is_floating_point()}
    path = tmp_path / "train.pth"
    torch.save({"state_dict": state, "ema": extra, "optimizer": {"exp_avg": extra, "exp_avg_sq": extra}}, path)
    assert _same_weights(create_model("mobileone-s0", weights=path), source)


def test_archive_declaring_more_than_the_model_holds_is_refused_before_loading(tmp_path):
    import zipfile

    path = tmp_path / "big.pth"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/data/0", bytes(200 << 20))
    with pytest.raises(CheckpointError, match="more than the model's tensors could take"):
        create_model("mobileone-s0", weights=path)


def test_non_finite_weights_name_the_checkpoint_and_the_tensor(tmp_path, source):
    # issue 20: such a checkpoint once reached export and read "differs from PyTorch by nan"
    state = source.state_dict()
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key] = state[key].clone()
    state[key].view(-1)[0] = float("nan")
    path = tmp_path / "nan.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=rf"checkpoint '.*nan.pth' holds NaN or infinite values in 1 tensor\(s\), "
                                              rf"e.g. '{key}'"):
        create_model("mobileone-s0", weights=path)
