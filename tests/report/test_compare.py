import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mbbench.bench.stats import latency_stats
from mbbench.errors import UserInputError
from mbbench.report import combine, compare as _compare, load, pooled_stats
from .builders import mean_by_default, result_row, rows_from_samples, shifted_samples, write_csv

# these tests were written in mean latency; the library's default is p50
compare = mean_by_default(_compare, 2)


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
    assert result[["threads", "verdict"]].values.tolist() == [[1, "can't tell"], [2, "only in new"]]
    assert result["ratio"].iloc[0] == 1.2
    assert result["significant"].tolist() == [None, None]
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
    with pytest.raises(UserInputError) as caught:
        compare(load(new), load(base))
    assert str(caught.value) == ("No (model, threads) pair appears both in the CSVs and in the base CSV; compare runs "
                                 "of the same models and thread counts.")


def test_mann_whitney_p_value_is_scipy_s_on_the_raw_samples(tmp_path):
    # Small known samples with a partial overlap: the p-value must be exactly scipy's two-sided test on them,
    # and the verdict must follow alpha on the right side and the ratio's direction.
    from scipy.stats import mannwhitneyu

    base_samples = {("m", 1): np.array([10.0, 10.2, 10.4, 10.1, 10.3, 10.5, 9.9, 10.0])}
    new_samples = {("m", 1): np.array([10.4, 10.6, 10.8, 10.5, 10.2, 10.9, 10.7, 10.3])}
    new, base = _pair(tmp_path, base_samples, new_samples)
    expected = mannwhitneyu(new_samples[("m", 1)], base_samples[("m", 1)], alternative="two-sided").pvalue
    row = compare(new, base).iloc[0]
    assert row["p_value"] == pytest.approx(expected, rel=1e-12)
    assert 0.001 < expected < 0.05  # so the two alphas below fall on either side of it
    assert row["verdict"] == "slower" and row["ratio"] > 1
    assert compare(new, base, alpha=expected / 2).iloc[0]["verdict"] == "not significant"


def test_same_file_under_two_labels_is_paired_by_sha256(tmp_path):
    # bench labels a file "mobileone-s0" alone and "mobileone-s0-224-opset17" next to another export of it.
    alone = write_csv(tmp_path / "one.csv", [result_row("mobileone-s0", 1, 10.0, 0.5, sha256="aa" * 32)])
    company = write_csv(tmp_path / "two.csv", [
        result_row("mobileone-s0-224-opset17", 1, 11.0, 0.5, sha256="aa" * 32),
        result_row("mobileone-s0-256-opset17", 1, 13.0, 0.5, sha256="bb" * 32),
    ])  # fmt: skip
    result = compare(load(company), load(alone))
    paired = result[result["verdict"] != "only in new"]
    assert paired[["model", "ratio"]].values.tolist() == [["mobileone-s0-224-opset17", 1.1]]
    assert "base labels it mobileone-s0" in paired["note"].iloc[0]
    assert result[result["verdict"] == "only in new"]["model"].tolist() == ["mobileone-s0-256-opset17"]


def test_different_files_with_one_label_are_not_paired(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 0.5, sha256="aa" * 32),
                                             result_row("m", 2, 6.0, 0.5, sha256="aa" * 32)])  # fmt: skip
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 10.0, 0.5, sha256="cc" * 32),
                                           result_row("m", 2, 6.0, 0.5, sha256="aa" * 32)])  # fmt: skip
    result = compare(load(new), load(base))
    assert sorted(result["verdict"].tolist()) == ["can't tell", "only in base", "only in new"]


def test_mismatched_input_shapes_are_said_per_row_and_one_sided_models_listed(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("mobilevit-xs", 1, 20.0, 1.0, input_shape="1x3x224x224"),
                                             result_row("gone", 1, 5.0, 0.1)])  # fmt: skip
    new = write_csv(tmp_path / "new.csv", [result_row("mobilevit-xs", 1, 26.0, 1.0, input_shape="1x3x256x256"),
                                           result_row("fresh", 1, 7.0, 0.1)])  # fmt: skip
    result = compare(load(new), load(base))
    rows = result.set_index("model")
    assert rows.loc["mobilevit-xs", "note"] == "input 1x3x256x256 vs base 1x3x224x224: not the same input"
    assert rows.loc["fresh", "verdict"] == "only in new" and rows.loc["gone", "verdict"] == "only in base"
    from mbbench.report import render

    text = render(load(new), "markdown", comparison=result)
    assert "| mobilevit-xs | 1 | 20.00 | 26.00 | 1.300 | - | can't tell: no raw samples | input 1x3x256x256 vs " in text
    assert "| gone | 1 | 5.00 | - | - | - | only in base |" in text
    assert "| fresh | 1 | - | 7.00 | - | - | only in new |" in text


def test_alpha_must_be_a_level(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0)])
    for alpha in (math.nan, 0.0, 1.0, 2.0):
        with pytest.raises(UserInputError, match="significance level"):
            compare(load(base), load(base), alpha=alpha)


# -- added for the mutation run (scripts/mutation.py): what a pooled row and a comparison row hold ----------------

COMPARE_COLUMNS = ["machine", "base_machine", "model", "threads", "run", "base_mean_ms", "new_mean_ms", "base_rounds",
                   "new_rounds", "base_peak_delta_mib", "new_peak_delta_mib", "memory_ratio", "ratio", "p_value",
                   "significant", "verdict", "note"]  # fmt: skip


def test_a_pooled_row_has_the_input_s_columns_and_the_pool_s_facts(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 10.0, 2.0, rounds=4, session_ms=5.0, timestamp="t1",
                                                  oversubscribed=False, unstable=False)])  # fmt: skip
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 12.0, 3.0, rounds=6, session_ms=6.0, timestamp="t2",
                                                  oversubscribed=True, unstable=True)])  # fmt: skip
    results = load([a, b])
    pooled = combine(results)
    # nothing lost, nothing added but the confidence interval the pool recomputes
    assert sorted(pooled.columns) == sorted({*results.columns, "ci95_low_ms", "ci95_high_ms"})
    row = pooled.iloc[0]
    assert row["timestamp"] == "t1"  # metadata of the first run
    assert row["source"] == f"{a}; {b}" and row["run_index"] == 0
    assert bool(row["oversubscribed"]) is True
    assert bool(row["unstable"]) is True
    half = 2.2621571627409915 * math.sqrt(7.4) / math.sqrt(10)  # t(0.975, 9)
    assert (row["ci95_low_ms"], row["ci95_high_ms"]) == (pytest.approx(11.2 - half), pytest.approx(11.2 + half))
    # per-run numbers say nothing about the pool
    assert math.isnan(row["session_ms"]) and math.isnan(row["p50_ms"]) and pooled["p50_ms"].dtype == float


def test_a_pool_of_stable_runs_is_stable(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 10.0, 0.1, unstable=False)])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 10.1, 0.1, unstable=False)])
    row = combine(load([a, b])).iloc[0]
    assert not row["unstable"] and not row["oversubscribed"]


def test_pooling_two_single_round_runs(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 10.0, math.nan, rounds=1)])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 12.0, math.nan, rounds=1)])
    row = combine(load([a, b])).iloc[0]
    x = np.array([10.0, 12.0])
    assert row["rounds"] == 2 and row["std_ms"] == pytest.approx(x.std(ddof=1))
    half = 12.706204736174705 * x.std(ddof=1) / math.sqrt(2)  # t(0.975, 1)
    assert row["ci95_low_ms"] == pytest.approx(11.0 - half) and row["ci95_high_ms"] == pytest.approx(11.0 + half)


@pytest.mark.parametrize(("means", "cv"), [((0.4, 0.6), "defined"), ((0.0, 0.0), "nan")])
def test_the_pooled_cv_below_a_millisecond_and_at_zero(tmp_path, means, cv):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 1.0, 0.0 if not means[0] else 0.05, mean_ms=means[0])])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 1.0, 0.0 if not means[1] else 0.05, mean_ms=means[1])])
    row = combine(load([a, b])).iloc[0]
    if cv == "nan":
        assert math.isnan(row["cv"])
    else:
        assert row["cv"] == pytest.approx(row["std_ms"] / row["mean_ms"])


def test_comparison_rows_have_the_documented_columns_and_both_round_counts(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0, rounds=30), result_row("gone", 1, 5.0, 0.1)])
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 11.0, 1.0, rounds=40), result_row("fresh", 1, 5.0, 0.1)])
    result = compare(load(new), load(base))
    assert list(result.columns) == COMPARE_COLUMNS
    rows = result.set_index("model")
    assert (rows.loc["m", "run"], rows.loc["m", "base_rounds"], rows.loc["m", "new_rounds"]) == ("new", 30, 40)
    for model in ("fresh", "gone"):
        assert math.isnan(rows.loc[model, "ratio"]) and math.isnan(rows.loc[model, "p_value"])
        assert rows.loc[model, "note"] == "" and rows.loc[model, "significant"] is None
    assert rows.loc["gone", "run"] == "" and rows.loc["fresh", "run"] == "new"


def test_each_run_of_new_is_compared_with_the_base(tmp_path):
    # "rows of new are compared run by run": a second run of the same measurement is not "only in new"
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0)])
    one = write_csv(tmp_path / "one.csv", [result_row("m", 1, 11.0, 1.0)])
    two = write_csv(tmp_path / "two.csv", [result_row("m", 1, 12.0, 1.0)])
    result = compare(load([one, two]), load(base))
    assert result[["run", "ratio", "verdict"]].values.tolist() == [["one", 1.1, "can't tell"], ["two", 1.2, "can't tell"]]
    hashed = [write_csv(tmp_path / f"{name}.csv", [result_row("m", 1, mean, 1.0, sha256="aa" * 32)])
              for name, mean in (("hbase", 10.0), ("h1", 11.0), ("h2", 12.0))]  # fmt: skip
    result = compare(load(hashed[1:]), load(hashed[0]))
    assert result[["run", "ratio"]].values.tolist() == [["h1", 1.1], ["h2", 1.2]]


def test_machines_are_matched_when_a_side_holds_several(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0, host="x"), result_row("m", 1, 20.0, 1.0, host="y")])
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 22.0, 1.0, host="y"), result_row("m", 1, 11.0, 1.0, host="x")])
    result = compare(load(new), load(base))
    assert sorted(result[["machine", "base_machine", "ratio"]].values.tolist()) == [
        ["x (CPU-X)", "x (CPU-X)", 1.1], ["y (CPU-X)", "y (CPU-X)", 1.1]]  # fmt: skip


def test_an_opset_known_on_one_side_only_does_not_prevent_the_pairing(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0, opset=17), result_row("m", 2, 6.0, 1.0, opset=17)])
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 11.0, 1.0, opset=17.0),  # read back as 17.0
                                           result_row("m", 2, 6.6, 1.0, opset=None)])  # fmt: skip
    result = compare(load(new), load(base))
    assert result[["threads", "ratio"]].values.tolist() == [[1, 1.1], [2, pytest.approx(1.1)]]
    other = write_csv(tmp_path / "other.csv", [result_row("m", 1, 11.0, 1.0, opset=13)])
    message = ("^The CSVs and the base measured other files under the same names, so nothing can be compared: m at 1 "
               "thread: opset 13 vs 17. Compare runs of the same exports")
    with pytest.raises(UserInputError, match=message):
        compare(load(other), load(base))  # opset 13 is not the base's opset 17: the reason is said (issue 20)


def test_an_opset_missing_from_the_base_does_not_prevent_the_pairing(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0, opset=None)])  # an older CSV
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 12.0, 1.0, opset=17)])
    assert compare(load(new), load(base))[["threads", "ratio"]].values.tolist() == [[1, pytest.approx(1.2)]]


def test_a_shape_known_on_one_side_only_is_no_note_and_notes_are_joined(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 10.0, 1.0, sha256="aa" * 32),
                                             result_row("k", 1, 10.0, 1.0, input_shape="1x3x224x224")])  # fmt: skip
    new = write_csv(tmp_path / "new.csv", [result_row("m-224", 1, 11.0, 1.0, sha256="aa" * 32, input_shape="1x3x256x256"),
                                           result_row("k", 1, 10.0, 1.0)])  # fmt: skip
    notes = compare(load(new), load(base)).set_index("model")["note"]
    assert notes["k"] == ""
    assert notes["m-224"] == "base labels it m"
    both = write_csv(tmp_path / "both.csv", [result_row("k2", 1, 11.0, 1.0, sha256="bb" * 32, input_shape="1x3x256x256")])
    based = write_csv(tmp_path / "based.csv", [result_row("k", 1, 10.0, 1.0, sha256="bb" * 32, input_shape="1x3x224x224")])
    assert compare(load(both), load(based))["note"].tolist() == [
        "input 1x3x256x256 vs base 1x3x224x224: not the same input; base labels it k"]


def test_rows_missing_a_checksum_are_kept_apart_not_dropped(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 10.0, 1.0, sha256="aa" * 32)])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 12.0, 1.0)])  # an older CSV: no sha256 column
    c = write_csv(tmp_path / "c.csv", [result_row("m", 1, 14.0, 1.0)])
    pooled = combine(load([a, b, c]))
    assert sorted(pooled[["run", "mean_ms"]].values.tolist()) == [["a", 10.0], ["pooled: b + c", 13.0]]


@pytest.mark.parametrize("base_hosts", [("y", "x"), ("x",)])
def test_a_side_with_several_machines_pairs_by_machine(tmp_path, base_hosts):
    means = {"x": 10.0, "y": 20.0}
    new_hosts = ("x",) if len(base_hosts) == 2 else ("y", "x")
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, means[h], 1.0, host=h) for h in base_hosts])
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, means[h] * 1.1, 1.0, host=h) for h in new_hosts])
    result = compare(load(new), load(base)).set_index("machine")
    assert result.loc["x (CPU-X)", "ratio"] == pytest.approx(1.1)
    if "y" in new_hosts:
        assert result.loc["y (CPU-X)", "verdict"] == "only in new"


@pytest.mark.parametrize(("base_mean", "ratio"), [(0.5, 1.2), (0.0, math.nan)])
def test_the_ratio_below_a_millisecond_and_over_a_zero_base(tmp_path, base_mean, ratio):
    base = write_csv(tmp_path / "base.csv", [result_row("m", 1, 1.0, 0.1, mean_ms=base_mean)])
    new = write_csv(tmp_path / "new.csv", [result_row("m", 1, 1.0, 0.1, mean_ms=0.6)])
    got = compare(load(new), load(base))["ratio"].iloc[0]
    assert math.isnan(got) if math.isnan(ratio) else got == pytest.approx(ratio)


def test_samples_on_one_side_only_cannot_tell(tmp_path):
    samples = shifted_samples(seed=6)
    new = write_csv(tmp_path / "new.csv", rows_from_samples(samples), samples)
    base = write_csv(tmp_path / "base.csv", rows_from_samples(shifted_samples(seed=7)))  # no sidecar
    for pair in ((new, base), (base, new)):
        result = compare(load(pair[0], samples=True), load(pair[1], samples=True))
        assert set(result["verdict"]) == {"can't tell"} and result["p_value"].isna().all()


def test_a_p_value_equal_to_alpha_is_not_significant(tmp_path):
    from scipy.stats import mannwhitneyu

    base_samples = {("m", 1): np.array([10.0, 10.2, 10.4, 10.1, 10.3, 10.5, 9.9, 10.0])}
    new_samples = {("m", 1): np.array([10.4, 10.6, 10.8, 10.5, 10.2, 10.9, 10.7, 10.3])}
    new, base = _pair(tmp_path, base_samples, new_samples)
    p = float(mannwhitneyu(new_samples[("m", 1)], base_samples[("m", 1)], alternative="two-sided").pvalue)
    assert compare(new, base, alpha=p).iloc[0]["verdict"] == "not significant"  # significant means p < alpha


def test_two_runs_of_other_files_under_one_name_say_so(tmp_path):
    # issue 20 A3: not "no pair", but which names matched and how their files differ
    base = write_csv(tmp_path / "base.csv", [result_row("mobileone-s0", 1, 10.0, 1.0, sha256="a" * 64, opset=17)])
    new = write_csv(tmp_path / "new.csv", [result_row("mobileone-s0", 1, 5.0, 1.0, sha256="b" * 64, opset=17,
                                                      precision="int8")])
    with pytest.raises(UserInputError, match="other files under the same names, so nothing can be compared: "
                                             "mobileone-s0 at 1 thread: sha256 bbbbbbbb vs aaaaaaaa"):
        compare(load(new), load(base))


def test_memory_is_compared_like_latency(tmp_path):
    base = write_csv(tmp_path / "base.csv", [result_row("a", 1, 10.0, 0.5, peak_delta_mib=40.0),
                                             result_row("b", 1, 10.0, 0.5, peak_delta_mib=0.5),
                                             result_row("c", 1, 10.0, 0.5, peak_delta_mib=0.0),
                                             result_row("d", 1, 10.0, 0.5)])  # fmt: skip
    new = write_csv(tmp_path / "new.csv", [result_row("a", 1, 10.0, 0.5, peak_delta_mib=30.0),
                                           result_row("b", 1, 10.0, 0.5, peak_delta_mib=2.0),
                                           result_row("c", 1, 10.0, 0.5, peak_delta_mib=3.0),
                                           result_row("d", 1, 10.0, 0.5, peak_delta_mib=5.0)])  # fmt: skip
    rows = compare(load(new), load(base)).set_index("model")
    assert rows.loc["a", ["base_peak_delta_mib", "new_peak_delta_mib", "memory_ratio"]].tolist() == [40.0, 30.0, 0.75]
    assert rows.loc["b", "memory_ratio"] == 4.0  # a base below 1 MiB is still a base
    assert math.isnan(rows.loc["c", "memory_ratio"])  # nothing to divide by
    assert math.isnan(rows.loc["d", "base_peak_delta_mib"]) and rows.loc["d", "new_peak_delta_mib"] == 5.0
    assert math.isnan(rows.loc["d", "memory_ratio"])


def test_pooled_memory_keeps_the_range_the_runs_span(tmp_path):
    first = write_csv(tmp_path / "one.csv", [result_row("a", 1, 10.0, 0.5, peak_delta_mib=40.0,
                                                        heap_delta_mib=30.0, peak_rss_mib=120.0)])
    second = write_csv(tmp_path / "two.csv", [result_row("a", 1, 11.0, 0.5, peak_delta_mib=44.0,
                                                         heap_delta_mib=28.0, peak_rss_mib="n/a")])
    (row,) = combine(load([first, second])).to_dict("records")
    assert (row["peak_delta_mib"], row["peak_delta_mib_low"]) == (44.0, 40.0)
    assert (row["heap_delta_mib"], row["heap_delta_mib_low"]) == (30.0, 28.0)
    assert (row["peak_rss_mib"], row["peak_rss_mib_low"]) == (120.0, 120.0)  # what is not a number is left out


def test_other_files_under_the_same_names_are_said_pair_by_pair(tmp_path):
    base = write_csv(tmp_path / "base.csv", [
        result_row(f"m{i}", t, 10.0, 0.5, sha256=f"{i}{t}" * 32, opset=17) for i in range(3) for t in (1, 2)])
    new = write_csv(tmp_path / "new.csv", [
        result_row(f"m{i}", t, 10.0, 0.5, sha256="ab" * 32, opset=12 if i == 0 else 17)
        for i in range(3) for t in (1, 2)])  # fmt: skip
    with pytest.raises(UserInputError) as caught:
        compare(load(new), load(base))
    message = str(caught.value)
    assert message.startswith("The CSVs and the base measured other files under the same names")
    assert ("m0 at 1 thread: sha256 abababab vs 01010101, opset 12 vs 17; m0 at 2 threads: sha256 abababab vs "
            "02020202, opset 12 vs 17; m1 at 1 thread: sha256 abababab vs 11111111; m1 at 2 threads: sha256 "
            "abababab vs 12121212; and 2 more.") in message
    unlabelled = write_csv(tmp_path / "u.csv", [result_row("m0", 1, 10.0, 0.5, opset=17, sha256="")])
    labelled = write_csv(tmp_path / "l.csv", [result_row("m0", 1, 10.0, 0.5, opset=12, sha256="")])
    with pytest.raises(UserInputError, match=r"m0 at 1 thread: opset 17 vs 12\. Compare"):
        compare(load(unlabelled), load(labelled))
