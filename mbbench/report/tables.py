"""The study's tables as DataFrames: latency pivots and thread scaling.

Rows repeated across runs (same machine, model and threads) are kept apart: the ``run`` index level names
the run for those models and is empty for every model measured once per thread count.
"""

from __future__ import annotations

import pandas as pd

from mbbench.bench.formatting import FLAGS, flag_marks
from mbbench.report.load import DEFAULT_METRIC, metric_column

FLAG_NAMES = tuple(name for name, _, _ in FLAGS)

ROW_KEY = ["machine", "model", "run"]


def shown_runs(results: pd.DataFrame) -> pd.Series:
    """The run label to show next to each row's model: the run where the model has repeated rows, else ""."""
    repeated = results.duplicated(["machine", "model", "threads"], keep=False)
    model_repeats = repeated.groupby([results["machine"], results["model"]]).transform("any")
    return results["run"].where(model_repeats, "")


def keyed(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with ``run`` replaced by :func:`shown_runs`, i.e. one row per (machine, model, run, threads)."""
    return results.assign(run=shown_runs(results))


def pivot(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Latency ``metric`` in ms, rows (machine, model, run) in report order, one column per thread count.

    ``metric`` is one of mean, p50, p90, p99, min, max, or std (the standard deviation of the rounds).
    Missing (model, threads) combinations are NaN.
    """
    frame = keyed(results)
    table = frame.pivot(index=ROW_KEY, columns="threads", values=metric_column(metric))
    order = pd.MultiIndex.from_frame(frame[ROW_KEY].drop_duplicates())
    table = table.reindex(index=order, columns=sorted(table.columns))
    table.columns.name = "threads"
    return table


def scaling(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Speed-up and parallel efficiency of each row against the same model's 1-thread row.

    speedup = latency(1 thread) / latency(n threads); efficiency = speedup / n. Both are NaN without a
    1-thread row (and efficiency for a thread count <= 0, ONNX Runtime's "default"). ``best`` marks the
    thread count with the lowest latency of each (machine, model, run), the fewest threads on a tie.
    Columns: machine, model, run, threads, latency_ms, speedup, efficiency, best; indexed like ``results``.
    """
    frame = keyed(results)
    out = frame[[*ROW_KEY, "threads"]].copy()
    out["latency_ms"] = frame[metric_column(metric)].to_numpy()
    one_thread = out["latency_ms"].where(out["threads"] == 1)
    baseline = one_thread.groupby([out[k] for k in ROW_KEY], sort=False).transform("first")
    out["speedup"] = baseline / out["latency_ms"]
    out["efficiency"] = out["speedup"] / out["threads"].where(out["threads"] > 0)
    # Ties go to the fewest threads: the cheaper configuration that is as fast.
    ranked = out.sort_values([*ROW_KEY, "latency_ms", "threads"], kind="stable")
    best_index = ranked.dropna(subset=["latency_ms"]).groupby(ROW_KEY, sort=False).head(1).index
    out["best"] = out.index.isin(best_index)
    return out


def long_table(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """The study's long layout: machine, model, run, rounds, num_threads, <metric> (ms) [, std (ms)],
    oversubscribed, unstable; the std column is there only for the mean."""
    frame = keyed(results)
    out = pd.DataFrame(
        {
            "machine": frame["machine"],
            "model": frame["model"],
            "run": frame["run"],
            "rounds": frame["rounds"].astype(int),
            "num_threads": frame["threads"].astype(int),
            f"{metric} (ms)": frame[metric_column(metric)],
        }
    )
    if metric == "mean":
        out["std (ms)"] = frame["std_ms"]
    for flag in FLAG_NAMES:
        out[flag] = frame[flag].astype(bool) if flag in frame.columns else False
    return out.reset_index(drop=True)


def row_marks(results: pd.DataFrame) -> pd.Series:
    """Each row's flag marks (mbbench.bench.formatting.flag_marks: " †", " !", " ‡"), "" for none."""
    present = [flag for flag in FLAG_NAMES if flag in results.columns]
    if not present:
        return pd.Series("", index=results.index)
    return pd.Series([flag_marks(r) for r in results[present].to_dict("records")], index=results.index)


def flags(results: pd.DataFrame) -> pd.DataFrame:
    """Each flag (oversubscribed, unstable, contended) pivoted like :func:`pivot` (False where there is no row)."""
    frame = keyed(results)
    order = pd.MultiIndex.from_frame(frame[ROW_KEY].drop_duplicates())
    out = {}
    for flag in FLAG_NAMES:
        if flag not in frame.columns:
            continue
        table = frame.pivot(index=ROW_KEY, columns="threads", values=flag)
        out[flag] = table.reindex(index=order, columns=sorted(table.columns)).fillna(False).astype(bool)
    return pd.concat(out, axis=1)


def marks(results: pd.DataFrame) -> pd.DataFrame:
    """:func:`row_marks` pivoted like :func:`pivot` ("" where there is no row)."""
    frame = keyed(results).assign(marks=row_marks(results))
    order = pd.MultiIndex.from_frame(frame[ROW_KEY].drop_duplicates())
    table = frame.pivot(index=ROW_KEY, columns="threads", values="marks")
    return table.reindex(index=order, columns=sorted(table.columns)).fillna("")



#: Precisions in the order a table lists them (others after, by name).
PRECISION_ORDER = ("fp32", "fp16", "int8", "int8-dynamic")


def precision_network(model: str, precision: str) -> str:
    """The network a row measures, whatever its precision: the label without its ``-<precision>`` suffix
    (``mobileone-s0-224-opset17-int8`` and ``mobileone-s0-224-opset17`` are one network)."""
    suffix = f"-{precision}"
    return model[: -len(suffix)] if precision != "fp32" and model.endswith(suffix) else model


def precision_speedups(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Speed-up over the FP32 file of the same network, for every network measured in more than one precision.

    A row's precision is bench's ``precision`` column (from the export manifest; empty reads as fp32), its network
    :func:`precision_network`. speedup = latency(fp32) / latency(precision) at the same thread count (NaN where
    FP32 has no row); ``best`` marks the fastest thread count of each precision (the fewest threads on a tie).
    Columns: machine, network, run, precision, model, threads, latency_ms, speedup, best, fidelity_cosine,
    fidelity_top1 (NaN where unknown); empty without a ``precision`` column or a network in two precisions.
    """
    columns = ["machine", "network", "run", "precision", "model", "threads", "latency_ms", "speedup", "best",
               "fidelity_cosine", "fidelity_top1"]  # fmt: skip
    if "precision" not in results.columns:
        return pd.DataFrame(columns=columns)
    frame = keyed(results)
    precision = frame["precision"].map(lambda p: str(p).strip().lower() if isinstance(p, str) and p.strip() else "fp32")
    out = pd.DataFrame({
        "machine": frame["machine"],
        # label_variants' network (the label without its precision), else the bench label without its suffix
        "network": (frame["network"] if "network" in frame.columns
                    else [precision_network(m, p) for m, p in zip(frame["model"], precision)]),
        "run": frame["run"],
        "precision": precision,
        "model": frame["model"],
        "threads": frame["threads"],
        "latency_ms": frame[metric_column(metric)].astype(float),
    })  # fmt: skip
    for column in ("fidelity_cosine", "fidelity_top1"):
        values = frame[column] if column in frame.columns else pd.Series(float("nan"), index=frame.index)
        out[column] = pd.to_numeric(values, errors="coerce").astype(float)
    group = ["machine", "network", "run"]
    kinds = out.groupby(group, sort=False)["precision"].transform("nunique")
    has_fp32 = out["precision"].eq("fp32").groupby([out[k] for k in group], sort=False).transform("any")
    out = out[(kinds > 1) & has_fp32]
    if out.empty:
        return pd.DataFrame(columns=columns)
    fp32 = out[out["precision"] == "fp32"].groupby([*group, "threads"], sort=False)["latency_ms"].mean()
    reference = pd.Series([fp32.get(key, float("nan")) for key in zip(*(out[k] for k in [*group, "threads"]))],
                          index=out.index)  # fmt: skip
    out = out.assign(speedup=reference / out["latency_ms"])
    ranked = out.dropna(subset=["latency_ms"])
    ranked = ranked.sort_values([*group, "precision", "latency_ms", "threads"], kind="stable")
    best = ranked.groupby([*group, "precision"], sort=False).head(1).index
    out = out.assign(best=out.index.isin(best))
    rank = {p: i for i, p in enumerate(PRECISION_ORDER)}
    order = out.assign(_network=out.groupby(group, sort=False).ngroup(),
                       _rank=out["precision"].map(lambda p: rank.get(p, len(rank))))  # fmt: skip
    order = order.sort_values(["_network", "_rank", "precision", "threads"], kind="stable")
    return order[columns].reset_index(drop=True)


def has_memory(results: pd.DataFrame) -> bool:
    """Whether any row records what its configuration cost in memory (CSVs from before issue 23 do not)."""
    return "peak_delta_mib" in results.columns and results["peak_delta_mib"].notna().any()


def memory_pivot(results: pd.DataFrame, column: str = "peak_delta_mib") -> tuple[pd.DataFrame, pd.DataFrame]:
    """``column`` (MiB) pivoted like :func:`pivot`: rows (machine, model, run), one column per thread count; and
    the low end of its range where pooled runs disagree (:func:`mbbench.report.compare.combine` keeps both)."""
    frame = keyed(results)
    order = pd.MultiIndex.from_frame(frame[ROW_KEY].drop_duplicates())

    def pivoted(name: str) -> pd.DataFrame:
        values = frame[name] if name in frame.columns else frame[column]
        table = frame.assign(_v=pd.to_numeric(values, errors="coerce")).pivot(index=ROW_KEY, columns="threads",
                                                                             values="_v")
        return table.reindex(index=order, columns=sorted(table.columns))

    return pivoted(column), pivoted(f"{column}_low")
