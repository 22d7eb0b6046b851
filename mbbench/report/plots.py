"""Pictures of a report: latency vs threads, speed-up vs threads, latency vs MACs.

Figures are built with matplotlib's object API (``matplotlib.figure.Figure``) rather than pyplot, so no GUI
backend or global state is involved: PNGs are rendered by the Agg canvas and the functions are safe to call
from a headless server or a notebook. Each ``plot_*`` function returns a Figure with one panel (or one row of
panels) per machine; :func:`write_plots` and :func:`save_figure` write PNGs atomically.
"""

from __future__ import annotations

import math

from pathlib import Path

import numpy as np
import pandas as pd
import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FixedLocator, LogFormatter, NullFormatter, NullLocator, ScalarFormatter

from mbbench.bench.formatting import FLAGS, threads_label
from mbbench.errors import UserInputError
from mbbench.models.facts import FAMILY_TABLE
from mbbench.report._io import check_destination, write_with
from mbbench.report.analysis import attained_throughput, correlations
from mbbench.report.load import DEFAULT_METRIC, FAMILY_ORDER, label_variants, metric_column, metric_label
from mbbench.report.tables import keyed, row_marks, scaling

# One colour ramp per family so a family reads as a group and size as shade.
_FAMILY_CMAPS = {name: family.colormap for name, family in FAMILY_TABLE.items()}
_OTHER_CMAP = "RdPu"
_MARKERS = "osD^v<>ph*"
# When a plot holds more than one precision, the marker says which (colour still says family and size).
_PRECISION_MARKERS = {"fp32": "o", "fp16": "s", "int8": "^", "int8-dynamic": "v"}
_DPI = 120
PLOT_FILES = ("latency_vs_threads.png", "speedup_vs_threads.png", "latency_vs_macs.png")
# Past this many lines a plot draws them in one collection without error bars or a per-line legend (a 100k-row
# CSV is thousands of series: one matplotlib artist each took minutes), and past this many points no name labels.
MANY_SERIES = 40
MANY_LABELS = 60
_FLAGGED = {"facecolors": "none", "edgecolors": "red", "linewidths": 1.2, "s": 110, "zorder": 3}
_FLAGGED_LABEL = "flagged (" + " ".join(f"{mark} {name}" for name, mark, _ in FLAGS) + ")"


def plain(text: object) -> str:
    """``text`` as matplotlib shows it literally: a "$" would start mathtext (and "$\\frac{$" crash it)."""
    return str(text).replace("$", r"\$")


def _per_machine(results: pd.DataFrame, draw, title: str) -> Figure:
    """One panel per machine: ``draw(ax, rows)`` then the machine's name over ``title``."""
    machines = list(results["machine"].unique())
    # the legend (a line per series, and the flag) grows sideways in columns: the figure grows with it
    series = [c for c in ("model", "run") if c in results.columns]
    entries = 2 + max(len(results[results["machine"] == m][series].drop_duplicates()) for m in machines)
    fig = _figure(width=9.5 + 2.4 * (_legend_columns(entries, 4.8) - 1), height=4.8 * len(machines))
    for subfig, machine in zip(_rows(fig, len(machines)), machines):
        ax = subfig.subplots()
        draw(ax, results[results["machine"] == machine])
        ax.set_title(f"{plain(machine)}\n{title}")
        _legend(subfig, ax)
    return fig


def plot_latency_vs_threads(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> Figure:
    """Latency ``metric`` against thread count, a line per model; error bars are +-1 std for the mean."""
    results = label_variants(results)
    return _per_machine(results, lambda ax, rows: _draw_latency(ax, rows, metric),
                        f"{metric_label(metric)} latency vs threads")  # fmt: skip


def plot_speedup(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> Figure:
    """Speed-up against 1 thread versus thread count, a line per model, with the ideal (linear) line."""
    results = label_variants(results)
    return _per_machine(results, lambda ax, rows: _draw_speedup(ax, rows, metric),
                        f"speed-up vs threads ({metric_label(metric)} latency, 1 thread = 1x)")  # fmt: skip


def plot_latency_vs_macs(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> Figure:
    """Latency against GMACs, a labelled point per model, one panel per thread count (a row per machine).

    Each panel's title gives the Pearson and Spearman correlation over the models shown.
    """
    results = label_variants(results)
    _require_macs(results)
    machines = list(results["machine"].unique())
    n_threads = max(results[results["machine"] == m]["threads"].nunique() for m in machines)
    fig = _figure(width=max(6.0, 4.2 * n_threads), height=4.6 * len(machines))
    for subfig, machine in zip(_rows(fig, len(machines)), machines):
        subset = results[results["machine"] == machine]
        _draw_macs_row(subfig, subset, metric, n_threads)
        subfig.suptitle(f"{plain(machine)}: {metric_label(metric)} latency vs MACs")
    return fig


def plot_overview(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> Figure:
    """All plots in one figure: per machine, latency and speed-up vs threads above latency vs MACs panels."""
    results = label_variants(results)
    machines = list(results["machine"].unique())
    has_macs = results["macs"].notna().any()
    n_threads = max(results[results["machine"] == m]["threads"].nunique() for m in machines)
    height = (4.8 + (4.2 if has_macs else 0.0)) * len(machines)
    fig = _figure(width=max(13.0, 3.6 * n_threads + 2.5), height=height)
    for subfig, machine in zip(_rows(fig, len(machines)), machines):
        subset = results[results["machine"] == machine]
        subfig.suptitle(f"{plain(machine)}: {metric_label(metric)} latency", fontsize="x-large")
        # the panels and their legend in a subfigure of their own, below the title (in the title's subfigure the
        # legend's first entries were drawn over the title)
        top, bottom = subfig.subfigures(2, 1, height_ratios=[4.8, 4.2]) if has_macs else (subfig.subfigures(1, 1), None)
        left, right = top.subplots(1, 2)
        _draw_latency(left, subset, metric)
        left.set_title("latency vs threads")
        _draw_speedup(right, subset, metric)
        right.set_title("speed-up vs 1 thread")
        _legend(top, left, right)
        if bottom is not None:
            _draw_macs_row(bottom, subset, metric, n_threads)
    return fig


#: written by :func:`write_plots` when the results hold more than one runtime
RUNTIME_PLOT = "latency_by_runtime.png"
#: written by :func:`write_plots` when the rows record memory
MEMORY_PLOT = "latency_vs_memory.png"


def memory_points(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """The points of :func:`plot_latency_vs_memory`: one per (machine, row label, threads) with its peak memory over
    the runtime (MiB) and its latency (ms), the medians where pooled runs repeat a configuration; rows without a
    memory figure are left out."""
    frame = label_variants(results)
    column = metric_column(metric)
    if "peak_delta_mib" not in frame.columns or column not in frame.columns:
        return pd.DataFrame(columns=["machine", "model", "threads", "memory_mib", "latency_ms"])
    points = frame.dropna(subset=["peak_delta_mib", column])
    # pooled runs of one configuration are one point: the median of their memory and of their latency
    points = points.groupby(["machine", "model", "threads"], as_index=False, sort=True)[
        ["peak_delta_mib", column]].median()
    return points.rename(columns={"peak_delta_mib": "memory_mib", column: "latency_ms"})


def plot_latency_vs_memory(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> Figure:
    """Latency against the peak memory each configuration cost, one panel per machine: the trade-off a backbone
    (and a runtime) is chosen on; lower left is better. A colour per row label, its points joined across thread counts; a marker per thread
    count."""
    points = memory_points(results, metric)
    if points.empty:
        raise UserInputError("no row records its memory (CSVs from before mbbench measured it); re-run bench")

    markers = {t: m for t, m in zip(sorted(points["threads"].unique()), "os^Dv<>phX*")}

    def draw(ax, rows):
        # a colour per row label (its points joined across thread counts), a marker per thread count
        colours = matplotlib.colormaps["tab20" if rows["model"].nunique() > 10 else "tab10"]
        for index, (model, group) in enumerate(rows.groupby("model", sort=True)):
            colour = colours(index % colours.N)
            group = group.sort_values("threads")
            ax.plot(group["memory_mib"], group["latency_ms"], color=colour, linewidth=0.8, alpha=0.6,
                    label=plain(model))
            for threads, point in group.groupby("threads"):
                ax.scatter(point["memory_mib"], point["latency_ms"], color=colour, marker=markers.get(threads, "o"),
                           s=36, zorder=3)
        for threads, marker in markers.items():  # the marker key, in grey
            ax.scatter([], [], color="grey", marker=marker, s=36, label=threads_label(threads))
        ax.set_xlabel("peak memory over the runtime (MiB)")
        ax.set_ylabel(f"{metric_label(metric)} latency (ms)")

    return _per_machine(points, draw, f"{metric_label(metric)} latency vs peak memory (lower left is better)")


def plot_latency_by_runtime(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> Figure:
    """Grouped bars, one panel per (machine, thread count): each model's latency in each runtime, a hatched empty
    bar where the runtime could not run it (``results.attrs["unsupported"]``)."""
    from mbbench.report.runtimes import runtime_comparison, runtimes_of

    comparison = runtime_comparison(label_variants(results), metric)
    if comparison.empty:
        raise UserInputError("the results hold one runtime; measure with --runtime A,B to compare runtimes")
    runtimes = runtimes_of(results)
    panels = list(comparison.groupby(["machine", "threads"], sort=False))
    fig = _figure(width=max(9.5, 1.2 * comparison["model"].nunique() * len(runtimes) / 2), height=4.2 * len(panels))
    colours = dict(zip(runtimes, ("#4c72b0", "#dd8452", "#55a868", "#8172b3", "#937860", "#64b5cd")))
    for subfig, ((machine, threads), group) in zip(_rows(fig, len(panels)), panels):
        ax = subfig.subplots()
        models = list(dict.fromkeys(group["model"]))
        width = 0.8 / len(runtimes)
        top = np.nanmax(group["latency_ms"].to_numpy(dtype=float)) if group["latency_ms"].notna().any() else 1.0
        for k, runtime in enumerate(runtimes):
            rows = group[group["runtime"] == runtime].set_index("model")
            x = np.arange(len(models)) + (k - (len(runtimes) - 1) / 2) * width
            values = [rows["latency_ms"].get(m, np.nan) for m in models]
            ax.bar(x, values, width, label=runtime, color=colours.get(runtime, "grey"))
            refused = [i for i, m in enumerate(models) if m in rows.index and isinstance(rows.at[m, "unsupported"], str)]
            if refused:
                ax.bar(x[refused], [top * 0.08] * len(refused), width, fill=False, hatch="//",
                       edgecolor=colours.get(runtime, "grey"))
                for i in refused:
                    ax.text(x[i], top * 0.09, "n/s", ha="center", va="bottom", fontsize=7, rotation=90)
        ax.set_xticks(np.arange(len(models)), [plain(m) for m in models], rotation=20, ha="right")
        ax.set_ylabel(f"{metric_label(metric)} latency (ms)")
        ax.set_title(f"{plain(machine)}\nlatency by runtime at {threads_label(threads)} (n/s: not supported)")
        ax.legend(loc="upper left", fontsize=8)
    return fig


def save_figure(fig: Figure, path: str | Path, inputs=()) -> Path:
    """Write ``fig`` to ``path`` as a PNG, atomically (temporary file, then rename); never over ``inputs``."""
    path = check_destination(path, ".png", inputs=inputs)
    FigureCanvasAgg(fig)  # a Figure made without pyplot needs a canvas to render
    return write_with(path, lambda handle: fig.savefig(handle, format="png", dpi=_DPI), inputs)


def write_plots(results: pd.DataFrame, directory: str | Path, metric: str = DEFAULT_METRIC, inputs=()) -> list[Path]:
    """Write each plot as its own PNG in ``directory`` (created if missing); returns the paths written.

    latency_vs_macs.png is skipped when no model's MACs are known.
    """
    directory = check_plots_dir(directory, inputs)
    directory.mkdir(parents=True, exist_ok=True)
    makers = [plot_latency_vs_threads, plot_speedup]
    if results["macs"].notna().any():
        makers.append(plot_latency_vs_macs)
    written = [save_figure(make(results, metric), directory / name, inputs) for make, name in zip(makers, PLOT_FILES)]
    from mbbench.report.runtimes import runtimes_of

    if len(runtimes_of(results)) > 1:
        written.append(save_figure(plot_latency_by_runtime(results, metric), directory / RUNTIME_PLOT, inputs))
    if not memory_points(results, metric).empty:
        written.append(save_figure(plot_latency_vs_memory(results, metric), directory / MEMORY_PLOT, inputs))
    return written


def check_plots_dir(directory: str | Path, inputs=()) -> Path:
    """Raise a one-sentence error if ``directory`` exists as something else than a directory (a missing one is
    created when writing) or if a plot file in it could not be written (see check_destination)."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise UserInputError(f"{directory} is a file; pass a directory for the plots.")
    if directory.is_dir():
        for name in PLOT_FILES:
            check_destination(directory / name, ".png", inputs=inputs)
    return directory


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _rows(fig: Figure, n: int) -> list[SubFigure]:
    return list(np.atleast_1d(fig.subfigures(n, 1, squeeze=False).ravel()))


def _precisions(frame: pd.DataFrame) -> pd.Series | None:
    """Each row's precision (empty reads as fp32) when the rows hold more than one, else None."""
    if "precision" not in frame.columns:
        return None
    precision = frame["precision"].map(lambda p: str(p).strip().lower() if isinstance(p, str) and p.strip() else "fp32")
    return precision if precision.nunique() > 1 else None


def _precision_marker(precision: str, known: list[str]) -> str:
    if precision in _PRECISION_MARKERS:
        return _PRECISION_MARKERS[precision]
    spare = [m for m in _MARKERS if m not in _PRECISION_MARKERS.values()]
    return spare[known.index(precision) % len(spare)]


def _series_styles(frame: pd.DataFrame) -> dict[tuple, dict]:
    """Colour (family ramp, shade by size order) and marker for each (model, run) series, in report order.

    The marker tells the series of a family apart, or, when the rows hold several precisions, the precision.
    """
    from matplotlib import colormaps

    precisions = _precisions(frame)
    known = sorted(set(precisions)) if precisions is not None else []
    series = frame[["model", "run", "family"]].assign(
        precision=precisions if precisions is not None else "fp32").drop_duplicates(["model", "run"])  # fmt: skip
    styles = {}
    for family, members in series.groupby("family", sort=False):
        cmap = colormaps[_FAMILY_CMAPS.get(family, _OTHER_CMAP)]
        shades = np.linspace(0.45, 0.95, len(members)) if len(members) > 1 else [0.75]
        rows = members[["model", "run", "precision"]].itertuples(index=False)
        for i, ((model, run, precision), shade) in enumerate(zip(rows, shades)):
            family_index = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
            marker = (_precision_marker(precision, known) if precisions is not None
                      else _MARKERS[(i + family_index) % len(_MARKERS)])  # fmt: skip
            styles[(model, run)] = {
                "family": family,
                "color": cmap(shade),
                "marker": marker,
                "precision": precision,
                "label": plain(f"{model} [{run}]" if run else model),
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
    groups = frame.sort_values("threads", kind="stable").groupby(["model", "run"], sort=False)
    if len(styles) <= MANY_SERIES:
        for (model, run), group in groups:
            err = group["std_ms"] if metric == "mean" else None
            ax.errorbar(
                group["threads"], value[group.index], yerr=err, capsize=3, linewidth=1.5, markersize=5,
                **_line_style(styles[(model, run)]),
            )
    else:
        _many_lines(ax, [(g["threads"].to_numpy(float), value[g.index].to_numpy(float), key) for key, g in groups],
                    styles)  # fmt: skip
    _mark_flagged(ax, frame["threads"], value, frame)
    positive = value[value > 0]
    if len(positive) and positive.max() / positive.min() > 10:
        ax.set_yscale("log")
        _plain_log_labels(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)  # a wide std must not draw the error bar into negative latency
    _thread_axis(ax, frame["threads"].to_numpy())
    error_bars = metric == "mean" and len(styles) <= MANY_SERIES
    ax.set_ylabel(f"{metric_label(metric)} latency (ms)" + (", error bars ±1 std" if error_bars else ""))
    ax.grid(True, which="both", alpha=0.3)


def _draw_speedup(ax, results: pd.DataFrame, metric: str) -> None:
    table = scaling(results, metric).dropna(subset=["speedup"])
    frame = keyed(results)
    styles = _series_styles(frame)
    groups = table.sort_values("threads", kind="stable").groupby(["model", "run"], sort=False)
    if len(styles) <= MANY_SERIES:
        for (model, run), group in groups:
            style = _line_style(styles[(model, run)])
            ax.plot(group["threads"], group["speedup"], linewidth=1.5, markersize=5, **style)
    else:
        _many_lines(ax, [(g["threads"].to_numpy(float), g["speedup"].to_numpy(float), key) for key, g in groups],
                    styles)  # fmt: skip
    _mark_flagged(ax, table["threads"], table["speedup"], frame.loc[table.index])
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


def _line_style(style: dict) -> dict:
    return {k: style[k] for k in ("color", "marker", "label")}


def _many_lines(ax, series: list, styles: dict) -> None:
    """Every series in one LineCollection (one artist instead of thousands), a legend entry per family."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D

    lines = [np.column_stack([x, y]) for x, y, _ in series if len(x)]
    colors = [styles[key]["color"] for x, _, key in series if len(x)]
    ax.add_collection(LineCollection(lines, colors=colors, linewidths=0.8, alpha=0.6))
    ax.autoscale_view()
    seen: dict[str, object] = {}
    for _, _, key in series:
        family = styles[key]["family"]
        seen.setdefault(family, styles[key]["color"])
    for family, color in seen.items():
        ax.add_line(Line2D([], [], color=color, label=f"{plain(family)} ({len(series)} lines in all)"))


def _mark_flagged(ax, x: pd.Series, y: pd.Series, frame: pd.DataFrame) -> None:
    """A red ring round each point whose row is flagged (oversubscribed, unstable or contended)."""
    flagged = row_marks(frame) != ""
    if flagged.any():
        ax.scatter(x[flagged], y[flagged], label=_FLAGGED_LABEL, **_FLAGGED)


def _draw_macs_row(subfig, results: pd.DataFrame, metric: str, n_panels: int) -> None:
    data = attained_throughput(results, metric)
    frame = keyed(results)
    corr = correlations(results, metric)
    styles = _series_styles(frame)
    threads = sorted(results["threads"].unique())
    axes = np.atleast_1d(subfig.subplots(1, n_panels, squeeze=False).ravel())
    for ax, count in zip(axes, threads):
        panel = data[(data["threads"] == count) & data["latency_ms"].notna()]
        x, y = panel["macs"].to_numpy(float) / 1e9, panel["latency_ms"].to_numpy(float)
        keys = list(zip(panel["model"], panel["run"]))
        for marker in dict.fromkeys(styles[k]["marker"] for k in keys):
            chosen = np.array([styles[k]["marker"] == marker for k in keys])
            colors = [styles[k]["color"] for k, c in zip(keys, chosen) if c]
            ax.scatter(x[chosen], y[chosen], color=colors, marker=marker, s=36)
        flagged = (row_marks(frame.loc[panel.index]) != "").to_numpy()
        if flagged.any():
            ax.scatter(x[flagged], y[flagged], label=_FLAGGED_LABEL, **_FLAGGED)
        _log_if_decades(ax, x, y)
        ax.margins(x=0.15, y=0.12)  # room for the point labels
        if len(keys) <= MANY_LABELS:
            _label_points(ax, x, y, [styles[k]["label"] for k in keys])
        ax.set_title(f"{threads_label(count)}\n{_correlation_text(corr, count)}", fontsize="medium")
        ax.set_xlabel("MACs (G, multiply-accumulates)")
        ax.set_ylabel(f"{metric_label(metric)} latency (ms)")
        ax.grid(True, which="both", alpha=0.3)
    for ax in axes[len(threads):]:
        ax.set_visible(False)
    handles = [h for ax in axes for h, label in zip(*ax.get_legend_handles_labels()) if label == _FLAGGED_LABEL]
    handles, labels = handles[:1], [_FLAGGED_LABEL] if handles else []
    if _precisions(frame) is not None:
        from matplotlib.lines import Line2D

        for precision, marker in dict.fromkeys((s["precision"], s["marker"]) for s in styles.values()):
            handles.append(Line2D([], [], marker=marker, linestyle="none", color="grey"))
            labels.append(plain(precision))
    if handles:
        subfig.legend(handles, labels, loc="outside lower center", fontsize="small", frameon=False,
                      ncols=min(len(handles), 6))  # fmt: skip


def _log_if_decades(ax, x: np.ndarray, y: np.ndarray) -> None:
    """Log axes where the values span a decade or more: small models would otherwise sit in one blob."""
    for values, set_scale, axis in ((x, ax.set_xscale, ax.xaxis), (y, ax.set_yscale, ax.yaxis)):
        positive = values[values > 0]
        if len(positive) > 1 and positive.max() / positive.min() >= 10:
            set_scale("log")
            _plain_log_labels(axis)


def _label_points(ax, x: np.ndarray, y: np.ndarray, labels: list[str]) -> None:
    """Name each point, trying a few spots around it and taking the first whose box overlaps no earlier label
    or point (greedy, in display space); a label that fits nowhere is left out rather than drawn over another."""
    if not len(x):
        return
    ax.autoscale_view()
    points = ax.transData.transform(np.column_stack([x, y]))
    scale = ax.figure.dpi / 72  # points to pixels
    height = 7 * scale
    placed: list[tuple[float, float, float, float]] = []
    point_boxes = [(px - 3 * scale, py - 3 * scale, px + 3 * scale, py + 3 * scale) for px, py in points]
    offsets = [(4, 3), (4, -10), (-4, 3), (-4, -10), (4, 12), (-4, 12), (4, -19), (-4, -19)]

    def free(box) -> bool:
        return not any(
            box[0] < o[2] and o[0] < box[2] and box[1] < o[3] and o[1] < box[3] for o in [*placed, *point_boxes]
        )

    for i in np.argsort(points[:, 1])[::-1]:  # from the slowest model down
        width = 4.2 * scale * len(labels[i])
        px, py = points[i]
        for dx, dy in offsets:
            x0 = px + dx * scale if dx > 0 else px + dx * scale - width
            box = (x0, py + dy * scale, x0 + width, py + dy * scale + height)
            if free(box):
                placed.append(box)
                ax.annotate(
                    labels[i], (x[i], y[i]), xytext=(dx, dy), textcoords="offset points", fontsize="x-small",
                    ha="left" if dx > 0 else "right", va="bottom",
                )
                break


def _correlation_text(corr: pd.DataFrame, threads: int) -> str:
    row = corr[(corr["threads"] == threads) & (corr["against"] == "macs")]
    if row.empty or np.isnan(row["pearson_r"].iloc[0]):
        return "correlation " + (row["note"].iloc[0] if not row.empty else "undefined")
    return f"Pearson r={row['pearson_r'].iloc[0]:.2f}, Spearman rho={row['spearman_rho'].iloc[0]:.2f}"


#: legend entries at fontsize "small" that fit in an inch of height, spacing included
_LEGEND_ROWS_PER_INCH = 4.4


def _legend_columns(entries: int, height_in: float) -> int:
    """As many legend columns as it takes for ``entries`` to fit a panel ``height_in`` inches high."""
    return math.ceil(entries / max(6, int(height_in * _LEGEND_ROWS_PER_INCH)))


def _legend(container, *axes) -> None:
    # Outside the axes, so the legend never covers a line or an error bar; one entry per label across panels.
    entries: dict[str, object] = {}
    for ax in axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    handles, labels = list(entries.values()), list(entries)
    if handles:
        # columns enough for every entry to fit the panel's height (31 models overflow one column)
        columns = _legend_columns(len(handles), container.bbox.height / container.figure.dpi)
        container.legend(handles, labels, loc="outside right upper", fontsize="small", frameon=False, ncols=columns)


def _require_macs(results: pd.DataFrame) -> None:
    if not results["macs"].notna().any():
        raise UserInputError(
            "No model in these CSVs has its MACs; bench models exported with a manifest (or add a macs column) "
            "to plot latency against MACs."
        )

