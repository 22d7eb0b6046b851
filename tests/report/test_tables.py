import math

import pytest

from mbbench.errors import UserInputError
from mbbench.report import load, long_table as _long_table, pivot as _pivot, scaling as _scaling
from .builders import mean_by_default, result_row, write_csv

# these tests were written in mean latency; the library's default is p50
long_table = mean_by_default(_long_table, 1)
pivot = mean_by_default(_pivot, 1)
scaling = mean_by_default(_scaling, 1)


def test_pivot_mean_and_std_against_hand_numbers(study_csv):
    results = load(study_csv)
    mean, std = pivot(results), pivot(results, "std")
    assert list(mean.columns) == [1, 2, 4]
    assert list(mean.index.get_level_values("model")) == ["mobileone-s0", "mobilevit-xxs", "mobilevit-xs"]
    assert set(mean.index.get_level_values("run")) == {""}
    assert mean.loc[("hostA (CPU-X)", "mobileone-s0", "")].tolist() == [10.0, 6.0, 5.0]
    xxs = mean.loc[("hostA (CPU-X)", "mobilevit-xxs", "")]
    assert xxs[[1, 2]].tolist() == [8.0, 5.0] and math.isnan(xxs[4])  # never measured at 4 threads
    assert mean.loc[("hostA (CPU-X)", "mobilevit-xs", "")].tolist() == [20.0, 12.5, 16.0]
    assert std.loc[("hostA (CPU-X)", "mobilevit-xs", "")].tolist() == [2.0, 1.0, 4.0]


def test_pivot_other_metrics(study_csv):
    results = load(study_csv)
    # p50 = mean - 0.1 and p90 = mean + std in the fixture
    assert pivot(results, "p50").loc[("hostA (CPU-X)", "mobileone-s0", "")].tolist() == pytest.approx([9.9, 5.9, 4.9])
    assert pivot(results, "p90").loc[("hostA (CPU-X)", "mobileone-s0", "")].tolist() == [11.0, 6.5, 5.25]
    with pytest.raises(UserInputError, match="Unknown metric 'p95'"):
        pivot(results, "p95")


def test_pivot_keeps_runs_apart_only_for_repeated_models(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row("m", 1, 1.0, 0.1), result_row("n", 1, 3.0, 0.1)])
    b = write_csv(tmp_path / "b.csv", [result_row("m", 1, 2.0, 0.1), result_row("n", 2, 2.0, 0.1)])
    table = pivot(load([a, b]))
    # m has 1 thread in both runs: two rows; n has each thread count once: one row.
    assert [i[1:] for i in table.index] == [("m", "a"), ("m", "b"), ("n", "")]
    assert table.loc[("hostA (CPU-X)", "n", "")].tolist() == [3.0, 2.0]


def test_pivot_never_mixes_machines(tmp_path):
    rows = [result_row("m", 1, 1.0, 0.1, host="phone"), result_row("m", 1, 5.0, 0.1, host="board")]
    table = pivot(load(write_csv(tmp_path / "r.csv", rows)))
    assert table[1].to_dict() == {("phone (CPU-X)", "m", ""): 1.0, ("board (CPU-X)", "m", ""): 5.0}


def test_scaling_speedup_efficiency_best(study_csv):
    table = scaling(load(study_csv)).set_index(["model", "threads"])
    assert table.loc[("mobileone-s0", 2), "speedup"] == pytest.approx(10 / 6)
    assert table.loc[("mobileone-s0", 4), "speedup"] == pytest.approx(2.0)
    assert table.loc[("mobileone-s0", 4), "efficiency"] == pytest.approx(0.5)
    assert table.loc[("mobilevit-xs", 4), "efficiency"] == pytest.approx(20 / 16 / 4)
    best = table[table["best"]].index.tolist()
    assert best == [("mobileone-s0", 4), ("mobilevit-xxs", 2), ("mobilevit-xs", 2)]


def test_scaling_without_one_thread_and_with_default_threads(tmp_path):
    rows = [result_row("m", 0, 1.0, 0.1), result_row("m", 2, 1.0, 0.1), result_row("n", 2, 1.0, 0.1)]
    table = scaling(load(write_csv(tmp_path / "r.csv", rows)))
    assert table["speedup"].isna().all()
    # a tie goes to the fewest threads
    assert table[table["best"]][["model", "threads"]].values.tolist() == [["m", 0], ["n", 2]]


def test_long_table_is_the_study_layout(study_csv):
    table = long_table(load(study_csv))
    assert list(table.columns[3:7]) == ["rounds", "num_threads", "mean (ms)", "std (ms)"]
    assert table.iloc[0][["model", "rounds", "num_threads", "mean (ms)", "std (ms)"]].tolist() == [
        "mobileone-s0", 50, 1, 10.0, 1.0
    ]
    p90 = long_table(load(study_csv), "p90")
    assert "std (ms)" not in p90.columns and p90["p90 (ms)"].iloc[0] == 11.0

