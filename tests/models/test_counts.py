"""Parameter and MAC counts against the published figures (Apple's papers / reference implementations)."""

import pytest

from mbbench.models import model_stats

# (params of the training form, params of the deploy form, deploy MACs at the default resolution or None)
PUBLISHED = {
    "mobileone-s0": (5_293_272, 2_078_504, 275.1e6),
    "mobileone-s1": (4_825_192, 4_764_840, 825.1e6),
    "mobileone-s2": (7_884_648, 7_808_168, 1298.4e6),
    "mobileone-s3": (10_170_600, 10_078_312, 1895.8e6),
    "mobileone-s4": (14_951_248, 14_838_352, 2979.3e6),
    "mobilevit-xxs": (1_272_024, 1_272_024, None),
    "mobilevit-xs": (2_317_848, 2_317_848, None),
    "mobilevit-s": (5_578_632, 5_578_632, None),
    "mobilevitv2-050": (1_370_593, 1_370_593, 464.6e6),
    "mobilevitv2-075": (2_866_009, 2_866_009, 1028.0e6),
    "mobilevitv2-100": (4_901_841, 4_901_841, 1812.1e6),
    "mobilevitv2-125": (7_478_089, 7_478_089, 2816.9e6),
    "mobilevitv2-150": (10_594_753, 10_594_753, 4042.5e6),
    "mobilevitv2-175": (14_251_833, 14_251_833, 5488.8e6),
    "mobilevitv2-200": (18_449_329, 18_449_329, 7155.8e6),
}


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_parameter_counts_match_published(name):
    train, deploy, macs = PUBLISHED[name]
    stats = model_stats(name)
    assert stats["params_train"] == train
    assert stats["params"] == deploy
    if macs is not None:
        assert stats["macs"] == pytest.approx(macs, abs=0.05e6)  # published to 0.1M


def test_mobilevit_v1_macs_count_attention_matmuls():
    # Attention matmuls are 2 * N^2 * d per head group per pixel position: at 256, layer_3 (32x32 map) of xxs
    # alone has P=4 sequences of N=256 tokens, d=64, 2 layers -> 4 * 2 * 2 * 256^2 * 64 MACs = 67.1M.
    at_256 = model_stats("mobilevit-xxs", 256)["macs"]
    at_128 = model_stats("mobilevit-xxs", 128)["macs"]
    # Convs and linears scale with the pixel count (x4); attention with its square (x16), so the ratio is > 4.
    assert at_256 / at_128 > 4.2


def test_macs_scale_with_resolution_for_cnn():
    small = model_stats("mobileone-s0", 112)["macs"]
    full = model_stats("mobileone-s0", 224)["macs"]
    linear = 1000 * 1024  # the classifier does not scale with resolution
    assert (full - linear) / (small - linear) == pytest.approx(4.0, rel=0.02)
