import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbbench.bench.stats import latency_stats
from mbbench.errors import UserInputError
from mbbench.report import combine, compare, load, pooled_stats

from .builders import result_row, rows_from_samples, shifted_samples, write_csv


def test_pooled_stats_hand_numbers():
    # N = 10, M = (4*10 + 6*12) / 10 = 11.2,
    # S^2 = (3*2^2 + 5*3^2 + 4*1.2^2 + 6*0.8^2) / 9 = (12 + 45 + 5.76 + 3.84) / 9 = 7.4
    rounds, mean, std = pooled_stats([4, 6], [10.0, 12.0], [2.0, 3.0])
    assert (rounds, mean) == (10, pytest.approx(11.2))
    assert std == pytest.approx(math.sqrt(7.4))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.floats(0.1, 100.0, allow_nan=False), min_size=1, max_size=30),
        min_size=1, max_size=5,
    )
)  # fmt: skip
def test_pooled_stats_equal_stats_of_the_concatenation(groups):
    arrays = [np.array(g) for g in groups]
    stds = [a.std(ddof=1) if a.size > 1 else math.nan for a in arrays]
    rounds, mean, std = pooled_stats([a.size for a in arrays], [a.mean() for a in arrays], stds)
    everything = np.concatenate(arrays)
    assert rounds == everything.size
    assert mean == pytest.approx(everything.mean(), rel=1e-9)
    if everything.size > 1:
        assert std == pytest.approx(everything.std(ddof=1), rel=1e-7, abs=1e-9)
    else:
        assert math.isnan(std)


def test_combine_without_samples_uses_the_pooled_formula(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 10.0, 2.0, rounds=4), result_row("m", 2, 7.0, 1.0)])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 12.0, 3.0, rounds=6)])
    pooled = combine(load([a, b]))
    row = pooled[pooled["threads"] == 1].iloc[0]
    assert row["rounds"] == 10 and row["mean_ms"] == pytest.approx(11.2)
    assert row["std_ms"] == pytest.approx(math.sqrt(7.4))
    assert row["min_ms"] == 10.0 - 2 * 2.0 and row["max_ms"] == 12.0 + 3 * 3.0
    assert math.isnan(row["p50_ms"])
    assert row["cv"] == pytest.approx(math.sqrt(7.4) / 11.2)
    # Student t with 9 degrees of freedom: t(0.975, 9) = 2.2622
    assert row["ci95_high_ms"] - row["mean_ms"] == pytest.approx(2.2622 * math.sqrt(7.4) / math.sqrt(10), rel=1e-4)
    assert row["run"] == "pooled: a + b"
    # the unrepeated 2-thread row is left as it was
    assert pooled[pooled["threads"] == 2][["run", "mean_ms"]].values.tolist() == [["a", 7.0]]


def test_combine_with_samples_recomputes_everything(tmp_path):
    sa, sb = shifted_samples(seed=1), shifted_samples(seed=2, shift=5.0)  # two runs that disagree
    a = write_csv(tmp_path / "a.csv", rows_from_samples(sa), sa)
    b = write_csv(tmp_path / "b.csv", rows_from_samples(sb), sb)
    pooled = combine(load([a, b], samples=True))
    everything = np.concatenate([sa[("mobileone-s0", 1)], sb[("mobileone-s0", 1)]])
    row = pooled[pooled["threads"] == 1].iloc[0]
    assert row["rounds"] == 120
    assert row["mean_ms"] == pytest.approx(everything.mean())
    assert row["std_ms"] == pytest.approx(everything.std(ddof=1))
    assert row["p90_ms"] == pytest.approx(np.percentile(everything, 90))
    assert row["cv"] == pytest.approx(everything.std(ddof=1) / everything.mean())
    assert len(row["samples"]) == 120
    expected = latency_stats(everything)  # the flags are the bench's verdict on the pooled samples
    assert (row["unstable"], row["bimodal"]) == (expected.unstable, expected.bimodal) == (True, True)
    assert row["ci95_low_ms"] == pytest.approx(expected.ci95_low_ms)


def test_combine_never_pools_across_machines(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 1.0, 0.1, host="x")])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 2.0, 0.1, host="y")])
    assert combine(load([a, b]))["mean_ms"].tolist() == [1.0, 2.0]


def test_combine_keeps_different_model_files_apart(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("mobileone-s0", 1, 1.0, 0.1, sha256="folded")])
    b = write_csv(tmp_path / "b.csv", [result_row("mobileone-s0", 1, 2.0, 0.1, sha256="unfolded")])
    c = write_csv(tmp_path / "c.csv", [result_row("mobileone-s0", 1, 3.0, 0.1, sha256="folded")])
    pooled = combine(load([a, b, c]))
    assert pooled[["run", "mean_ms"]].values.tolist() == [["pooled: a + c", 2.0], ["b", 2.0]]


def test_pooled_row_takes_metadata_from_the_run_that_has_it(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 1.0, 0.1)])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 2.0, 0.1, macs=3e8, params=2e6)])
    row = combine(load([a, b])).iloc[0]
    assert (row["macs"], row["params"]) == (3e8, 2e6)


def _pair(tmp_path, base_samples, new_samples):
    base = write_csv(tmp_path / "base.csv", rows_from_samples(base_samples), base_samples)
    new = write_csv(tmp_path / "new.csv", rows_from_samples(new_samples), new_samples)
    return load([new], samples=True), load([base], samples=True)


def test_identical_samples_are_not_significant(tmp_path):
    samples = shifted_samples(seed=3)
    new, base = _pair(tmp_path, samples, samples)
    result = compare(new, base)
    assert result["ratio"].tolist() == [1.0, 1.0]
    assert result["p_value"].tolist() == [1.0, 1.0]
    assert result["significant"].tolist() == [False, False]
    assert set(result["verdict"]) == {"not significant"}


def test_shifted_samples_are_significant(tmp_path):
    base_samples = shifted_samples(seed=4)
    new_samples = shifted_samples(seed=5, shift=1.0)  # +1 ms with std 0.1-0.2 ms: unmistakable
    new, base = _pair(tmp_path, base_samples, new_samples)
    result = compare(new, base).set_index("threads")
    assert result["significant"].tolist() == [True, True]
    assert set(result["verdict"]) == {"slower"}
    assert (result["p_value"] < 1e-10).all()
    expected = np.mean(new_samples[("mobileone-s0", 1)]) / np.mean(base_samples[("mobileone-s0", 1)])
    assert result.loc[1, "ratio"] == pytest.approx(expected)
    faster = compare(base, new)
    assert set(faster["verdict"]) == {"faster"} and (faster["ratio"] < 1).all()


def test_without_samples_compare_cannot_tell(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 0.1)])
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 12.0, 0.1), result_row("m", 2, 6.0, 0.1)])
    result = compare(load(new, samples=True), load(base, samples=True))
    assert result[["threads", "ratio", "verdict"]].values.tolist() == [[1, 1.2, "can't tell"]]
    assert result["significant"].tolist() == [None]
    assert math.isnan(result["p_value"].iloc[0])


def test_compare_uses_the_chosen_metric(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0)])  # p90 = 11
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 10.0, 2.0)])  # p90 = 12
    result = compare(load(new), load(base), metric="p90")
    assert result["ratio"].iloc[0] == pytest.approx(12 / 11)
    assert result["base_p90_ms"].iloc[0] == 11.0


def test_compare_across_two_machines_when_each_side_has_one(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0, host="old")])
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 5.0, 1.0, host="new")])
    result = compare(load(new), load(base))
    assert result[["machine", "base_machine", "ratio"]].values.tolist() == [["new (CPU-X)", "old (CPU-X)", 0.5]]


def test_compare_without_overlap_is_an_error(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0)])
    new = write_csv(tmp_path / "new.csv", [result_row("n", 1, 10.0, 1.0)])
    with pytest.raises(UserInputError, match="No \\(model, threads\\) pair appears both"):
        compare(load(new), load(base))
