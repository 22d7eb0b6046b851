"""A study's figure: latency bars with the ratios (the ratio studies) and the shared error-bar convention."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mbbench.bench.formatting import flag_marks, threads_label
from mbbench.studies._summary import metric_name

if TYPE_CHECKING:
    import pandas as pd


def ratio_plot(table: "pd.DataFrame", title: str, baseline: str, describe: dict[str, str], metric: str):
    """Horizontal bars of latency per variant, one bar per thread count, ratios (and flag marks) written on them.

    Error bars: ±1 std for the mean; from the fastest round to p90 for the median.
    """
    import numpy as np
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(table["model"]))
    threads = sorted(table["threads"].unique())
    fig = Figure(figsize=(9.5, 1.2 + 0.42 * len(models) * max(1, len(threads)) ** 0.5 + 0.4), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(threads)
    positions = np.arange(len(models))
    for i, count in enumerate(threads):
        part = table[table["threads"] == count].set_index("model").reindex(models)
        y = positions - 0.4 + height * (i + 0.5)
        bars = error_bars(part, metric)
        ax.barh(y, part["latency_ms"], height=height * 0.92, xerr=bars, color=f"C{i}", capsize=2,
                label=threads_label(count))  # fmt: skip
        ends = part["latency_ms"].to_numpy(float) + np.nan_to_num(bars[1])
        for yi, end, ratio, row in zip(y, ends, part["ratio"], part.to_dict("records")):
            if end == end and ratio == ratio:
                ax.annotate(f" {ratio:.2f}x{flag_marks(row)}", (end, yi), va="center", fontsize="x-small")
    ax.set_yticks(positions, [describe.get(m) or m for m in models])
    ax.invert_yaxis()
    ax.set_xlabel(f"{metric_name(metric)} latency (ms), {error_bars_label(metric)}")
    ax.set_title(f"{title}\n(ratios to {baseline} at the same thread count)")
    ax.grid(True, axis="x", alpha=0.3)
    ax.margins(x=0.15)
    fig.legend(loc="outside right upper", fontsize="small", frameon=False)
    return fig


def error_bars(rows: "pd.DataFrame", metric: str):
    """(lower, upper) bar lengths: ±1 std around a mean, min to p90 around a median; never below zero."""
    import numpy as np

    value = rows["latency_ms"].to_numpy(float)
    if metric == "mean":
        lower = upper = rows["std_ms"].fillna(0).to_numpy(float)
    else:
        lower = value - rows["min_ms"].to_numpy(float)
        upper = rows["p90_ms"].to_numpy(float) - value
    # a log axis cannot draw a bar that reaches zero; stop it just above
    return [np.clip(np.minimum(lower, 0.95 * value), 0, None), np.clip(upper, 0, None)]


def error_bars_label(metric: str) -> str:
    return "error bars ±1 std" if metric == "mean" else "error bars from the fastest round to p90"
