import math

import pytest

from mbbench.report import attained_throughput as _attained_throughput, correlations as _correlations, load
from .builders import mean_by_default, result_row, write_csv

# these tests were written in mean latency; the library's default is p50
attained_throughput = mean_by_default(_attained_throughput, 1)
correlations = mean_by_default(_correlations, 1)


def _models(tmp_path, latencies, macs, params, threads=1):
    rows = [
        result_row(f"m{i}", threads, lat, 0.1, macs=mac, params=par)
        for i, (lat, mac, par) in enumerate(zip(latencies, macs, params))
    ]
    return load(write_csv(tmp_path / f"r{threads}.csv", rows))


def test_known_correlations(tmp_path):
    # x = 1, 2, 3, 4 and y = 1, 3, 2, 4: sum dx*dy = 4, sum dx^2 = sum dy^2 = 5, so r = 0.8; the values are
    # their own ranks, so Spearman's rho is 0.8 too. Params run exactly against latency: -1.
    results = _models(tmp_path, [1.0, 3.0, 2.0, 4.0], [1e9, 2e9, 3e9, 4e9], [4e6, 2e6, 3e6, 1e6])
    table = correlations(results).set_index("against")
    assert table.loc["macs", "n_models"] == 4
    assert table.loc["macs", "pearson_r"] == pytest.approx(0.8)
    assert table.loc["macs", "spearman_rho"] == pytest.approx(0.8)
    assert table.loc["params", "pearson_r"] == pytest.approx(-1.0)
    assert table.loc["params", "spearman_rho"] == pytest.approx(-1.0)
    assert table.loc["macs", "note"] == ""


def test_proportional_latency_is_perfectly_correlated(tmp_path):
    macs = [0.3e9, 0.7e9, 1.4e9, 2.0e9]
    results = _models(tmp_path, [m / 1e8 for m in macs], macs, [1e6, 2e6, 3e6, 4e6])
    row = correlations(results).set_index("against").loc["macs"]
    assert row["pearson_r"] == pytest.approx(1.0) and row["spearman_rho"] == pytest.approx(1.0)


@pytest.mark.parametrize("n", [2, 3])
def test_fewer_than_four_models_decide_nothing(tmp_path, n):
    # Three perfectly ordered points give Spearman -1.00 with an exact p of 0.33, shown before as "p=0".
    results = _models(tmp_path, [1.0, 2.0, 3.0][:n], [3e9, 2e9, 1e9][:n], [1e6, 2e6, 3e6][:n])
    table = correlations(results)
    assert table["pearson_r"].isna().all() and table["spearman_rho"].isna().all()
    assert table["note"].tolist() == [f"too few models to decide ({n} models, needs 4)"] * 2


def test_unknown_macs_are_left_out(tmp_path):
    results = _models(tmp_path, [1.0, 2.0, 3.0, 4.0], [1e9, math.nan, 3e9, 4e9], [1e6, 2e6, 3e6, 4e6])
    table = correlations(results).set_index("against")
    assert table.loc["macs", "n_models"] == 3 and table.loc["params", "n_models"] == 4
    assert table.loc["params", "pearson_r"] == pytest.approx(1.0)


def test_constant_input_is_undefined(tmp_path):
    flat_latency = _models(tmp_path, [2.0, 2.0, 2.0, 2.0], [1e9, 2e9, 3e9, 4e9], [1e6, 2e6, 3e6, 4e6])
    assert set(correlations(flat_latency)["note"]) == {"undefined: latency is the same for every model"}
    flat_params = _models(tmp_path, [1.0, 2.0, 3.0, 4.0], [1e9, 2e9, 3e9, 4e9], [1e6] * 4, threads=2)
    notes = correlations(flat_params).set_index("against")["note"]
    assert notes["params"] == "undefined: params is the same for every model" and notes["macs"] == ""


def test_correlations_per_thread_count(tmp_path):
    a = write_csv(tmp_path / "a.csv", [result_row(f"m{i}", t, (i + 1) * t, 0.1, macs=(i + 1) * 1e9, params=1e6 * (4 - i))
                                       for i in range(4) for t in (1, 2)])  # fmt: skip
    table = correlations(load(a))
    assert table["threads"].tolist() == [1, 1, 2, 2]
    assert table["against"].tolist() == ["macs", "params"] * 2


def test_attained_throughput(tmp_path):
    rows = [result_row("m", 1, 2.0, 0.1, macs=1e9), result_row("n", 1, 1.0, 0.1)]
    table = attained_throughput(load(write_csv(tmp_path / "r.csv", rows)))
    assert table["model"].tolist() == ["m"]  # n's MACs are unknown
    assert table.loc[0, "ms_per_gmac"] == pytest.approx(2.0)
    # 2 * 1e9 FLOPs in 2 ms = 1e12 FLOP/s = 1000 GFLOP/s
    assert table.loc[0, "gflops"] == pytest.approx(1000.0)
