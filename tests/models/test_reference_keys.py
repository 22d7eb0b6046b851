"""Every registry model's state_dict keys, order and shapes equal the official checkpoints' manifests."""

import pytest
import torch

from mbbench.models import list_models, model_info, reparameterize
from mbbench.models.checkpoint import describe_mismatch, shape_signature


def _meta(name):
    with torch.device("meta"):
        return model_info(name).build()


# Mobile-Former has no official checkpoint: its check is the paper's table (tests/models/test_mobileformer.py).
@pytest.mark.parametrize("name", [n for n in list_models() if model_info(n).family != "mobileformer"])
def test_keys_and_shapes_match_reference(name, reference_state_dict):
    info = model_info(name)
    stem = info.reference_stem + ("_unfused" if info.reparameterizable else "")
    expected = reference_state_dict(stem)
    found = shape_signature(_meta(name))
    assert describe_mismatch(expected, found) is None
    assert list(found) == list(expected)  # the official order too


@pytest.mark.parametrize("name", list_models("mobileone") + list_models("fastvit"))
def test_fused_keys_and_shapes_match_reference(name, reference_state_dict):
    expected = reference_state_dict(model_info(name).reference_stem + "_fused")
    found = shape_signature(reparameterize(_meta(name)))
    assert describe_mismatch(expected, found) is None
    assert list(found) == list(expected)
