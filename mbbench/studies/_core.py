"""What every study shares: variants as data, one verified export each, ONE bench sweep, the summary document.

A study is a list of :class:`Variant` (a readable name such as ``act-relu``, the factor it varies and that
factor's value, and a function that builds the seeded module). :func:`measure_variants` exports each variant
with :func:`mbbench.export_onnx` (opset check, onnxsim, ONNX Runtime vs PyTorch parity) into the run folder's
``models/`` as ``<name>.onnx``, so bench labels its rows ``<name>``, then measures every file in one
:func:`mbbench.benchmark` call whose ``extra_columns`` add ``study``, ``factor`` and ``value``. There is no other
timing loop. The analysis, summary and plot are each study's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mbbench.errors import UserInputError
from mbbench.pipeline import Event, RunFolder

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from mbbench.bench.options import BenchConfig
    from mbbench.bench.runner import SweepObserver
    from mbbench.export import ExportResult
    from mbbench.report.document import Document

#: Columns a study adds to the bench CSV schema (in this order, after the bench's own).
STUDY_COLUMNS = ("study", "factor", "value")
#: Opset of the study networks: what ``mbbench export`` writes by default, through the TorchScript exporter.
#: Every activation here exists at 17 as an ONNX op or as its exact decomposition (GELU as Erf, Mish as
#: x * tanh(softplus(x))), which is the graph a deployment at that opset runs.
DEFAULT_OPSET = 17
#: Latency statistics a study's analysis can use. The median is the default: ratios, slopes and crossovers
#: of medians are not thrown by the occasional preempted round on a shared machine (one 50 ms round moves a
#: 0.1 ms mean by 1.7 ms over 30 rounds, and the median not at all).
METRICS = ("p50", "mean")
DEFAULT_METRIC = "p50"
#: The most a single variant list may hold: a typo in a list option should not start an hour-long run.
MAX_VARIANTS = 64


@dataclass(frozen=True)
class Variant:
    """One network of a study: ``name`` is its ``model`` label and file stem; ``build`` returns it seeded."""

    name: str
    factor: str
    value: str
    build: Callable[[], "nn.Module"]
    resolution: int
    #: False keeps a multi-branch module as it is (export_onnx folds branches by default)
    reparam: bool = True


@dataclass
class StudyResult:
    """What a study produced.

    ``results`` is the bench CSV as :func:`mbbench.report.load` reads it (bench columns plus ``study``,
    ``factor``, ``value``); ``table`` the study's analysis, one row per (variant, thread count); ``facts``
    study-specific numbers (the attention slopes and crossovers); ``document`` what the summary says (render it
    with :func:`mbbench.report.to_markdown` or :func:`mbbench.report.to_rich`).
    """

    study: str
    results: "pd.DataFrame"
    table: "pd.DataFrame"
    document: "Document"
    folder: RunFolder
    exports: list["ExportResult"]
    seconds: float
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def csv(self):
        return self.folder.csv

    @property
    def summary(self):
        return self.folder.summary

    @property
    def plot(self):
        return self.folder.plot


def bench_config(threads, rounds: int, warmup: int, seed: int, isolate: bool) -> "BenchConfig":
    """The bench options, validated before anything is built (a bad ``--threads`` fails in one line, at once)."""
    from mbbench.bench.options import BenchConfig

    return BenchConfig(threads=threads, rounds=rounds, warmup=warmup, seed=seed, isolate=isolate)


def check_positive(name: str, value: int, low: int = 1, high: int | None = None, why: str = "") -> int:
    """``value`` as an int within [low, high], or a one-sentence :class:`UserInputError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise UserInputError(f"{name} must be a whole number {bounds}, not {value!r}{why}")
    return value


def parse_names(spec: str | Sequence[str] | None, known: Sequence[str], what: str) -> list[str]:
    """Names from ``"a,b"`` or a sequence, each one of ``known``, in the order given, without repeats."""
    if spec is None:
        return list(known)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [str(item).strip().lower() for item in items if str(item).strip()]
    if not names:
        raise UserInputError(f"no {what} given: choose from {', '.join(known)}")
    for name in names:
        if name not in known:
            from difflib import get_close_matches

            close = get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserInputError(f"unknown {what} '{name}': {hint}choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


def measure_variants(
    study: str,
    variants: Sequence[Variant],
    folder: RunFolder,
    config: "BenchConfig",
    *,
    opset: int = DEFAULT_OPSET,
    seed: int = 0,
    on_event: Event | None = None,
    observer: "SweepObserver | None" = None,
) -> tuple["pd.DataFrame", list["ExportResult"]]:
    """Export every variant into ``folder.models`` and measure them all in one bench sweep into ``folder.csv``.

    Returns the CSV as :func:`mbbench.report.load` reads it, and the export results. A variant that fails to
    export or run ends the study (its analysis would be incomplete) with the exporter's or bench's one-line
    error; what was measured before stays in the CSV.
    """
    from mbbench import report
    from mbbench.export import export_onnx
    from mbbench.pipeline import benchmark_into

    emit = on_event or (lambda _message: None)
    if len(variants) > MAX_VARIANTS:
        raise UserInputError(f"{len(variants)} variants is more than {MAX_VARIANTS}: shorten the list")
    folder.models.mkdir(exist_ok=True)
    exports = []
    for index, variant in enumerate(variants, start=1):
        started = time.perf_counter()
        module = variant.build()
        result = export_onnx(
            module, folder.models / f"{variant.name}.onnx", name=variant.name, opset=opset,
            resolution=variant.resolution, reparam=variant.reparam, seed=seed, force=True,
        )  # fmt: skip
        exports.append(result)
        emit(
            f"[{index}/{len(variants)}] {variant.name}: exported ({result.nodes_after} nodes, "
            f"{format_macs(result.macs)}, parity {result.parity_max_rel:.0e}) in {time.perf_counter() - started:.1f} s"
        )
    extras = {r.path: dict(zip(STUDY_COLUMNS, (study, v.factor, v.value))) for r, v in zip(exports, variants)}
    benchmark_into(folder, [r.path for r in exports], config, extras, observer, on_error="raise")
    results = report.load([folder.csv])
    order = {v.name: i for i, v in enumerate(variants)}
    results = results.assign(_order=results["model"].map(order)).sort_values(["_order", "threads"], kind="stable")
    return results.drop(columns="_order").reset_index(drop=True), exports


# --- analysis ------------------------------------------------------------------------------------------------


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise UserInputError(f"unknown metric '{metric}': choose {' or '.join(METRICS)}")
    return metric


def ratio_table(results: "pd.DataFrame", baseline: str, metric: str = DEFAULT_METRIC) -> "pd.DataFrame":
    """Each variant's latency ``metric`` and its ratio to ``baseline``'s at the same thread count.

    Columns: model, factor, value, threads, latency_ms (the ``metric``), ratio, mean_ms, std_ms, min_ms,
    p90_ms, macs, params, oversubscribed, unstable. ``ratio`` = latency(variant) / latency(baseline); NaN
    where the baseline has no row at that thread count.
    """
    from mbbench.report.load import metric_column

    column = metric_column(check_metric(metric))
    table = results[["model", "factor", "value", "threads"]].copy()
    table["latency_ms"] = results[column]
    base = results[results["model"] == baseline].set_index("threads")[column]
    table["ratio"] = table["latency_ms"] / table["threads"].map(base)
    for extra in ("mean_ms", "std_ms", "min_ms", "p90_ms", "macs", "params", "oversubscribed", "unstable"):
        table[extra] = results[extra]
    return table.reset_index(drop=True)


def format_ms(value: float) -> str:
    """A latency in ms with as many decimals as its size warrants (as bench prints a mean)."""
    if value != value:
        return "-"
    return f"{value:.{1 if value >= 100 else 2 if value >= 1 else 3}f}"


def latency_cell(row, metric: str) -> str:
    """``mean ± std`` for the mean, the bare value for a percentile, then the † / ! marks."""
    from mbbench.bench.summary import format_latency

    text = format_latency(row["mean_ms"], row["std_ms"]) if metric == "mean" else format_ms(row["latency_ms"])
    return text + marks(row["oversubscribed"], row["unstable"])


def metric_name(metric: str) -> str:
    return "mean" if metric == "mean" else "median"


def metric_header(metric: str) -> str:
    """What a latency cell shows."""
    return "mean ± std" if metric == "mean" else "median of the rounds"


# --- the summary document ------------------------------------------------------------------------------------


def marks(oversubscribed: bool, unstable: bool) -> str:
    from mbbench.report.document import OVERSUBSCRIBED_MARK, UNSTABLE_MARK

    return (f" {OVERSUBSCRIBED_MARK}" if oversubscribed else "") + (f" {UNSTABLE_MARK}" if unstable else "")


def flag_notes(results: "pd.DataFrame") -> list[str]:
    from mbbench.report.document import OVERSUBSCRIBED_MARK, UNSTABLE_MARK

    notes = []
    if results["oversubscribed"].any():
        notes.append(f"{OVERSUBSCRIBED_MARK} oversubscribed: more threads than the machine has cores (contention, "
                     "not the network).")  # fmt: skip
    if results["unstable"].any():
        notes.append(f"{UNSTABLE_MARK} unstable: bench flagged these rows as too variable to trust; re-run with more "
                     "--rounds on a quieter machine.")  # fmt: skip
    return notes


def format_macs(macs: float) -> str:
    """``52 M MACs`` / ``0.21 M MACs`` / ``9.7 G MACs``: two or three significant digits."""
    if macs >= 1e9:
        return f"{macs / 1e9:.1f} G MACs"
    value = macs / 1e6
    return f"{value:.0f} M MACs" if value >= 10 else f"{value:.2g} M MACs"


def threads_header(count: int) -> str:
    return f"{count} thread" if count == 1 else f"{count} threads"


def ratio_document(
    title: str, setup: list[str], table: "pd.DataFrame", column: str, describe: dict[str, str], baseline: str,
    results: "pd.DataFrame", folder: RunFolder, metric: str = DEFAULT_METRIC,
) -> "Document":  # fmt: skip
    """The summary of a ratio study: per variant, its latency and its ratio to ``baseline`` per thread count.

    ``column`` heads the second column, which shows ``describe[model]`` (what the variant is).
    """
    from mbbench.report.document import Document, Section, Table

    threads = sorted(table["threads"].unique())
    headers = ["variant", column]
    for count in threads:
        headers += [f"{threads_header(count)} (ms)", f"vs {baseline}"]
    rows = []
    for model, group in table.groupby("model", sort=False):
        by_threads = group.set_index("threads")
        row = [model, describe.get(model, "")]
        for count in threads:
            if count not in by_threads.index:
                row += ["-", "-"]
                continue
            r = by_threads.loc[count]
            row += [latency_cell(r, metric), "-" if r["ratio"] != r["ratio"] else f"{r['ratio']:.2f}x"]
        rows.append(row)
    notes = [
        f"Ratio = {metric_name(metric)} latency / {metric_name(metric)} latency of {baseline} at the same thread "
        "count; above 1x is slower.",
        *flag_notes(results),
    ]
    align = ["left", "left"] + ["right"] * 2 * len(threads)
    result_table = Table(f"Latency ({metric_header(metric)}) and ratio to {baseline}", headers, rows, align, notes)
    machine = str(results["machine"].iloc[0])
    return Document(title, [*setup, *files_notes(folder)], [Section(machine, [result_table])])


def files_notes(folder: RunFolder) -> list[str]:
    return [
        f"Files: {folder.csv} (bench CSV with study, factor, value columns; raw rounds in {folder.samples.name}), "
        f"{folder.plot.name}, the exported networks in {folder.models}/. Full report: mbbench report {folder.csv}"
    ]


def write_summary(document: "Document", folder: RunFolder) -> None:
    from mbbench.report import to_markdown, write_text

    write_text(folder.summary, to_markdown(document))


# --- plots ---------------------------------------------------------------------------------------------------


def ratio_plot(table: "pd.DataFrame", title: str, baseline: str, describe: dict[str, str],
               metric: str = DEFAULT_METRIC):  # fmt: skip
    """Horizontal bars of latency per variant, one bar per thread count, ratios written on them.

    Error bars: ±1 std for the mean; from the fastest round to p90 for the median.
    """
    import numpy as np
    from matplotlib.figure import Figure

    models = list(dict.fromkeys(table["model"]))
    threads = sorted(table["threads"].unique())
    fig = Figure(figsize=(9.5, 1.2 + 0.42 * len(models) * max(1, len(threads)) ** 0.5 + 0.4), layout="constrained")
    ax = fig.subplots()
    height = 0.8 / len(threads)
    colours = [f"C{i}" for i in range(len(threads))]
    positions = np.arange(len(models))
    for i, (count, colour) in enumerate(zip(threads, colours)):
        part = table[table["threads"] == count].set_index("model").reindex(models)
        y = positions - 0.4 + height * (i + 0.5)
        bars = error_bars(part, metric)
        ax.barh(y, part["latency_ms"], height=height * 0.92, xerr=bars, color=colour, capsize=2,
                label=threads_header(count))  # fmt: skip
        ends = part["latency_ms"].to_numpy(float) + np.nan_to_num(bars[1])
        for yi, end, ratio in zip(y, ends, part["ratio"]):
            if end == end and ratio == ratio:
                ax.annotate(f" {ratio:.2f}x", (end, yi), va="center", fontsize="x-small")
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


def save_plot(fig, folder: RunFolder) -> None:
    from mbbench.report import save_figure

    save_figure(fig, folder.plot)
