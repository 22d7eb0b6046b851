"""Pictures of a report: latency vs threads, speed-up vs threads, latency vs MACs.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``) rather than pyplot, so no GUI
backend or global state is involved: PNGs are rendered by the Agg canvas and the functions are safe to call
from a headless server or a notebook. Each ``plot_*`` function returns a Figure with one panel (or one row of
panels) per machine; :func:`write_plots` and :func:`save_figure` write PNGs atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FixedLocator, LogFormatter, NullFormatter, NullLocator, ScalarFormatter

from mbbench.errors import UserInputError
from mbbench.report._io import check_destination, write_with
from mbbench.report.analysis import attained_throughput, correlations
from mbbench.report.load import FAMILY_ORDER, metric_column, metric_label
from mbbench.report.tables import keyed, scaling

# One colour ramp per family so a family reads as a group and size as shade.
_FAMILY_CMAPS = {"mobileone": "Blues", "mobilevit": "Oranges", "mobilevitv2": "Greens"}
_OTHER_CMAP = "Purples"
_MARKERS = "osD^v<>ph*"
_DPI = 120
PLOT_FILES = ("latency_vs_threads.png", "speedup_vs_threads.png", "latency_vs_macs.png")


def plot_latency_vs_threads(results: pd.DataFrame, metric: str = "mean") -> Figure:
    """Latency ``metric`` against thread count, a line per model; error bars are +-1 std for the mean."""
    machines = list(results["machine"].unique())
    fig = _figure(width=9.5, height=4.8 * len(machines))
    for subfig, machine in zip(_rows(fig, len(machines)), machines):
        ax = subfig.subplots()
        _draw_latency(ax, results[results["machine"] == machine], metric)
        ax.set_title(f"{machine}\n{metric_label(metric)} latency vs threads")
        _legend(subfig, ax)
    return fig


def plot_speedup(results: pd.DataFrame, metric: str = "mean") -> Figure:
    """Speed-up against 1 thread versus thread count, a line per model, with the ideal (linear) line."""
    machines = list(results["machine"].unique())
    fig = _figure(width=9.5, height=4.8 * len(machines))
    for subfig, machine in zip(_rows(fig, len(machines)), machines):
        ax = subfig.subplots()
        _draw_speedup(ax, results[results["machine"] == machine], metric)
        ax.set_title(f"{machine}\nspeed-up vs threads ({metric_label(metric)} latency, 1 thread = 1x)")
        _legend(subfig, ax)
    return fig


def plot_latency_vs_macs(results: pd.DataFrame, metric: str = "mean") -> Figure:
    """Latency against GMACs, a labelled point per model, one panel per thread count (a row per machine).

    Each panel's title gives the Pearson and Spearman correlation over the models shown.
    """
    _require_macs(results)
    machines = list(results["machine"].unique())
    n_threads = max(results[results["machine"] == m]["threads"].nunique() for m in machines)
    fig = _figure(width=max(6.0, 4.2 * n_threads), height=4.6 * len(machines))
    for subfig, machine in zip(_rows(fig, len(machines)), machines):
        subset = results[results["machine"] == machine]
        _draw_macs_row(subfig, subset, metric, n_threads)
        subfig.suptitle(f"{machine}: {metric_label(metric)} latency vs MACs")
    return fig


def plot_overview(results: pd.DataFrame, metric: str = "mean") -> Figure:
    """All plots in one figure: per machine, latency and speed-up vs threads above latency vs MACs panels."""
    machines = list(results["machine"].unique())
    has_macs = results["macs"].notna().any()
    n_threads = max(results[results["machine"] == m]["threads"].nunique() for m in machines)
    height = (4.8 + (4.2 if has_macs else 0.0)) * len(machines)
    fig = _figure(width=max(13.0, 3.6 * n_threads + 2.5), height=height)
    for subfig, machine in zip(_rows(fig, len(machines)), machines):
        subset = results[results["machine"] == machine]
        subfig.suptitle(f"{machine}: {metric_label(metric)} latency", fontsize="x-large")
        top, bottom = subfig.subfigures(2, 1, height_ratios=[4.8, 4.2]) if has_macs else (subfig, None)
        left, right = top.subplots(1, 2)
        _draw_latency(left, subset, metric)
        left.set_title("latency vs threads")
        _draw_speedup(right, subset, metric)
        right.set_title("speed-up vs 1 thread")
        _legend(top, left, right)
        if bottom is not None:
            _draw_macs_row(bottom, subset, metric, n_threads)
    return fig


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically (temporary file, then rename)."""
    path = check_destination(path, ".png")
    FigureCanvasAgg(fig)  # a Figure made without pyplot needs a canvas to render
    return write_with(path, lambda handle: fig.savefig(handle, format="png", dpi=_DPI))


def write_plots(results: pd.DataFrame, directory: str | Path, metric: str = "mean") -> list[Path]:
    """Write each plot as its own PNG in ``directory`` (created if missing); returns the paths written.

    latency_vs_macs.png is skipped when no model's MACs are known.
    """
    directory = check_plots_dir(directory)
    directory.mkdir(parents=True, exist_ok=True)
    makers = [plot_latency_vs_threads, plot_speedup]
    if results["macs"].notna().any():
        makers.append(plot_latency_vs_macs)
    return [save_figure(make(results, metric), directory / name) for make, name in zip(makers, PLOT_FILES)]


def check_plots_dir(directory: str | Path) -> Path:
    """Raise a one-sentence error if ``directory`` exists as a file (a missing one is created when writing)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"{directory} is a file; pass a directory for the plots.")
    return directory


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _rows(fig: Figure, n: int) -> list[SubFigure]:
    return list(np.atleast_1d(fig.subfigures(n, 1, squeeze=False).ravel()))


def _series_styles(frame: pd.DataFrame) -> dict[tuple, dict]:
    """Colour (family ramp, shade by size order) and marker for each (model, run) series, in report order."""
    from matplotlib import colormaps

    series = frame[["model", "run", "family"]].drop_duplicates(["model", "run"])
    styles = {}
    for family, members in series.groupby("family", sort=False):
        cmap = colormaps[_FAMILY_CMAPS.get(family, _OTHER_CMAP)]
        shades = np.linspace(0.45, 0.95, len(members)) if len(members) > 1 else [0.75]
        for i, ((model, run), shade) in enumerate(zip(members[["model", "run"]].itertuples(index=False), shades)):
            family_index = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
            styles[(model, run)] = {
                "color": cmap(shade),
                "marker": _MARKERS[(i + family_index) % len(_MARKERS)],
                "label": f"{model} [{run}]" if run else model,
            }
    return styles


def _thread_axis(ax, threads: np.ndarray) -> None:
    threads = np.unique(threads)
    if (threads > 0).all() and threads.max() / threads.min() >= 4:
        ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(threads))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_xlabel("intra-op threads")


class _PlainLogFormatter(LogFormatter):
    """LogFormatter's choice of which ticks to label (minor ones only when few decades are shown), written as
    plain numbers (0.2, 1, 5) instead of powers (2x10^-1)."""

    def __call__(self, x, pos=None):
        return f"{x:g}" if super().__call__(x, pos) else ""


def _plain_log_labels(axis, base: float = 10) -> None:
    axis.set_major_formatter(_PlainLogFormatter(base=base, labelOnlyBase=False))
    axis.set_minor_formatter(_PlainLogFormatter(base=base, labelOnlyBase=False) if base == 10 else NullFormatter())


def _draw_latency(ax, results: pd.DataFrame, metric: str) -> None:
    frame = keyed(results)
    value = frame[metric_column(metric)]
    styles = _series_styles(frame)
    for (model, run), group in frame.groupby(["model", "run"], sort=False):
        group = group.sort_values("threads")
        err = group["std_ms"] if metric == "mean" else None
        ax.errorbar(
            group["threads"], value[group.index], yerr=err, capsize=3, linewidth=1.5, markersize=5,
            **styles[(model, run)],
        )
    positive = value[value > 0]
    if len(positive) and positive.max() / positive.min() > 10:
        ax.set_yscale("log")
        _plain_log_labels(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)  # a wide std must not draw the error bar into negative latency
    _thread_axis(ax, frame["threads"].to_numpy())
    ax.set_ylabel(f"{metric_label(metric)} latency (ms)" + (", error bars ±1 std" if metric == "mean" else ""))
    ax.grid(True, which="both", alpha=0.3)


def _draw_speedup(ax, results: pd.DataFrame, metric: str) -> None:
    table = scaling(results, metric).dropna(subset=["speedup"])
    styles = _series_styles(keyed(results))
    for (model, run), group in table.groupby(["model", "run"], sort=False):
        group = group.sort_values("threads")
        ax.plot(group["threads"], group["speedup"], linewidth=1.5, markersize=5, **styles[(model, run)])
    threads = np.unique(results["threads"].to_numpy())
    ideal = threads[threads > 0]
    ax.plot(ideal, ideal, linestyle="--", color="black", linewidth=1, label="ideal (linear)")
    _thread_axis(ax, threads)
    if ax.get_xscale() == "log":
        ax.set_yscale("log", base=2)
        _plain_log_labels(ax.yaxis, base=2)
    ax.set_ylabel("speed-up vs 1 thread (x)")
    ax.grid(True, which="both", alpha=0.3)
    if table.empty:
        ax.text(0.5, 0.5, "no 1-thread results: no speed-up", transform=ax.transAxes, ha="center")


def _draw_macs_row(subfig, results: pd.DataFrame, metric: str, n_panels: int) -> None:
    data = attained_throughput(results, metric)
    corr = correlations(results, metric)
    styles = _series_styles(keyed(results))
    threads = sorted(results["threads"].unique())
    axes = np.atleast_1d(subfig.subplots(1, n_panels, squeeze=False).ravel())
    for ax, count in zip(axes, threads):
        panel = data[data["threads"] == count]
        for row in panel.itertuples(index=False):
            style = styles[(row.model, row.run)]
            ax.scatter(row.macs / 1e9, row.latency_ms, color=style["color"], marker=style["marker"], s=36)
            ax.annotate(
                style["label"], (row.macs / 1e9, row.latency_ms), xytext=(4, 4), textcoords="offset points",
                fontsize="x-small",
            )
        ax.set_title(f"{count} thread{'s' if count != 1 else ''}\n{_correlation_text(corr, count)}", fontsize="medium")
        ax.set_xlabel("MACs (G, multiply-accumulates)")
        ax.set_ylabel(f"{metric_label(metric)} latency (ms)")
        ax.grid(True, alpha=0.3)
        ax.margins(x=0.15, y=0.12)  # room for the point labels
    for ax in axes[len(threads):]:
        ax.set_visible(False)


def _correlation_text(corr: pd.DataFrame, threads: int) -> str:
    row = corr[(corr["threads"] == threads) & (corr["against"] == "macs")]
    if row.empty or np.isnan(row["pearson_r"].iloc[0]):
        return "correlation " + (row["note"].iloc[0] if not row.empty else "undefined")
    return f"Pearson r={row['pearson_r'].iloc[0]:.2f}, Spearman rho={row['spearman_rho'].iloc[0]:.2f}"


def _legend(container, *axes) -> None:
    # Outside the axes, so the legend never covers a line or an error bar; one entry per label across panels.
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    handles, labels = list(entries.values()), list(entries)
    if handles:
        container.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False)


def _require_macs(results: pd.DataFrame) -> None:
    if not results["macs"].notna().any():
        raise UserInputError(
            "No model in these CSVs has its MACs; bench models exported with a manifest (or add a macs column) "
            "to plot latency against MACs."
        )

