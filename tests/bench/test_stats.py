import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from mbbench.bench.stats import CV_LIMIT, LatencyStats, latency_stats, t_critical, two_clusters


def test_known_sample_matches_numpy_and_scipy():
    samples = [4.0, 4.2, 3.9, 4.1, 4.4, 4.0, 3.8, 4.3, 4.1, 4.2]
    s = latency_stats(samples)
    x = np.array(samples)
    assert s.rounds == 10
    assert s.mean_ms == pytest.approx(4.1)
    assert s.std_ms == pytest.approx(x.std(ddof=1))  # sample standard deviation, not population
    assert s.std_ms == pytest.approx(0.18257418583505536)
    assert (s.min_ms, s.max_ms) == (3.8, 4.4)
    assert s.p50_ms == pytest.approx(4.1)
    assert s.p90_ms == pytest.approx(np.percentile(x, 90)) and s.p90_ms == pytest.approx(4.31)
    assert s.p99_ms == pytest.approx(np.percentile(x, 99)) and s.p99_ms == pytest.approx(4.391)
    assert s.cv == pytest.approx(0.18257418583505536 / 4.1)
    low, high = scipy_stats.t.interval(0.95, df=9, loc=x.mean(), scale=scipy_stats.sem(x))
    assert (s.ci95_low_ms, s.ci95_high_ms) == (pytest.approx(low), pytest.approx(high))
    assert not s.bimodal and not s.unstable and s.reasons() == []


def test_columns_are_the_schema_statistics():
    row = latency_stats([1.0, 2.0, 3.0]).as_columns()
    assert list(row) == ["rounds", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms", "cv",
                         "ci95_low_ms", "ci95_high_ms", "unstable", "bimodal"]
    assert row["std_ms"] == 1.0 and row["cv"] == 0.5


def test_single_sample_has_undefined_spread():
    s = latency_stats([5.0])
    assert s.mean_ms == s.p99_ms == 5.0
    assert math.isnan(s.std_ms) and math.isnan(s.cv) and math.isnan(s.ci95_low_ms)
    assert not s.unstable


def test_rejects_empty_and_non_finite():
    with pytest.raises(ValueError):
        latency_stats([])
    with pytest.raises(ValueError):
        latency_stats([1.0, float("inf")])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 1000.0), min_size=2, max_size=60))
def test_statistics_agree_with_numpy(samples):
    s = latency_stats(samples)
    x = np.array(samples)
    assert s.mean_ms == pytest.approx(x.mean())
    assert s.std_ms == pytest.approx(x.std(ddof=1), abs=1e-9)
    for q, value in zip((50, 90, 99), (s.p50_ms, s.p90_ms, s.p99_ms)):
        assert value == pytest.approx(np.percentile(x, q))
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p99_ms <= s.max_ms
    assert s.ci95_low_ms <= s.mean_ms <= s.ci95_high_ms


@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 9, 10, 29, 30, 99, 100, 101, 250, 1000, 100_000])
@pytest.mark.parametrize("confidence", [0.9, 0.95, 0.99])
def test_t_critical_matches_scipy(df, confidence):
    assert t_critical(confidence, df) == pytest.approx(scipy_stats.t.ppf(0.5 + confidence / 2, df), rel=1e-8)


def test_t_critical_known_values():
    assert t_critical(0.95, 1) == pytest.approx(12.706204736174705)
    assert t_critical(0.95, 29) == pytest.approx(2.045229642132703)


def test_t_critical_refuses_bad_arguments():
    with pytest.raises(ValueError):
        t_critical(1.0, 5)
    with pytest.raises(ValueError):
        t_critical(0.95, 0)


def test_high_cv_is_flagged_with_a_reason():
    s = latency_stats([1.0, 1.5, 2.0, 2.5, 3.0])
    assert s.cv == pytest.approx(0.395284707521)
    assert s.cv > CV_LIMIT and s.unstable and not s.bimodal
    assert s.reasons() == ["cv 39.5% > 10%"]


def test_fast_slow_flip_is_bimodal():
    # the 2-thread flip seen on this machine: ~4 ms for a while, then ~15 ms
    rng = np.random.default_rng(0)
    samples = np.concatenate([4 + 0.05 * rng.standard_normal(20), 15 + 0.3 * rng.standard_normal(10)])
    s = latency_stats(rng.permutation(samples))
    assert s.bimodal and s.unstable
    fast, slow = s.modes_ms
    assert fast == pytest.approx(4, abs=0.1) and slow == pytest.approx(15, abs=0.3)
    assert s.reasons() == ["cv 68.9% > 10%", "two clusters around 3.99 and 15 ms"]


def test_close_modes_with_low_cv_are_still_caught():
    samples = [4.0, 4.01, 3.99, 4.02, 3.98] * 4 + [4.5, 4.51, 4.49, 4.52, 4.48] * 2
    s = latency_stats(samples)
    assert s.cv < CV_LIMIT
    assert s.bimodal and s.unstable


@pytest.mark.parametrize(
    "samples",
    [
        [4.0 + 0.01 * (i % 7) for i in range(30)],  # tight, unimodal
        [4.0 + 0.01 * (i % 5) for i in range(28)] + [9.0, 9.5],  # two outliers are a tail, not a mode
        list(np.random.default_rng(1).lognormal(1.4, 0.1, 200)),  # right-skewed, unimodal
        [4.0, 4.1, 15.0, 15.2] * 2,  # too few rounds to tell
    ],
)
def test_unimodal_or_short_samples_are_not_bimodal(samples):
    assert two_clusters(samples) is None


def test_latency_stats_is_immutable():
    s = latency_stats([1.0, 2.0])
    assert isinstance(s, LatencyStats)
    with pytest.raises(AttributeError):
        s.mean_ms = 0.0
