"""How a study shows its numbers: the latency cells, the ratio table and the summary document.

Latencies, thread counts and flag marks come from :mod:`mbbench.bench.formatting`, so a study's row reads as
bench and report show it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbbench.bench.formatting import (
    FLAGS,
    flag_legend,
    flag_marks,
    format_latency,
    format_ms,
    is_true,
    threads_label,
)
from mbbench.pipeline import RunFolder

if TYPE_CHECKING:
    import pandas as pd

    from mbbench.report.document import Document

#: The flag columns a study table carries (those bench writes; a missing one reads as not set).
FLAG_COLUMNS = tuple(name for name, _, _ in FLAGS)


def threads_cells(by_threads: "pd.DataFrame", threads, metric: str) -> list[str]:
    """Latency and ratio cells for each thread count of ``threads`` (``-`` where ``by_threads`` has no row)."""
    cells: list[str] = []
    for count in threads:
        if count not in by_threads.index:
            cells += ["-", "-"]
            continue
        r = by_threads.loc[count]
        cells += [latency_cell(r, metric), ratio_cell(r["ratio"])]
    return cells


def latency_cell(row, metric: str) -> str:
    """``mean ± std`` for the mean, the bare value for a percentile, then the flag marks."""
    text = format_latency(row["mean_ms"], row["std_ms"]) if metric == "mean" else format_ms(row["latency_ms"])
    return text + flag_marks(row)


def ratio_cell(ratio: float) -> str:
    return "-" if ratio != ratio else f"{ratio:.2f}x"


def metric_name(metric: str) -> str:
    return "mean" if metric == "mean" else "median"


def metric_header(metric: str) -> str:
    """What a latency cell shows."""
    return "mean ± std" if metric == "mean" else "median of the rounds"


def flag_notes(results: "pd.DataFrame") -> list[str]:
    """The legend of the flags set on some row of ``results``."""
    present = {name for name in FLAG_COLUMNS if name in results and results[name].map(is_true).any()}
    return flag_legend(present)


def format_macs(macs: float) -> str:
    """``52 M MACs`` / ``0.21 M MACs`` / ``9.7 G MACs``: two or three significant digits."""
    if macs >= 1e9:
        return f"{macs / 1e9:.1f} G MACs"
    value = macs / 1e6
    return f"{value:.0f} M MACs" if value >= 10 else f"{value:.2g} M MACs"


def ratio_document(
    title: str, setup: list[str], table: "pd.DataFrame", column: str, describe: dict[str, str], baseline: str,
    results: "pd.DataFrame", folder: RunFolder, metric: str,
) -> "Document":  # fmt: skip
    """The summary of a ratio study: per variant, its latency and its ratio to ``baseline`` per thread count.

    ``column`` heads the second column, which shows ``describe[model]`` (what the variant is).
    """
    from mbbench.report.document import Table

    threads = sorted(table["threads"].unique())
    headers = ["variant", column]
    for count in threads:
        headers += [f"{threads_label(count)} (ms)", f"vs {baseline}"]
    rows = []
    for model, group in table.groupby("model", sort=False):
        by_threads = group.set_index("threads")
        rows.append([model, describe.get(model, ""), *threads_cells(by_threads, threads, metric)])
    notes = [
        f"Ratio = {metric_name(metric)} latency / {metric_name(metric)} latency of {baseline} at the same thread "
        "count; above 1x is slower.",
        *flag_notes(results),
    ]
    align = ["left", "left"] + ["right"] * 2 * len(threads)
    result_table = Table(f"Latency ({metric_header(metric)}) and ratio to {baseline}", headers, rows, align, notes)
    return study_document(title, setup, [result_table], results, folder)


def study_document(title: str, setup: list[str], tables: list, results: "pd.DataFrame", folder: RunFolder):
    """A study's summary: what was measured, where the files are, then its tables under the machine's name."""
    from mbbench.report.document import Document, Section

    machine = str(results["machine"].iloc[0])
    return Document(title, [*setup, *files_notes(folder)], [Section(machine, tables)])


def files_notes(folder: RunFolder) -> list[str]:
    return [
        f"Files: {folder.csv} (bench CSV with study, factor, value columns; raw rounds in {folder.samples.name}), "
        f"{folder.plot.name}, the exported networks in {folder.models}/. Full report: mbbench report {folder.csv}"
    ]
