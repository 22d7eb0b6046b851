"""A model in more than one precision: the speed-up vs fp32 table and one marker per precision on the MACs plot."""

from __future__ import annotations

import pytest

from mbbench.report import load, render
from mbbench.report.plots import _series_styles, plot_latency_vs_macs
from mbbench.report.tables import keyed, precision_speedups
from tests.report.builders import result_row, write_csv

S0 = {"family": "mobileone", "params": 2.1e6, "macs": 0.3e9}
V2 = {"family": "mobilevitv2", "params": 1.4e6, "macs": 0.47e9}


def rows() -> list[dict]:
    # bench labels two files of one network by file stem: the precision is the suffix
    return [
        result_row("mobileone-s0-224-opset17", 1, 10.0, 0.5, precision="fp32", **S0),
        result_row("mobileone-s0-224-opset17", 2, 6.0, 0.3, precision="fp32", **S0),
        result_row("mobileone-s0-224-opset17-int8", 1, 5.0, 0.2, precision="int8", fidelity_cosine=0.9954,
                   fidelity_top1=0.91, **S0),
        result_row("mobileone-s0-224-opset17-int8", 2, 5.5, 0.2, precision="int8", fidelity_cosine=0.9954,
                   fidelity_top1=0.91, **S0),
        result_row("mobilevitv2-050", 1, 12.0, 0.5, precision="fp32", **V2),  # one precision only: no row
    ]  # fmt: skip


def test_speedup_vs_fp32_per_network_and_thread_count(tmp_path):
    results = load(write_csv(tmp_path / "p.csv", rows()))
    table = precision_speedups(results, "mean")
    assert set(table["network"]) == {"mobileone-s0-224-opset17"}
    got = table.set_index(["precision", "threads"])
    assert got.loc[("int8", 1), "speedup"] == pytest.approx(2.0)
    assert got.loc[("int8", 2), "speedup"] == pytest.approx(6.0 / 5.5)
    assert got.loc[("fp32", 2), "best"] and got.loc[("int8", 1), "best"]  # best thread count per precision
    assert not got.loc[("int8", 2), "best"]
    assert got.loc[("int8", 1), "fidelity_cosine"] == pytest.approx(0.9954)


def test_report_shows_the_table_only_with_two_precisions(tmp_path):
    text = render(load(write_csv(tmp_path / "p.csv", rows())), "markdown", "mean")
    assert "### Speed-up vs fp32 (mean latency)" in text
    assert "| mobileone-s0 (224px, opset 17) | int8 | 1 (5.00 ms) | 2.00x | 1.09x | 0.9954 | 91% |" in text
    assert "| mobileone-s0 (224px, opset 17) | fp32 | 2 (6.00 ms) | 1.00x | 1.00x | - | - |" in text
    # every latency row says its precision, since the table mixes them (issue 20)
    assert "| mobileone-s0 (int8, 224px, opset 17) | 5.00 ± 0.20 | 5.50 ± 0.20 |" in text
    assert "| mobilevitv2-050 (fp32) | 12.00 ± 0.50 | - |" in text
    single = render(load(write_csv(tmp_path / "q.csv", rows()[:2] + rows()[4:])), "markdown", "mean")
    assert "Speed-up vs fp32" not in single


def test_each_precision_gets_its_own_marker(tmp_path):
    results = load(write_csv(tmp_path / "p.csv", rows()))
    styles = _series_styles(keyed(results))
    assert styles[("mobileone-s0-224-opset17", "")]["marker"] != styles[("mobileone-s0-224-opset17-int8", "")]["marker"]
    assert styles[("mobileone-s0-224-opset17", "")]["marker"] == styles[("mobilevitv2-050", "")]["marker"]  # both fp32
    figure = plot_latency_vs_macs(results)
    legend = [t.get_text() for sub in figure.subfigs for legend in sub.legends for t in legend.get_texts()]
    assert {"fp32", "int8"} <= set(legend)


def test_two_runs_of_one_name_in_two_precisions_are_labelled_apart(tmp_path):
    # issue 20 A2: `bench mobileone-s0` measured the INT8 file, an earlier run the FP32 one; both label "mobileone-s0"
    fp32 = write_csv(tmp_path / "before.csv", [result_row("mobileone-s0", 1, 7.9, 0.5, precision="fp32", **S0)])
    int8 = write_csv(tmp_path / "after.csv", [result_row("mobileone-s0", 1, 1.56, 0.2, precision="int8", **S0)])
    text = render(load([fp32, int8]), "markdown", "mean")
    assert "| mobileone-s0 (fp32) | 7.90 ± 0.50 |" in text and "| mobileone-s0 (int8) | 1.56 ± 0.20 |" in text
