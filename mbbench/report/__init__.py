"""Turn bench CSVs into what people read: latency tables, scaling, the FLOPs/params question, comparisons, plots.

Typical use::

    from mbbench import report
    results = report.load(["results/pixel7.csv"])
    report.pivot(results)                 # mean ms, rows models, columns thread counts
    report.correlations(results)          # does latency follow MACs / params here?
    print(report.render(results, "markdown"))

The plot functions import matplotlib, so they are resolved lazily (PEP 562): a text report does not pay for it.
"""

from __future__ import annotations

from mbbench._lazy import lazy_attributes

from mbbench.report._io import check_destination, write_text
from mbbench.report.analysis import attained_throughput, correlations
from mbbench.report.compare import DEFAULT_ALPHA, combine, compare, pooled_stats
from mbbench.report.document import (
    FORMATS,
    LAYOUTS,
    Document,
    build_document,
    render,
    to_html,
    to_markdown,
    to_rich,
    to_text,
)
from mbbench.report.load import METRICS, REQUIRED_COLUMNS, filter_results, load, model_order, samples_path
from mbbench.report.tables import long_table, pivot, scaling

_LAZY = {
    name: "mbbench.report.plots"
    for name in (
        "PLOT_FILES",
        "check_plots_dir",
        "plot_latency_vs_threads",
        "plot_speedup",
        "plot_latency_vs_macs",
        "plot_overview",
        "save_figure",
        "write_plots",
    )
}

__all__ = [
    "DEFAULT_ALPHA",
    "FORMATS",
    "LAYOUTS",
    "METRICS",
    "REQUIRED_COLUMNS",
    "Document",
    "attained_throughput",
    "check_destination",
    "build_document",
    "combine",
    "compare",
    "correlations",
    "filter_results",
    "load",
    "long_table",
    "model_order",
    "pivot",
    "pooled_stats",
    "render",
    "samples_path",
    "scaling",
    "to_html",
    "to_markdown",
    "to_rich",
    "to_text",
    "write_text",
    *_LAZY,
]

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
