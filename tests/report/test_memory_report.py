"""The report's memory table and comparison (issue 23): cost per configuration, ranges over pooled runs."""

from mbbench.report import combine, compare, load, render
from tests.report.builders import result_row, write_csv


def mem(model, threads, mean, peak, heap, **extra):
    return result_row(model, threads, mean, mean / 20, peak_delta_mib=peak, heap_delta_mib=heap,
                      peak_rss_mib=peak + 50, memory_method="proc-vmhwm", **extra)


def test_a_memory_table_beside_the_latency_table(tmp_path):
    csv = write_csv(tmp_path / "m.csv", [mem("mobileone-s0", 1, 5.0, 38.2, 20.1), mem("mobileone-s0", 2, 3.0, 40.0, 21.0),
                                         mem("mobilevit-xxs", 1, 9.0, 42.5, 30.0)])
    text = render(load(csv), "markdown")
    assert "### Peak memory over the runtime (MiB) [heap]" in text
    assert "| mobileone-s0 | 38.2 [20.1] | 40.0 [21.0] |" in text
    assert "| mobilevit-xxs | 42.5 [30.0] | - |" in text
    assert "Read by: proc-vmhwm." in text


def test_old_csvs_have_no_memory_table(tmp_path):
    text = render(load(write_csv(tmp_path / "old.csv", [result_row("m", 1, 5.0, 0.5)])), "markdown")
    assert "Peak memory" not in text


def test_pooled_runs_show_the_range_and_compare_treats_memory_like_latency(tmp_path):
    a = write_csv(tmp_path / "a.csv", [mem("m", 1, 5.0, 38.0, 20.0, sha256="a" * 64)])
    b = write_csv(tmp_path / "b.csv", [mem("m", 1, 5.2, 41.0, 20.5, sha256="a" * 64)])
    pooled = combine(load([a, b]))
    assert "| m | 38.0-41.0 [20.5] |" in render(pooled, "markdown")
    new = write_csv(tmp_path / "new.csv", [mem("m", 1, 5.0, 45.6, 25.0, sha256="a" * 64)])
    result = compare(load(new), load(a))
    assert result.loc[0, "memory_ratio"] == 45.6 / 38.0
    assert "38.0 -> 45.6 (1.20x)" in render(load(new), "markdown", comparison=result)


def test_latency_against_memory_is_plotted_for_the_rows_that_record_it(tmp_path):
    from mbbench.report.plots import MEMORY_PLOT, memory_points, write_plots

    csv = write_csv(tmp_path / "m.csv", [mem("mobileone-s0", 1, 5.0, 38.2, 20.1), mem("mobilevit-xxs", 1, 9.0, 42.5, 30.0),
                                         result_row("old", 1, 4.0, 0.4)])
    points = memory_points(load(csv), "mean")
    assert sorted(zip(points["model"], points["memory_mib"], points["latency_ms"])) == [
        ("mobileone-s0", 38.2, 5.0), ("mobilevit-xxs", 42.5, 9.0)]
    written = write_plots(load(csv), tmp_path / "plots")
    assert (tmp_path / "plots" / MEMORY_PLOT) in written and (tmp_path / "plots" / MEMORY_PLOT).stat().st_size > 0
    pooled = write_csv(tmp_path / "pooled.csv", [mem("mobileone-s0", 1, 5.0, 38.0, 20.1),
                                                 mem("mobileone-s0", 1, 7.0, 40.0, 20.1)])
    assert memory_points(load(pooled), "mean")[["memory_mib", "latency_ms"]].values.tolist() == [[39.0, 6.0]]
    old = write_csv(tmp_path / "old.csv", [result_row("old", 1, 4.0, 0.4)])
    assert MEMORY_PLOT not in {p.name for p in write_plots(load(old), tmp_path / "old-plots")}
