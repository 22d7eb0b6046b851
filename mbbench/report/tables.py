"""The study's tables as DataFrames: latency pivots and thread scaling.

Rows repeated across runs (same machine, model and threads) are kept apart: the ``run`` index level names
the run for those models and is empty for every model measured once per thread count.
"""

from __future__ import annotations

import pandas as pd

from mbbench.report.load import metric_column

ROW_KEY = ["machine", "model", "run"]


def shown_runs(results: pd.DataFrame) -> pd.Series:
    """The run label to show next to each row's model: the run where the model has repeated rows, else ""."""
    repeated = results.duplicated(["machine", "model", "threads"], keep=False)
    model_repeats = repeated.groupby([results["machine"], results["model"]]).transform("any")
    return results["run"].where(model_repeats, "")


def keyed(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with ``run`` replaced by :func:`shown_runs`, i.e. one row per (machine, model, run, threads)."""
    return results.assign(run=shown_runs(results))


def pivot(results: pd.DataFrame, metric: str = "mean") -> pd.DataFrame:
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


def scaling(results: pd.DataFrame, metric: str = "mean") -> pd.DataFrame:
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


def long_table(results: pd.DataFrame, metric: str = "mean") -> pd.DataFrame:
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
    out["oversubscribed"] = frame["oversubscribed"].astype(bool)
    out["unstable"] = frame["unstable"].astype(bool)
    return out.reset_index(drop=True)


def flags(results: pd.DataFrame) -> pd.DataFrame:
    """Oversubscribed / unstable flags pivoted like :func:`pivot` (False where there is no row)."""
    frame = keyed(results)
    order = pd.MultiIndex.from_frame(frame[ROW_KEY].drop_duplicates())
    out = {}
    for flag in ("oversubscribed", "unstable"):
        table = frame.pivot(index=ROW_KEY, columns="threads", values=flag)
        out[flag] = table.reindex(index=order, columns=sorted(table.columns)).fillna(False).astype(bool)
    return pd.concat(out, axis=1)

