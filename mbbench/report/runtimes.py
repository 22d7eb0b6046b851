"""The runtime axis: the same exports timed in several runtimes, side by side, as ratios to ONNX Runtime.

A row of :func:`runtime_comparison` is one (machine, model, threads, runtime): its latency, the ratio to ONNX
Runtime's latency of the same export at the same thread count on the same machine, whether that difference is
significant (a two-sided Mann-Whitney U test on the raw samples, as ``--compare`` does) and, for a configuration
the runtime could not run, the reason instead of a number.
"""

from __future__ import annotations

import math

import pandas as pd

from mbbench.bench.formatting import format_ms, variant_labels
from mbbench.report.compare import DEFAULT_ALPHA
from mbbench.report.load import DEFAULT_METRIC, has_samples, metric_column, unsupported_frame
from mbbench.runtimes import RUNTIMES

REFERENCE = "onnxruntime"
COLUMNS = ("machine", "model", "threads", "runtime", "latency_ms", "ratio", "p_value", "significant", "cosine",
           "unsupported")


def export_labels(frame: pd.DataFrame) -> list[str]:
    """Each row's label as if every row ran in one runtime: the export it measured, whatever ran it (an artifact
    counts as the export it was made from)."""
    records = []
    for row in frame.to_dict("records"):
        source = row.get("source_sha256")
        sha = source if isinstance(source, str) and source else row.get("sha256")
        model = row.get("name", row.get("model"))
        records.append({**row, "model": model, "runtime": REFERENCE, "sha256": sha})
    labels, _, _ = variant_labels(records)
    return labels


def runtimes_of(results: pd.DataFrame) -> list[str]:
    """The runtimes in ``results`` (refused configurations included), in the registry's order."""
    present = set(results["runtime"])
    present |= {r["runtime"] for r in results.attrs.get("unsupported") or []}
    order = list(RUNTIMES)
    return sorted(present, key=lambda r: (order.index(r) if r in order else len(order), r))


def runtime_comparison(
    results: pd.DataFrame, metric: str = DEFAULT_METRIC, alpha: float = DEFAULT_ALPHA
) -> pd.DataFrame:
    """One row per (machine, model, threads, runtime) with the ratio to ONNX Runtime (see the module's
    docstring); empty when ``results`` holds one runtime and nothing refused. ``results`` is
    :func:`mbbench.report.load`'s (refused configurations come from ``results.attrs["unsupported"]``); rows
    repeated across runs are taken as their first run (``report --combine`` pools them first)."""
    from scipy.stats import mannwhitneyu

    column = metric_column(metric)
    refused = unsupported_frame(results)
    if len(runtimes_of(results)) < 2 and refused.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    measured = results.assign(export=export_labels(results))
    measured = measured.drop_duplicates(["machine", "export", "threads", "runtime"])
    reference = {(r.machine, r.export, r.threads): r for r in measured.itertuples() if r.runtime == REFERENCE}
    records = []
    for r in measured.itertuples():
        base = reference.get((r.machine, r.export, r.threads))
        value = float(getattr(r, column))
        ratio = p_value = math.nan
        significant = None
        if base is not None:
            base_value = float(getattr(base, column))
            ratio = value / base_value if base_value > 0 else math.nan
            if r.runtime != REFERENCE and has_samples(r.samples) and has_samples(base.samples):
                p_value = float(mannwhitneyu(r.samples, base.samples, alternative="two-sided").pvalue)
                significant = bool(p_value < alpha)
        cosine = getattr(r, "conversion_cosine", math.nan)
        records.append({"machine": r.machine, "model": r.export, "threads": int(r.threads), "runtime": r.runtime,
                        "latency_ms": value, "ratio": ratio, "p_value": p_value, "significant": significant,
                        "cosine": pd.to_numeric(cosine, errors="coerce"), "unsupported": None})
    if not refused.empty:
        refused = refused.assign(export=export_labels(refused))
        for r in refused.drop_duplicates(["machine", "export", "threads", "runtime"]).itertuples():
            records.append({"machine": r.machine, "model": r.export, "threads": int(r.threads), "runtime": r.runtime,
                            "latency_ms": math.nan, "ratio": math.nan, "p_value": math.nan, "significant": None,
                            "cosine": math.nan, "unsupported": r.reason})
    return pd.DataFrame(records, columns=list(COLUMNS))


def refusal_text(runtime: str, reason: str) -> str:
    """``not supported by ncnn: <reason>`` (the reason as the runtime module worded it, not repeated)."""
    return reason if reason.startswith("not supported") else f"not supported by {runtime}: {reason}"


def ratio_text(row: pd.Series) -> str:
    """A cell of the runtime table: ``1.23 (x0.85)``, ``~`` when the difference is not significant, or
    ``not supported`` (the reason is the table's note)."""
    if isinstance(row["unsupported"], str) and row["unsupported"]:
        return "not supported"
    text = format_ms(row["latency_ms"])
    if row["runtime"] == REFERENCE or math.isnan(row["ratio"]):
        return text
    mark = "~" if row["significant"] is False else ""
    return f"{text} ({mark}x{row['ratio']:.2f})"
