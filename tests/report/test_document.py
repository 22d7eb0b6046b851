import io
import json

import pandas as pd
import pytest

from mbbench.report import build_document as _build_document, combine, compare as _compare, load, render as _render, to_markdown
from .builders import mean_by_default, result_row, rows_from_samples, shifted_samples, write_csv

# these tests were written in mean latency; the library's default is p50
build_document = mean_by_default(_build_document, 1)
compare = mean_by_default(_compare, 2)
render = mean_by_default(_render, 2)

EXPECTED_WIDE = """\
# mbbench report: mean latency

Sources: small.csv.

Every row: runtime onnxruntime.

## hostA (CPU-X)

### Mean latency (ms) ± std

| model | 1 thread | 2 threads | 4 threads |
| :--- | ---: | ---: | ---: |
| mobileone-s0 | 10.00 ± 1.00 | 6.00 ± 0.50 | 5.00 ± 0.25 † |
| mobilevit-xxs | 0.800 ± 0.040 | 0.500 ± 0.020 | - |

Rounds per measurement: 50.

† oversubscribed: more threads than the cores this process could use: the row measures contention.

### Speed-up vs 1 thread (mean latency)

| model | best threads | 2 threads | 4 threads |
| :--- | ---: | ---: | ---: |
| mobileone-s0 | 4 (5.00 ms) | 1.67x (83%) | 2.00x (50%) |
| mobilevit-xxs | 2 (0.500 ms) | 1.60x (80%) | - |

Speed-up = latency(1 thread) / latency(n threads); parallel efficiency (in brackets) = speed-up / n.
"""

EXPECTED_LONG_TABLE = """\
### Mean latency

| model | rounds | num_threads | mean (ms) | std (ms) |
| :--- | ---: | ---: | ---: | ---: |
| mobileone-s0 | 50 | 1 | 10.00 | 1.00 |
| mobileone-s0 | 50 | 2 | 6.00 | 0.50 |
| mobileone-s0 | 50 | 4 † | 5.00 | 0.25 |
| mobilevit-xxs | 50 | 1 | 0.800 | 0.040 |
| mobilevit-xxs | 50 | 2 | 0.500 | 0.020 |

† oversubscribed: more threads than the cores this process could use: the row measures contention.

### Speed-up"""


@pytest.fixture
def small(tmp_path, monkeypatch):
    """Two models on a 2-core machine, no MACs; loaded by a relative path so the Sources line is fixed."""
    monkeypatch.chdir(tmp_path)
    rows = [
        result_row("mobilevit-xxs", 2, 0.5, 0.02),
        result_row("mobileone-s0", 1, 10.0, 1.0),
        result_row("mobileone-s0", 2, 6.0, 0.5),
        result_row("mobileone-s0", 4, 5.0, 0.25),
        result_row("mobilevit-xxs", 1, 0.8, 0.04),
    ]
    write_csv(tmp_path / "small.csv", rows)
    return load("small.csv")


def test_markdown_wide(small):
    assert render(small, "markdown") == EXPECTED_WIDE


def test_markdown_long_is_the_study_layout(small):
    text = render(small, "markdown", layout="long")
    assert EXPECTED_LONG_TABLE in text


def test_markdown_p50_has_no_std(small):
    text = render(small, "markdown", metric="p50")
    assert "### Median (p50) latency (ms)\n" in text
    assert "| mobileone-s0 | 9.90 | 5.90 | 4.90 † |" in text


def test_markdown_marks_unstable_and_escapes_pipes(tmp_path):
    rows = [result_row("odd|name", 1, 1.0, 0.1, unstable=True)]
    text = render(load(write_csv(tmp_path / "r.csv", rows)), "markdown")
    assert "| odd\\|name | 1.00 ± 0.10 ! |" in text
    assert "! unstable:" in text


def test_analysis_sections(study_csv):
    text = render(load(study_csv), "markdown")
    assert "### Does mean latency follow MACs or params?" in text
    # 4 threads: only mobileone-s0 and mobilevit-xs were measured
    assert "| 4 | MACs | 2 | too few models to decide (2 models, needs 4) | - |" in text
    # three models decide nothing either: no "+0.50 (p=0.67)" that reads like a finding
    assert "| 1 | MACs | 3 | too few models to decide (3 models, needs 4) | - |" in text
    # ms per GMAC of mobileone-s0 at 1 thread: 10 ms / 0.3 GMAC = 33.33; GFLOP/s: 2 * 0.3e9 / 10e-3 / 1e9 = 60
    assert "| mobileone-s0 | 0.300 | 2.10 | 33.33 | 20.00 | 16.67 |" in text
    assert "| mobileone-s0 | 60.0 | 100.0 | 120.0 |" in text


def test_repeated_runs_shown_separately_then_pooled(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "a.csv", [result_row("m", 1, 10.0, 2.0, rounds=4)])
    write_csv(tmp_path / "b.csv", [result_row("m", 1, 12.0, 3.0, rounds=6)])
    results = load(["a.csv", "b.csv"])
    separate = to_markdown(build_document(results))
    assert "| model | run | 1 thread |" in separate
    assert "| m | a | 10.00 ± 2.00 |" in separate and "| m | b | 12.00 ± 3.00 |" in separate
    pooled = to_markdown(build_document(combine(results)))
    assert "| m | 11.20 ± 2.72 |" in pooled  # sqrt(7.4) = 2.72, see test_compare
    assert "Pooled from repeated runs: a + b (1 cell)." in pooled
    assert "no percentiles" in pooled


def test_comparison_section(tmp_path):
    base_samples, new_samples = shifted_samples(seed=4), shifted_samples(seed=5, shift=1.0)
    base = write_csv(tmp_path / "base.csv", rows_from_samples(base_samples), base_samples)
    new = write_csv(tmp_path / "new.csv", rows_from_samples(new_samples), new_samples)
    results = load([new], samples=True)
    comparison = compare(results, load([base], samples=True))
    text = render(results, "markdown", comparison=comparison, base_label="base.csv")
    assert "## Comparison with base.csv" in text
    assert "| model | threads | base mean (ms) | new mean (ms) | new/base | p | verdict |" in text
    ratio = comparison.set_index("threads").loc[1, "ratio"]
    assert f"| {ratio:.3f} | " in text and f"{ratio:.2f}x slower |" in text


def test_html_is_a_page_with_the_same_tables(small):
    page = render(small, "html")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert page.count("<table>") == 2
    assert '<td class="r">10.00 ± 1.00</td>' in page
    assert "<h2>hostA (CPU-X)</h2>" in page


def test_json_has_all_parts_and_no_nan(small):
    data = json.loads(render(small, "json"))
    assert set(data) == {"metric", "results", "correlations", "comparison"}
    first = data["results"][0]
    assert first["model"] == "mobileone-s0" and first["mean_ms"] == 10.0 and first["speedup"] == 1.0
    assert first["run"] == "small" and first["best"] is False
    assert first["macs"] is None and first["ms_per_gmac"] is None and data["comparison"] is None
    assert "samples" not in first


def test_csv_wide_and_long(small):
    wide = pd.read_csv(io.StringIO(render(small, "csv")))
    assert list(wide.columns) == [
        "machine", "model", "run", "mean_ms_t1", "std_ms_t1", "mean_ms_t2", "std_ms_t2", "mean_ms_t4", "std_ms_t4"
    ]  # fmt: skip
    assert wide.iloc[0, 3:].tolist() == [10.0, 1.0, 6.0, 0.5, 5.0, 0.25]
    long = pd.read_csv(io.StringIO(render(small, "csv", layout="long")))
    assert len(long) == 5
    assert long.loc[1, ["model", "threads", "mean_ms", "speedup"]].tolist() == ["mobileone-s0", 2, 6.0, pytest.approx(10 / 6)]


def test_plain_text_table(small):
    text = render(small, "table")
    assert "mobilevit-xxs" in text and "10.00 ± 1.00" in text and "\x1b[" not in text
