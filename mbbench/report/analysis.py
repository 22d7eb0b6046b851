"""Does latency follow MACs or parameters on this hardware?

The MobileOne paper (Vasu et al.) reports that on a phone latency correlates only moderately with FLOPs and
weakly with parameter count; these functions answer the same question for the user's runs.
``macs`` are multiply-accumulates, so one MAC is two FLOPs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from mbbench.report.load import DEFAULT_METRIC, metric_column
from mbbench.report.tables import ROW_KEY, keyed

# With two points any correlation is +-1; with three, Spearman's rho takes one of four values and no p-value can
# fall below 0.33 (an exact "p=0" there is an artefact), so a correlation needs four models to say anything.
MIN_MODELS = 4
PREDICTORS = ("macs", "params")
CORRELATION_COLUMNS = [
    "machine", "threads", "against", "n_models", "pearson_r", "pearson_p", "spearman_rho", "spearman_p", "note"
]


def correlations(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Pearson and Spearman correlation of latency with MACs and with params, per machine and thread count.

    Each model counts once: a model measured in several runs contributes the mean of its runs' ``metric``.
    Only models whose predictor is known take part. Where a correlation is undefined (fewer than
    :data:`MIN_MODELS` models: "too few models to decide", or a constant input) the coefficients are NaN and ``note`` says why.
    Columns: machine, threads, against ("macs" or "params"), n_models, pearson_r, pearson_p, spearman_rho,
    spearman_p, note.
    """
    from scipy.stats import pearsonr, spearmanr  # scipy is slow to import; only the analysis needs it

    column = metric_column(metric)
    records = []
    ordered = results.sort_values("threads", kind="stable")
    for (machine, threads), group in ordered.groupby(["machine", "threads"], sort=False):
        per_model = group.groupby("model", sort=False).agg(
            latency=(column, "mean"), macs=("macs", "first"), params=("params", "first")
        )
        for against in PREDICTORS:
            usable = per_model.dropna(subset=["latency", against])
            record = {
                "machine": machine,
                "threads": int(threads),
                "against": against,
                "n_models": len(usable),
                "pearson_r": np.nan,
                "pearson_p": np.nan,
                "spearman_rho": np.nan,
                "spearman_p": np.nan,
                "note": "",
            }
            x, y = usable[against].to_numpy(float), usable["latency"].to_numpy(float)
            if len(usable) < MIN_MODELS:
                count = f"{len(usable)} model{'s' if len(usable) != 1 else ''}"
                record["note"] = f"too few models to decide ({count}, needs {MIN_MODELS})"
            elif np.ptp(x) == 0 or np.ptp(y) == 0:
                record["note"] = f"undefined: {'latency' if np.ptp(y) == 0 else against} is the same for every model"
            else:
                with warnings.catch_warnings():
                    # Exact p-values for tiny n are fine; scipy's accuracy warnings add nothing here.
                    warnings.simplefilter("ignore")
                    pearson, spearman = pearsonr(x, y), spearmanr(x, y)
                record.update(
                    pearson_r=float(pearson.statistic),
                    pearson_p=float(pearson.pvalue),
                    spearman_rho=float(spearman.statistic),
                    spearman_p=float(spearman.pvalue),
                )
            records.append(record)
    return pd.DataFrame(records, columns=CORRELATION_COLUMNS)


def attained_throughput(results: pd.DataFrame, metric: str = DEFAULT_METRIC) -> pd.DataFrame:
    """Latency per unit of work for each row whose MACs are known.

    ms_per_gmac = latency_ms / (macs / 1e9); gflops = 2 * macs / (latency_ms / 1e3) / 1e9 (one MAC = two
    FLOPs). Columns: machine, model, run, threads, macs, params, latency_ms, ms_per_gmac, gflops; the index
    is that of the ``results`` rows they come from.
    """
    frame = keyed(results)
    frame = frame[frame["macs"].notna()]
    latency = frame[metric_column(metric)]
    out = frame[[*ROW_KEY, "threads", "macs", "params"]].copy()
    out["latency_ms"] = latency
    out["ms_per_gmac"] = latency / (frame["macs"] / 1e9)
    out["gflops"] = 2 * frame["macs"] / (latency / 1e3) / 1e9
    return out
