"""The ratio studies' one promise: each variant's latency divided by its baseline's at the same thread count.

Hand-made results frames, so every ratio is known in advance, through the real table, summary and plot code.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from mbbench.pipeline import RunFolder
from mbbench.report import to_markdown
from mbbench.studies._core import ratio_table
from mbbench.studies._plots import ratio_plot
from mbbench.studies._summary import ratio_document

# (model, threads, p50_ms, mean_ms, oversubscribed): p50 and mean give different ratios on purpose
ROWS = [
    ("base", 1, 10.0, 20.0, False),
    ("base", 2, 5.0, 8.0, False),
    ("slow", 1, 15.0, 30.0, False),
    ("slow", 2, 4.0, 10.0, True),
    ("odd", 4, 3.0, 3.0, False),  # no baseline row at 4 threads
]


def results() -> pd.DataFrame:
    records = []
    for model, threads, p50, mean, over in ROWS:
        records.append({
            "model": model, "factor": "f", "value": model, "threads": threads, "p50_ms": p50, "mean_ms": mean,
            "std_ms": 0.5, "min_ms": p50 * 0.9, "p90_ms": p50 * 1.1, "macs": 1e6, "params": 1e3,
            "oversubscribed": over, "unstable": False, "machine": "test-host (Test CPU)",
        })  # fmt: skip
    return pd.DataFrame(records)


def ratios(table: pd.DataFrame) -> dict:
    return {(r.model, r.threads): r.ratio for r in table.itertuples()}


def test_ratio_is_the_variant_over_the_baseline_of_the_median():
    got = ratios(ratio_table(results(), "base"))
    assert got[("base", 1)] == 1.0 and got[("base", 2)] == 1.0
    assert got[("slow", 1)] == pytest.approx(1.5, rel=1e-12)  # 15 / 10: slower is above 1
    assert got[("slow", 2)] == pytest.approx(0.8, rel=1e-12)  # 4 / 5: faster is below 1
    assert math.isnan(got[("odd", 4)])


def test_ratio_of_the_mean_uses_the_means():
    table = ratio_table(results(), "base", metric="mean")
    got = ratios(table)
    assert got[("slow", 1)] == pytest.approx(1.5, rel=1e-12)  # 30 / 20
    assert got[("slow", 2)] == pytest.approx(1.25, rel=1e-12)  # 10 / 8
    assert list(table["latency_ms"]) == [20.0, 8.0, 30.0, 10.0, 3.0]
    assert list(table["contended"]) == [False] * 5  # a CSV without the column has no contended row


def test_another_baseline_gives_the_inverse():
    got = ratios(ratio_table(results(), "slow"))
    assert got[("base", 1)] == pytest.approx(10 / 15, rel=1e-12)
    assert got[("base", 2)] == pytest.approx(1.25, rel=1e-12)


def test_the_summary_shows_each_ratio_with_its_latency_and_marks(tmp_path):
    table = ratio_table(results(), "base")
    folder = RunFolder(tmp_path, "study")
    describe = {"base": "the baseline", "slow": "a variant"}
    document = ratio_document("t", [], table, "what", describe, "base", results(), folder, "p50")
    text = to_markdown(document)
    assert "| variant | what | 1 thread (ms) | vs base | 2 threads (ms) | vs base | 4 threads (ms) | vs base |" in text
    assert "| base | the baseline | 10.00 | 1.00x | 5.00 | 1.00x | - | - |" in text
    assert "| slow | a variant | 15.00 | 1.50x | 4.00 † | 0.80x | - | - |" in text
    assert "| odd |  | - | - | - | - | 3.00 | - |" in text
    assert "† oversubscribed" in text and "! unstable" not in text


def test_the_plot_writes_the_same_ratios_on_the_bars():
    table = ratio_table(results(), "base")
    fig = ratio_plot(table, "t", "base", {}, "p50")
    labels = sorted(t.get_text().strip() for t in fig.axes[0].texts)
    assert labels == ["0.80x †", "1.00x", "1.00x", "1.50x"]


def test_the_table_has_the_documented_columns_and_a_fresh_index():
    # a filtered frame keeps its row labels; the table must not carry them (as an index or an "index" column)
    frame = results().iloc[[4, 2, 0]]
    table = ratio_table(frame, "base")
    assert list(table.columns) == [
        "model", "factor", "value", "threads", "latency_ms", "ratio", "mean_ms", "std_ms", "min_ms", "p90_ms",
        "macs", "params", "oversubscribed", "unstable", "contended",
    ]  # fmt: skip
    assert list(table.index) == [0, 1, 2]
    assert list(table["model"]) == ["odd", "slow", "base"]


def test_the_table_carries_each_row_s_other_figures():
    frame = results()
    frame["std_ms"] = [0.1, 0.2, 0.3, 0.4, 0.5]
    table = ratio_table(frame, "base")
    for extra in ("mean_ms", "std_ms", "min_ms", "p90_ms", "macs", "params"):
        assert list(table[extra]) == list(frame[extra]), extra
    assert list(table["oversubscribed"]) == [False, False, False, True, False]
