"""What a report says, built once, then rendered as a rich table, markdown, HTML, CSV or JSON.

:func:`build_document` turns results into a :class:`Document` of titled string tables (one section per
machine, plus the comparison); the renderers only lay those strings out, so every format says the same thing.
CSV and JSON are for machines and are rendered from the DataFrames directly.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from mbbench.bench.formatting import flag_legend, flag_marks, format_ms, threads_label
from mbbench.report.analysis import attained_throughput, correlations
from mbbench.report.compare import DEFAULT_ALPHA, POOLED_PREFIX
from mbbench.report.runtimes import ratio_text, refusal_text, runtime_comparison
from mbbench.runtimes import RUNTIMES
from mbbench.report.load import DEFAULT_METRIC, STAT_COLUMNS, label_variants, metric_column, metric_label
from mbbench.report.tables import (
    FLAG_NAMES,
    ROW_KEY,
    has_memory,
    long_table,
    marks,
    memory_pivot,
    pivot,
    precision_speedups,
    scaling,
)

FORMATS = ("table", "markdown", "csv", "json", "html")
LAYOUTS = ("wide", "long")
_TIDY_COLUMNS = [
    "machine", "host", "cpu_model", "model", "family", "run", "source", "threads", "rounds", *STAT_COLUMNS,
    "params", "macs", "oversubscribed", "unstable", "contended", "others_cpu_pct", "loadavg_1m",
]  # fmt: skip
# OWASP's CSV-injection list: a text cell starting with one of these is a formula to a spreadsheet.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# CommonMark starts raw HTML at "<" followed by a letter, "/", "!" or "?"; elsewhere "<" is plain text.
_MARKDOWN_HTML = re.compile(r"<(?=[A-Za-z/!?])")


@dataclass
class Table:
    """A titled table of already formatted cells; ``align`` holds "left" or "right" per column."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    align: list[str]
    notes: list[str] = field(default_factory=list)


@dataclass
class Section:
    heading: str
    tables: list[Table]


@dataclass
class Document:
    title: str
    notes: list[str]
    sections: list[Section]


def build_document(
    results: pd.DataFrame,
    metric: str = DEFAULT_METRIC,
    layout: str = "wide",
    comparison: pd.DataFrame | None = None,
    base_label: str = "base",
    alpha: float = DEFAULT_ALPHA,
) -> Document:
    """Everything the report says about ``results`` (and ``comparison``, from :func:`compare`), as text tables."""
    metric_column(metric)  # validates the name before any work
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, not {layout!r}")
    results = label_variants(results)
    by_runtime = runtime_comparison(results, metric, alpha)
    sections = []
    for machine, subset in results.groupby("machine", sort=False):
        tables = [_latency_wide(subset, metric) if layout == "wide" else _latency_long(subset, metric)]
        if not by_runtime.empty and (by_runtime["machine"] == machine).any():
            tables.append(_runtime_table(by_runtime[by_runtime["machine"] == machine], metric, alpha))
        if has_memory(subset):
            tables.append(_memory_table(subset))
        if subset["threads"].nunique() > 1:
            tables.append(_scaling_table(subset, metric))
        precisions = precision_speedups(subset, metric)
        if not precisions.empty:
            tables.append(_precision_table(precisions, metric))
        if subset[["macs", "params"]].notna().any().any():
            tables.append(_correlation_table(subset, metric))
        if subset["macs"].notna().any():
            tables.extend(_throughput_tables(subset, metric))
        sections.append(Section(machine, tables))
    if comparison is not None:
        sections.append(Section(f"Comparison with {base_label}", [_comparison_table(comparison, metric, alpha)]))
    sources = ", ".join(dict.fromkeys(s for joined in results["source"] for s in joined.split("; ")))
    notes = [f"Sources: {sources}."]
    if results.attrs.get("shared"):
        notes.append(f"Every row: {', '.join(results.attrs['shared'])}.")
    return Document(f"mbbench report: {metric_label(metric)} latency", notes, sections)


# --- building the tables -------------------------------------------------------------------------------------


def _row_head(index: tuple, show_run: bool) -> list[str]:
    _, model, run = index
    return [model, run] if show_run else [model]


def _flag_notes(results: pd.DataFrame) -> list[str]:
    return flag_legend({flag for flag in FLAG_NAMES if flag in results.columns and results[flag].any()})


def _rounds_note(results: pd.DataFrame) -> str:
    lo, hi = int(results["rounds"].min()), int(results["rounds"].max())
    return f"Rounds per measurement: {lo}." if lo == hi else f"Rounds per measurement: {lo} to {hi}."


def _pooled_notes(results: pd.DataFrame) -> list[str]:
    pooled = results[results["run"].str.startswith(POOLED_PREFIX)]
    if pooled.empty:
        return []
    runs = ", ".join(dict.fromkeys(r.removeprefix(POOLED_PREFIX) for r in pooled["run"]))
    notes = [f"Pooled from repeated runs: {runs} ({len(pooled)} cell{'s' if len(pooled) != 1 else ''})."]
    if pooled["p50_ms"].isna().any():
        notes.append(
            "Pooled cells without raw samples have a pooled mean and std but no percentiles (shown as -)."
        )
    return notes


def _latency_wide(results: pd.DataFrame, metric: str) -> Table:
    table = pivot(results, metric)
    values = table.to_numpy(dtype=float)
    stds = pivot(results, "std").to_numpy(dtype=float) if metric == "mean" else None
    cell_marks = marks(results).to_numpy()
    show_run = bool((table.index.get_level_values("run") != "").any())
    threads = list(table.columns)
    rows = []
    for i, index in enumerate(table.index):
        cells = []
        for j in range(len(threads)):
            value = values[i, j]
            if math.isnan(value):
                cells.append("-")
                continue
            std = stds[i, j] if stds is not None else math.nan
            text = format_ms(value) + ("" if math.isnan(std) else f" ± {format_ms(std, like=value)}")
            cells.append(text + cell_marks[i, j])
        rows.append(_row_head(index, show_run) + cells)
    title = f"{metric_label(metric).capitalize()} latency (ms)" + (" ± std" if metric == "mean" else "")
    headers = ["model", *(["run"] if show_run else []), *map(threads_label, threads)]
    align = ["left"] * (2 if show_run else 1) + ["right"] * len(threads)
    notes = [_rounds_note(results), *_flag_notes(results), *_pooled_notes(results)]
    return Table(title, headers, rows, align, notes)


def _latency_long(results: pd.DataFrame, metric: str) -> Table:
    table = long_table(results, metric)
    show_run = bool((table["run"] != "").any())
    value_columns = [c for c in table.columns if c.endswith("(ms)")]
    rows = []
    for record in table.to_dict("records"):
        threads = f"{record['num_threads']}{flag_marks(record)}"
        values = [format_ms(record[c], like=record[value_columns[0]]) for c in value_columns]
        head = [record["model"], *([record["run"]] if show_run else [])]
        rows.append([*head, str(record["rounds"]), threads, *values])
    headers = ["model", *(["run"] if show_run else []), "rounds", "num_threads", *value_columns]
    align = ["left"] * (2 if show_run else 1) + ["right"] * (2 + len(value_columns))
    notes = [*_flag_notes(results), *_pooled_notes(results)]
    return Table(f"{metric_label(metric).capitalize()} latency", headers, rows, align, notes)


def _scaling_table(results: pd.DataFrame, metric: str) -> Table:
    table = scaling(results, metric)
    show_run = bool((table["run"] != "").any())
    threads = [t for t in sorted(table["threads"].unique()) if t != 1]
    order = pd.MultiIndex.from_frame(table[ROW_KEY].drop_duplicates())
    speedup = table.pivot(index=ROW_KEY, columns="threads", values="speedup").reindex(index=order, columns=threads)
    efficiency = table.pivot(index=ROW_KEY, columns="threads", values="efficiency").reindex(
        index=order, columns=threads
    )
    best = table[table["best"]].set_index(ROW_KEY)[["threads", "latency_ms"]]
    best_cells = {key: f"{int(t)} ({format_ms(ms)} ms)" for key, t, ms in best.itertuples(name=None)}
    speedups, efficiencies = speedup.to_numpy(dtype=float), efficiency.to_numpy(dtype=float)
    rows = []
    for i, key in enumerate(order):
        cells = [best_cells.get(key, "-")]  # "-" when no thread count of the model has a latency
        for j in range(len(threads)):
            value, eff = speedups[i, j], efficiencies[i, j]
            if math.isnan(value):
                cells.append("-")
                continue
            cells.append(f"{value:.2f}x" + ("" if math.isnan(eff) else f" ({eff:.0%})"))
        rows.append(_row_head(key, show_run) + cells)
    headers = ["model", *(["run"] if show_run else []), "best threads", *map(threads_label, threads)]
    align = ["left"] * (2 if show_run else 1) + ["right"] * (1 + len(threads))
    notes = [
        "Speed-up = latency(1 thread) / latency(n threads); parallel efficiency (in brackets) = speed-up / n."
    ]
    if not (table["threads"] == 1).any():
        notes.append("No 1-thread results, so no speed-up: bench with --threads 1 as well.")
    return Table(f"Speed-up vs 1 thread ({metric_label(metric)} latency)", headers, rows, align, notes)


def _precision_table(table: pd.DataFrame, metric: str) -> Table:
    show_run = bool((table["run"] != "").any())
    threads = sorted(table["threads"].unique())
    rows = []
    for (network, run, precision), group in table.groupby(["network", "run", "precision"], sort=False):
        by_threads = group.set_index("threads")
        best = group[group["best"]]
        best_cell = "-"
        if not best.empty:
            best_cell = f"{int(best['threads'].iloc[0])} ({format_ms(best['latency_ms'].iloc[0])} ms)"
        cells = []
        for count in threads:
            value = by_threads["speedup"].get(count, math.nan)
            cells.append("-" if math.isnan(value) else f"{value:.2f}x")
        cosine, top1 = group["fidelity_cosine"].iloc[0], group["fidelity_top1"].iloc[0]
        fidelity = ["-" if math.isnan(cosine) else f"{cosine:.4f}", "-" if math.isnan(top1) else f"{top1:.0%}"]
        rows.append([network, *([run] if show_run else []), precision, best_cell, *cells, *fidelity])
    headers = ["model", *(["run"] if show_run else []), "precision", "best threads", *map(threads_label, threads),
               "cosine", "top-1"]  # fmt: skip
    align = ["left"] * (3 if show_run else 2) + ["right"] * (3 + len(threads))
    notes = [
        "Speed-up = latency(fp32) / latency(precision) of the same network at the same thread count. Cosine and "
        "top-1: the file's fidelity to the FP32 graph on held-out inputs, from its export manifest (fp32 is the "
        "reference); with a random init they describe a random network.",
    ]
    return Table(f"Speed-up vs fp32 ({metric_label(metric)} latency)", headers, rows, align, notes)


def _coefficient(value: float, p_value: float) -> str:
    return f"{value:+.2f} (p={p_value:.2g})"


def _correlation_table(results: pd.DataFrame, metric: str) -> Table:
    table = correlations(results, metric)
    rows = []
    for row in table.itertuples(index=False):
        against = "MACs" if row.against == "macs" else "params"
        if row.note:
            cells = [row.note, "-"]
        else:
            cells = [_coefficient(row.pearson_r, row.pearson_p), _coefficient(row.spearman_rho, row.spearman_p)]
        rows.append([str(row.threads), against, str(row.n_models), *cells])
    headers = ["threads", "latency vs", "models", "Pearson r", "Spearman rho"]
    notes = [
        "The MobileOne paper finds that on a phone latency tracks FLOPs only moderately and parameter count "
        "weakly; these are the same correlations on this machine (each model label counted once, its runs "
        "averaged)."
    ]
    title = f"Does {metric_label(metric)} latency follow MACs or params?"
    return Table(title, headers, rows, ["right", "left", "right", "right", "right"], notes)


def _throughput_tables(results: pd.DataFrame, metric: str) -> list[Table]:
    data = attained_throughput(results, metric)
    show_run = bool((data["run"] != "").any())
    threads = sorted(data["threads"].unique())
    head = ["model", *(["run"] if show_run else [])]
    order = pd.MultiIndex.from_frame(data[ROW_KEY].drop_duplicates())
    info = data.groupby(ROW_KEY, sort=False)[["macs", "params"]].first().reindex(order).to_numpy(dtype=float)
    tables = []
    for column, title, fmt, extra in (
        ("ms_per_gmac", "Milliseconds per GMAC (lower is better)", "{:.2f}", True),
        ("gflops", "Attained GFLOP/s (2 x MACs / latency)", "{:.1f}", False),
    ):
        wide = data.pivot(index=ROW_KEY, columns="threads", values=column).reindex(index=order, columns=threads)
        values = wide.to_numpy(dtype=float)
        rows = []
        for i, index in enumerate(order):
            cells = ["-" if math.isnan(v) else fmt.format(v) for v in values[i]]
            sizes = []
            if extra:
                macs, params = info[i]
                sizes = [f"{macs / 1e9:.3f}", "-" if math.isnan(params) else f"{params / 1e6:.2f}"]
            rows.append(_row_head(index, show_run) + sizes + cells)
        headers = head + (["GMACs", "M params"] if extra else []) + list(map(threads_label, threads))
        align = ["left"] * len(head) + ["right"] * (len(headers) - len(head))
        notes = ["MACs are multiply-accumulates; one MAC is two FLOPs."] if not extra else []
        tables.append(Table(f"{title}, {metric_label(metric)} latency", headers, rows, align, notes))
    return tables


def _verdict(row) -> str:
    if row.verdict == "can't tell":
        return "can't tell: no raw samples"
    if row.verdict in ("not significant", "only in new", "only in base"):
        return row.verdict
    # pyperf's convention: always a factor >= 1, with the direction in words.
    factor = row.ratio if row.ratio >= 1 else 1 / row.ratio
    return f"{factor:.2f}x {row.verdict}"


def _memory_change(row) -> str:
    """``38.1 -> 42.0 (1.10x)``: the peak over the imported runtime, base then new, and their ratio."""
    if pd.isna(row.memory_ratio):
        return "-"
    return f"{row.base_peak_delta_mib:.1f} -> {row.new_peak_delta_mib:.1f} ({row.memory_ratio:.2f}x)"


def _runtime_table(comparison: pd.DataFrame, metric: str, alpha: float) -> Table:
    """Model x runtime per thread count: each runtime's latency and its ratio to ONNX Runtime's, or why the
    runtime could not run the model."""
    runtimes = [r for r in RUNTIMES if r in set(comparison["runtime"])]
    runtimes += sorted(set(comparison["runtime"]) - set(runtimes))
    rows, reasons = [], {}
    for (model, threads), group in comparison.groupby(["model", "threads"], sort=False):
        cells = {}
        for _, r in group.iterrows():
            cells[r["runtime"]] = ratio_text(r)
            if isinstance(r["unsupported"], str) and r["unsupported"]:
                reasons.setdefault(refusal_text(r["runtime"], r["unsupported"]), []).append(model)
                cells[r["runtime"]] += f" [{list(reasons).index(refusal_text(r['runtime'], r['unsupported'])) + 1}]"
        rows.append([model, threads_label(threads), *(cells.get(r, "-") for r in runtimes)])
    notes = [f"{metric_label(metric).capitalize()} latency in ms; in brackets the ratio to ONNX Runtime's for the "
             "same export at the same thread count (below 1: faster); ~ marks a difference that is not significant "
             f"(two-sided Mann-Whitney U on the raw samples, alpha {alpha:g}); no mark where it is, or where the "
             "samples were not loaded."]
    for number, (reason, models) in enumerate(reasons.items(), start=1):
        notes.append(f"[{number}] {', '.join(dict.fromkeys(models))}: {reason}.")
    cosines = comparison.dropna(subset=["cosine"])
    if not cosines.empty:
        notes.append("Each artifact was checked against the export's output on the benchmark's input before it was "
                     f"timed: cosine similarity {cosines['cosine'].min():.6f} at worst.")
    return Table("Latency by runtime", ["model", "threads", *runtimes], rows, ["left", "right"] +
                 ["right"] * len(runtimes), notes)


def _memory_table(results: pd.DataFrame) -> Table:
    """What each configuration cost in memory: the peak resident set over the imported runtime, its anonymous
    (heap) part in brackets, a range where pooled runs disagree."""
    peak, peak_low = memory_pivot(results, "peak_delta_mib")
    heap, _ = memory_pivot(results, "heap_delta_mib")
    show_run = bool((peak.index.get_level_values("run") != "").any())
    threads = list(peak.columns)
    rows = []
    for index in peak.index:
        cells = []
        for t in threads:
            value, low, anon = peak.at[index, t], peak_low.at[index, t], heap.at[index, t]
            if pd.isna(value):
                cells.append("-")
                continue
            text = f"{low:.1f}-{value:.1f}" if not pd.isna(low) and low < value else f"{value:.1f}"
            cells.append(text + ("" if pd.isna(anon) else f" [{anon:.1f}]"))
        rows.append(_row_head(index, show_run) + cells)
    headers = ["model", *(["run"] if show_run else []), *map(threads_label, threads)]
    align = ["left"] * (2 if show_run else 1) + ["right"] * len(threads)
    methods = sorted(set(results.get("memory_method", pd.Series(dtype=object)).dropna()))
    notes = ["Peak resident memory over the imported runtime (MiB): what the configuration cost, measured in the "
             "worker that ran it; in brackets its anonymous part (weights, arenas, activations), the rest being "
             f"code and file pages. Read by: {', '.join(methods) or 'unknown'}."]
    if "rusage" in methods:
        notes.append("rusage figures are bounded by the parent process's high-water mark: read them as upper "
                     "bounds.")
    return Table("Peak memory over the runtime (MiB) [heap]", headers, rows, align, notes)


def _comparison_table(comparison: pd.DataFrame, metric: str, alpha: float) -> Table:
    # the statistic the comparison was made on, whatever the rest of the report shows
    metric = next((c[len("base_"):-len("_ms")] for c in comparison.columns
                   if c.startswith("base_") and c.endswith("_ms")), metric)  # fmt: skip
    show_machine = comparison["machine"].nunique() > 1
    show_run = comparison["run"][comparison["run"] != ""].nunique() > 1
    show_note = "note" in comparison.columns and (comparison["note"] != "").any()
    show_memory = "memory_ratio" in comparison.columns and comparison["memory_ratio"].notna().any()
    rows = []
    for row in comparison.itertuples(index=False):
        rows.append(
            [
                *([row.machine] if show_machine else []),
                row.model,
                *([row.run] if show_run else []),
                str(row.threads),
                format_ms(getattr(row, f"base_{metric}_ms")),
                format_ms(getattr(row, f"new_{metric}_ms")),
                "-" if pd.isna(row.ratio) else f"{row.ratio:.3f}",
                "-" if pd.isna(row.p_value) else f"{row.p_value:.2g}",
                _verdict(row),
                *([_memory_change(row)] if show_memory else []),
                *([row.note] if show_note else []),
            ]
        )
    head = [*(["machine"] if show_machine else []), "model", *(["run"] if show_run else [])]
    headers = [*head, "threads", f"base {metric} (ms)", f"new {metric} (ms)", "new/base", "p", "verdict"]
    headers += ["memory (MiB)"] if show_memory else []
    headers += ["note"] if show_note else []
    align = ["left"] * len(head) + ["right"] * (6 if show_memory else 5) + ["left"] * (2 if show_note else 1)
    notes = [
        f"Significant means p < {alpha:g} in a two-sided Mann-Whitney U test on the raw samples "
        "(each CSV's .samples.csv sidecar); without them the test can't tell. Among many comparisons of "
        f"unchanged code about {alpha:.0%} come out significant by chance.",
        "Runs are paired by the model file they measured (its sha256), else by model name and threads with opset "
        "and precision equal where both sides record them; a different input shape is said in the note.",
    ]
    pairs = comparison[comparison["machine"] != comparison["base_machine"]][["machine", "base_machine"]]
    for new_machine, base_machine in pairs.dropna().drop_duplicates().itertuples(index=False):
        notes.append(f"Different machines: new {new_machine} vs base {base_machine}.")
    return Table(f"New vs base, {metric_label(metric)} latency", headers, rows, align, notes)


# --- renderers -----------------------------------------------------------------------------------------------


def to_markdown(document: Document) -> str:
    """GitHub-flavoured markdown: a heading per machine, a pipe table per table, notes as paragraphs.

    Names are text: a "|" cannot end a cell, a newline cannot end a row, and "<script>" stays visible.
    """
    lines = [f"# {_md(document.title)}", "", *_paragraphs(document.notes)]
    for section in document.sections:
        lines += [f"## {_md(section.heading)}", ""]
        for table in section.tables:
            lines += [f"### {_md(table.title)}", ""]
            lines.append("| " + " | ".join(map(_md, table.headers)) + " |")
            lines.append("| " + " | ".join("---:" if a == "right" else ":---" for a in table.align) + " |")
            lines += ["| " + " | ".join(map(_md, row)) + " |" for row in table.rows]
            lines += ["", *_paragraphs(table.notes)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _md(text: str) -> str:
    text = " ".join(str(text).splitlines())
    return _MARKDOWN_HTML.sub("&lt;", text).replace("|", "\\|")


def _paragraphs(notes: list[str]) -> list[str]:
    out = []
    for note in notes:
        out += [_md(note), ""]
    return out


def to_html(document: Document) -> str:
    """A standalone HTML page with the same headings, tables and notes as the markdown."""
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{e(document.title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse;margin:.5em 0}"
        "th,td{border:1px solid #ccc;padding:.25em .6em}th{background:#f4f4f4}td.r,th.r{text-align:right}"
        "p.note{color:#555;font-size:.9em;margin:.2em 0}</style>",
        "</head>",
        "<body>",
        f"<h1>{e(document.title)}</h1>",
        *(f'<p class="note">{e(n)}</p>' for n in document.notes),
    ]
    for section in document.sections:
        parts.append(f"<h2>{e(section.heading)}</h2>")
        for table in section.tables:
            cls = [' class="r"' if a == "right" else "" for a in table.align]
            parts += [f"<h3>{e(table.title)}</h3>", "<table>", "<thead><tr>"]
            parts += [f"<th{c}>{e(h)}</th>" for c, h in zip(cls, table.headers)]
            parts += ["</tr></thead>", "<tbody>"]
            for row in table.rows:
                parts.append("<tr>" + "".join(f"<td{c}>{e(v)}</td>" for c, v in zip(cls, row)) + "</tr>")
            parts += ["</tbody>", "</table>", *(f'<p class="note">{e(n)}</p>' for n in table.notes)]
    parts += ["</body>", "</html>"]
    return "\n".join(parts) + "\n"


def to_rich(document: Document) -> list:
    """Rich renderables (rules, tables, dim notes) for a terminal; print each with a rich Console."""
    from rich.rule import Rule
    from rich.table import Table as RichTable
    from rich.text import Text

    # Every string goes in as Text: a name holding "[/]" is text, never rich markup.
    out: list = [Text(document.title, style="bold"), *(Text(n, style="dim") for n in document.notes)]
    for section in document.sections:
        out.append(Rule(Text(section.heading)))
        for table in section.tables:
            rich_table = RichTable(title=Text(table.title), title_justify="left", title_style="bold")
            for header, align in zip(table.headers, table.align):
                rich_table.add_column(Text(header), justify=align, no_wrap=align == "right")
            for row in table.rows:
                rich_table.add_row(*map(Text, row))
            out.append(rich_table)
            out += [Text(n, style="dim") for n in table.notes]
            out.append(Text(""))
    return out


def to_text(document: Document, width: int = 120) -> str:
    """The terminal table as plain text (no colours), e.g. for ``--output report.txt``."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False, soft_wrap=False)
    for renderable in to_rich(document):
        console.print(renderable)
    return buffer.getvalue()


def tidy(results: pd.DataFrame) -> pd.DataFrame:
    """One row per measurement with the columns a spreadsheet needs (no raw samples)."""
    return results[[c for c in _TIDY_COLUMNS if c in results.columns]]


def to_csv(
    results: pd.DataFrame, metric: str = DEFAULT_METRIC, layout: str = "wide", comparison: pd.DataFrame | None = None
) -> str:
    """CSV of the comparison when there is one, else of the latency table.

    wide: machine, model, run, then ``<metric>_ms_t<n>`` (and ``std_ms_t<n>`` for the mean) per thread count;
    long: :func:`tidy` plus speedup, efficiency, best and (when MACs are known) ms_per_gmac and gflops.
    """
    if comparison is not None:
        frame = comparison
    elif layout == "wide":
        values = pivot(results, metric).add_prefix(f"{metric}_ms_t")
        parts = [values]
        if metric == "mean":
            parts.append(pivot(results, "std").add_prefix("std_ms_t"))
        frame = pd.concat(parts, axis=1)
        order = [c for pair in zip(*(p.columns for p in parts)) for c in pair]
        frame = frame[order].reset_index()
    else:
        frame = _long_records(results, metric)
    return defuse_formulas(frame).to_csv(index=False, lineterminator="\n")


def defuse_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula get a leading "'" (OWASP); numbers stay numbers."""

    def defuse(value):
        if isinstance(value, str) and value.startswith(_FORMULA_START):
            try:
                float(value)
            except ValueError:
                return "'" + value
        return value

    frame = frame.copy()
    frame.columns = [defuse(c) if isinstance(c, str) else c for c in frame.columns]
    for column in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].map(defuse)
    return frame


def _long_records(results: pd.DataFrame, metric: str) -> pd.DataFrame:
    """:func:`tidy` rows plus their speed-up, efficiency, best flag, ms per GMAC and attained GFLOP/s."""
    scale = scaling(results, metric)[["speedup", "efficiency", "best"]]
    throughput = attained_throughput(results, metric)[["ms_per_gmac", "gflops"]]  # rows with known MACs
    return tidy(results).join(scale).join(throughput)


def to_json(
    results: pd.DataFrame,
    metric: str = DEFAULT_METRIC,
    comparison: pd.DataFrame | None = None,
) -> str:
    """Everything as one JSON object: ``results`` (one record per measurement with its speed-up, efficiency,
    ms per GMAC and GFLOP/s), ``correlations`` and ``comparison`` (null without one). NaN becomes null.
    """
    document = {
        "metric": metric,
        "results": _records(_long_records(results, metric)),
        "correlations": _records(correlations(results, metric)),
        "comparison": None if comparison is None else _records(comparison),
    }
    return json.dumps(document, indent=2, allow_nan=False) + "\n"


def _records(frame: pd.DataFrame) -> list[dict]:
    def plain(value):
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value

    return [{k: plain(v) for k, v in record.items()} for record in frame.to_dict("records")]


def render(
    results: pd.DataFrame,
    fmt: str = "markdown",
    metric: str = DEFAULT_METRIC,
    layout: str = "wide",
    comparison: pd.DataFrame | None = None,
    base_label: str = "base",
    alpha: float = DEFAULT_ALPHA,
) -> str:
    """The report as text in ``fmt`` (table = plain-text terminal tables)."""
    if fmt == "csv":
        return to_csv(results, metric, layout, comparison)
    if fmt == "json":
        return to_json(results, metric, comparison)
    document = build_document(results, metric, layout, comparison, base_label, alpha)
    if fmt == "markdown":
        return to_markdown(document)
    if fmt == "html":
        return to_html(document)
    if fmt == "table":
        return to_text(document)
    raise ValueError(f"format must be one of {FORMATS}, not {fmt!r}")
