"""Every registry model's state_dict keys, order and shapes equal the official checkpoints' manifests."""

import pytest
import torch

from mbbench.models import list_models, model_info, reparameterize
from mbbench.models.checkpoint import describe_mismatch, shape_signature


def _meta(name):
    with torch.device("meta"):
        return model_info(name).build()


@pytest.mark.parametrize("name", list_models())
def test_keys_and_shapes_match_reference(name, reference_state_dict):
    info = model_info(name)
    stem = info.reference_stem + ("_unfused" if info.reparameterizable else "")
    expected = reference_state_dict(stem)
    found = shape_signature(_meta(name))
    assert describe_mismatch(expected, found) is None
    assert list(found) == list(expected)  # the official order too


@pytest.mark.parametrize("name", list_models("mobileone"))
def test_fused_keys_and_shapes_match_reference(name, reference_state_dict):
    expected = reference_state_dict(model_info(name).reference_stem + "_fused")
    found = shape_signature(reparameterize(_meta(name)))
    assert describe_mismatch(expected, found) is None
    assert list(found) == list(expected)
