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
    assert s.reasons() == ["cv 68.9% > 10%", "the rounds split into a fast (3.99 ms) and a slow (15.00 ms) cluster"]
    assert s.mode_columns() == {"mode_fast_ms": fast, "mode_slow_ms": slow}
    # the same words from a saved row: the summary asks the row, it does not re-derive them
    row = {**{k: str(v) for k, v in s.as_columns().items()}, **s.mode_columns()}
    assert LatencyStats.from_row(row).reasons() == s.reasons()


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


# -- the documented thresholds, pinned ------------------------------------------------------------------------

def test_cv_shows_the_digits_that_decide():
    from mbbench.bench.stats import cv_text

    assert cv_text(0.1004) == "10.04%" and cv_text(0.10001) == "10.001%" and cv_text(0.1234) == "12.3%"
    s = LatencyStats(30, 1.0, 0.1004, 0.8, 1.0, 1.1, 1.2, 1.3, 0.1004, 0.96, 1.04, False)
    assert s.unstable and s.reasons() == ["cv 10.04% > 10%"]
    assert not LatencyStats(30, 1.0, 0.1, 0.8, 1.0, 1.1, 1.2, 1.3, 0.1, 0.96, 1.04, False).unstable


def _quantiles(dist, n=30):
    return [dist((i + 0.5) / n) for i in range(n)]


def test_normal_and_uniform_30_round_samples_are_not_flagged():
    from statistics import NormalDist

    normal = [10 + 0.3 * z for z in _quantiles(NormalDist().inv_cdf)]
    uniform = _quantiles(lambda q: 9.5 + q)
    for sample in (normal, uniform):
        s = latency_stats(sample)
        assert two_clusters(sample) is None and not s.bimodal and not s.unstable


def test_two_tight_modes_less_than_5_percent_apart_are_not_flagged():
    sample = [4.0 + 0.001 * (i % 3) for i in range(15)] + [4.18 + 0.001 * (i % 3) for i in range(15)]  # 4.5% apart
    assert two_clusters(sample) is None
    wider = [4.0 + 0.001 * (i % 3) for i in range(15)] + [4.22 + 0.001 * (i % 3) for i in range(15)]  # 5.5% apart
    assert two_clusters(wider) is not None


def _two_modes(separation):
    """Two 15-round clusters, each with sample std 1, whose Ashman's D is exactly ``separation``."""
    base = np.array([-1.0, 1.0] * 7 + [0.0])
    base = base / base.std(ddof=1)
    # D = sqrt(2) * gap / sqrt(1 + 1) = gap; at 10 ms the gap is ~50%, far above the 5% rule, so D alone decides
    return np.concatenate([10 + base, 10 + separation + base])


@pytest.mark.parametrize(("separation", "flagged"), [(4.9, False), (5.1, True)])
def test_ashmans_d_just_either_side_of_5(separation, flagged):
    sample = _two_modes(separation)
    fast, slow = sample[:15], sample[15:]
    d = math.sqrt(2) * (slow.mean() - fast.mean()) / math.sqrt(fast.var(ddof=1) + slow.var(ddof=1))
    assert d == pytest.approx(separation)
    assert (two_clusters(sample) is not None) is flagged


# -- added for the mutation run (scripts/mutation.py): behaviour the tests above did not pin ----------------------


def test_errors_say_what_is_wrong():
    with pytest.raises(ValueError, match="^latency_stats needs at least one sample$"):
        latency_stats([])
    with pytest.raises(ValueError, match="^latency samples must be finite$"):
        latency_stats([1.0, math.nan])
    with pytest.raises(ValueError, match="^confidence must be between 0 and 1$"):
        t_critical(0.0, 5)
    with pytest.raises(ValueError, match="^degrees of freedom must be a positive integer$"):
        t_critical(0.95, 2.5)


def test_a_single_round_warns_nothing():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "Degrees of freedom <= 0" would be noise in a bench run
        s = latency_stats([5.0])
    assert math.isnan(s.std_ms) and math.isnan(s.cv)


@pytest.mark.parametrize("samples", [[1.0, 3.0], [0.2, 0.3, 0.25]])  # two rounds; sub-millisecond rounds
def test_cv_is_defined_from_two_rounds_and_below_a_millisecond(samples):
    x = np.array(samples)
    assert latency_stats(samples).cv == pytest.approx(x.std(ddof=1) / x.mean())


def test_all_zero_rounds_have_no_cv_and_no_modes():
    # a coarse timer can read 0.0 ms: no division by zero, no flag
    s = latency_stats([0.0] * 30)
    assert math.isnan(s.cv) and not s.unstable
    assert two_clusters([0.0] * 15 + [1.0] * 15) is None  # a zero-latency cluster has no relative gap


def test_float32_samples_are_summarised_in_float64():
    rng = np.random.default_rng(3)
    x32 = (4 + rng.random(30)).astype(np.float32)
    x64 = x32.astype(np.float64)
    s = latency_stats(x32)
    assert (s.mean_ms, s.std_ms) == (float(x64.mean()), float(x64.std(ddof=1)))
    flip = np.concatenate([4 + 0.05 * rng.standard_normal(20), 15 + 0.3 * rng.standard_normal(10)]).astype(np.float32)
    assert two_clusters(flip) == two_clusters(flip.astype(np.float64)) is not None


@pytest.mark.parametrize("df", [1, 2, 3, 10, 99, 100])
@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_t_critical_is_exact_up_to_100_degrees_of_freedom(df, confidence):
    assert t_critical(confidence, df) == pytest.approx(scipy_stats.t.ppf(0.5 + confidence / 2, df), rel=1e-13)


@pytest.mark.parametrize("df", [101, 150, 1000])
@pytest.mark.parametrize("confidence", [0.5, 0.8, 0.9])
def test_t_critical_above_100_is_within_the_expansion_s_own_error(df, confidence):
    # the four-term Cornish-Fisher expansion is off by ~1e-11 at df 101; a wrong term is off by 3e-11 or more
    assert t_critical(confidence, df) == pytest.approx(scipy_stats.t.ppf(0.5 + confidence / 2, df), rel=2.5e-11)


def test_cv_text_stops_at_six_decimals():
    from mbbench.bench.stats import cv_text

    # above the limit by less than the display can show: the sixth decimal is as far as the text goes
    assert cv_text(0.100000001) == "10.000000%"
    assert cv_text(0.2) == "20.0%"


def test_a_cv_of_exactly_the_limit_is_not_a_reason():
    s = LatencyStats(30, 1.0, 0.1, 0.8, 1.0, 1.1, 1.2, 1.3, 0.1, 0.96, 1.04, False)
    assert s.reasons() == [] and not s.unstable


def test_a_row_without_mode_columns():
    # an older CSV: bimodal, but no cluster means
    s = LatencyStats.from_row({"rounds": "30", "mean_ms": "5.0", "cv": "0.05", "bimodal": "True"})
    assert s.rounds == 30 and s.mean_ms == 5.0 and s.bimodal and s.modes_ms is None
    assert s.reasons() == ["the rounds split into a fast and a slow cluster"]
    assert s.mode_columns() == {"mode_fast_ms": None, "mode_slow_ms": None}
    half = LatencyStats.from_row({"rounds": "30", "bimodal": True, "mode_fast_ms": "4.0", "mode_slow_ms": ""})
    assert half.bimodal and half.modes_ms is None  # half a pair is no pair


@pytest.mark.parametrize("flag", ["False", False, "", None])
def test_a_row_not_flagged_bimodal_reads_back_unflagged(flag):
    s = LatencyStats.from_row({"rounds": 30, "mean_ms": 5.0, "cv": 0.01, "bimodal": flag})
    assert not s.bimodal and not s.unstable and s.reasons() == []


def test_a_row_without_rounds_reads_as_zero_rounds():
    s = LatencyStats.from_row({})
    assert s.rounds == 0 and math.isnan(s.mean_ms) and not s.bimodal
    assert LatencyStats.from_row({"rounds": "n/a"}).rounds == 0


def test_a_unimodal_row_has_empty_mode_columns():
    assert latency_stats([4.0 + 0.01 * (i % 7) for i in range(30)]).mode_columns() == {
        "mode_fast_ms": None, "mode_slow_ms": None}  # fmt: skip


def _reference_two_clusters(samples):
    """Brute force of the documented rule: every allowed cut, within-cluster sums of squares by numpy."""
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = x.size
    if n < 20:
        return None
    smallest = max(5, math.ceil(0.10 * n))
    best = min(range(smallest, n - smallest + 1), key=lambda k: x[:k].var() * k + x[k:].var() * (n - k))
    fast, slow = x[:best], x[best:]
    if fast.mean() <= 0 or (slow.mean() - fast.mean()) / fast.mean() < 0.05:
        return None
    spread = math.sqrt(fast.var(ddof=1) + slow.var(ddof=1))
    if spread and math.sqrt(2) * (slow.mean() - fast.mean()) / spread < 5:
        return None
    return fast.mean(), slow.mean()


def test_two_clusters_finds_the_best_cut_of_uneven_clusters():
    rng = np.random.default_rng(7)
    flagged = 0
    for _ in range(300):
        n = int(rng.integers(20, 120))
        n_slow = int(rng.integers(1, n // 2))
        fast = rng.normal(4.0, rng.uniform(0.01, 0.4), n - n_slow)
        slow = rng.normal(4.0 * rng.uniform(1.02, 3.0), rng.uniform(0.01, 0.8), n_slow)
        sample = rng.permutation(np.concatenate([fast, slow]))
        got, want = two_clusters(sample), _reference_two_clusters(sample)
        assert (got is None) == (want is None)
        if got is not None:
            flagged += 1
            assert got == pytest.approx(want, rel=1e-12)
    assert 50 < flagged < 250  # both outcomes are exercised


def test_twenty_rounds_are_enough_to_tell_two_clusters():
    flip = [4.0, 4.01, 3.99, 4.02, 3.98] * 2 + [15.0, 15.1, 14.9, 15.2, 14.8] * 2
    assert two_clusters(flip) is not None
    assert two_clusters(flip[1:]) is None  # 19 rounds


def test_a_slow_cluster_of_the_minimum_size_counts_and_a_smaller_one_does_not():
    fast = [4.0 + 0.01 * (i % 5) for i in range(25)]
    assert two_clusters(fast + [15.0, 15.1, 14.9, 15.2, 14.8]) == pytest.approx((4.02, 15.0))  # 5 of 30
    assert two_clusters(fast + [15.0, 15.1, 14.9, 15.2]) is None  # 4 of 29: a tail
    # the 10% share: 7 slow rounds of 100 are a tail, 10 are a mode
    fast = [4.0 + 0.01 * (i % 5) for i in range(93)]
    assert two_clusters(fast + [15.0 + 0.1 * i for i in range(7)]) is None
    assert two_clusters(fast[:90] + [15.0 + 0.1 * i for i in range(10)]) is not None


def test_constant_clusters():
    assert two_clusters([4.0] * 15 + [15.0] * 15) == (4.0, 15.0)  # no spread at all: as separate as can be
    # a spread of exactly 1 (one cluster constant) still needs D >= 5: here D = sqrt(2) * 3
    spread_one = [9.0, 11.0] * 7 + [10.0] + [13.0] * 15
    assert two_clusters(spread_one) is None
    assert two_clusters([0.4] * 15 + [0.8] * 15) == pytest.approx((0.4, 0.8))  # below a millisecond too


def test_the_thresholds_are_inclusive():
    # "reaches" D = 5 and "differ by" 5%: exactly at either threshold is flagged
    unit = np.array([9.0, 11.0] * 7 + [10.0])  # sample variance exactly 1
    assert two_clusters(np.concatenate([unit, unit + 5.0])) == (10.0, 15.0)  # D = sqrt(2) * 5 / sqrt(2) = 5
    assert two_clusters([20.0] * 15 + [21.0] * 15) == (20.0, 21.0)  # (21 - 20) / 20 == 0.05 exactly in floats
