"""Run-to-run questions: pooling repeated runs, and whether a change between two runs is real.

Pooling without raw samples uses the exact decomposition of the variance of a concatenation of groups.
For groups i with n_i rounds, mean m_i and sample standard deviation s_i (ddof=1)::

    N = sum(n_i)
    pooled mean     M   = sum(n_i * m_i) / N
    pooled variance S^2 = (sum((n_i - 1) * s_i^2) + sum(n_i * (m_i - M)^2)) / (N - 1)

which equals the mean and ``ddof=1`` variance of all the rounds put together. Percentiles cannot be pooled
from summaries, so a pooled row has them only when every run's raw samples are available.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mbbench.bench.stats import latency_stats, t_critical
from mbbench.errors import UserInputError
from mbbench.report.load import STAT_COLUMNS, has_samples, metric_column, sort_results

DEFAULT_ALPHA = 0.05
POOLED_PREFIX = "pooled: "  # starts the run label of a row that pools several runs


def pooled_stats(rounds, means, stds) -> tuple[int, float, float]:
    """Pooled (rounds, mean, sample std) of groups given by their rounds, means and ddof=1 stds.

    See the module docstring for the formula; a group of one round contributes no within-group variance
    (its std may be NaN).
    """
    n = np.asarray(rounds, dtype=float)
    m = np.asarray(means, dtype=float)
    s = np.nan_to_num(np.asarray(stds, dtype=float), nan=0.0)
    total = n.sum()
    mean = float((n * m).sum() / total)
    if total < 2:
        return int(total), mean, float("nan")
    variance = (((n - 1) * s**2).sum() + (n * (m - mean) ** 2).sum()) / (total - 1)
    return int(total), mean, float(np.sqrt(variance))


def combine(results: pd.DataFrame) -> pd.DataFrame:
    """Pool rows repeated across runs (same machine, model and threads, and same model file by ``sha256``
    when the CSVs record it) into one row each.

    With every constituent's raw samples (``load(..., samples=True)``) all statistics, the instability flags
    included, are recomputed from the pooled samples by the bench's own :func:`mbbench.bench.stats.latency_stats`;
    otherwise mean and std come from :func:`pooled_stats` (cv and the 95% confidence interval from those),
    min/max from the extremes, the percentiles are NaN and a pooled row is unstable when any run was. Per-run
    numbers (``session_ms``, ``first_run_ms``) become NaN. The pooled row's ``run`` lists the runs it pools.
    """
    # Same name is not same model: a folded and an unfolded export share a name but not a checksum.
    key = ["machine", "model", "threads"] + (["sha256"] if "sha256" in results.columns else [])
    groups = results.groupby(key, sort=False, dropna=False)
    if (groups.size() == 1).all():
        return results
    rows = []
    for _, group in groups:
        rows.append(group.iloc[0].copy() if len(group) == 1 else _pool(group))
    pooled = pd.DataFrame(rows).reset_index(drop=True).infer_objects()
    return sort_results(pooled.astype({"threads": int, "rounds": int, "run_index": int}))


def _pool(group: pd.DataFrame) -> pd.Series:
    # Metadata from the first run that has it: one CSV may lack the manifest columns another has.
    row = group.drop(columns="samples").bfill().iloc[0].copy()
    samples = list(group["samples"])
    if all(has_samples(s) for s in samples):
        row["samples"] = np.concatenate(samples)
        recomputed = latency_stats(row["samples"]).as_columns()
    else:
        rounds, mean, std = pooled_stats(group["rounds"], group["mean_ms"], group["std_ms"])
        # The bench's definitions (mbbench.bench.stats) applied to the pooled mean and std.
        half = t_critical(0.95, rounds - 1) * std / np.sqrt(rounds) if rounds > 1 else float("nan")
        recomputed = {
            "rounds": rounds,
            "mean_ms": mean,
            "std_ms": std,
            "min_ms": group["min_ms"].min(),
            "max_ms": group["max_ms"].max(),
            "cv": std / mean if mean > 0 else float("nan"),
            "ci95_low_ms": mean - half,
            "ci95_high_ms": mean + half,
            "unstable": bool(group["unstable"].any()),
        }
        row["samples"] = None
    # Whatever else is per run (percentiles without samples, session_ms, first_run_ms) says nothing about the
    # pool, so it is blanked rather than copied from the first run.
    for column in row.index:
        if column not in recomputed and (column.endswith("_ms") or column.startswith("cv")):
            row[column] = float("nan")
    for column, value in recomputed.items():
        row[column] = value
    row["run"] = POOLED_PREFIX + " + ".join(dict.fromkeys(group["run"]))
    row["source"] = "; ".join(dict.fromkeys(group["source"]))
    row["run_index"] = int(group["run_index"].min())
    row["oversubscribed"] = bool(group["oversubscribed"].any())
    return row


def compare(
    new: pd.DataFrame, base: pd.DataFrame, metric: str = "mean", alpha: float = DEFAULT_ALPHA
) -> pd.DataFrame:
    """For each (model, threads) in both ``new`` and ``base``: the ratio new/base of ``metric`` and whether
    the difference is significant, in the spirit of pyperf's ``compare_to``.

    Significance is a two-sided Mann-Whitney U test on the raw samples (load both sides with
    ``samples=True``); without samples on either side ``significant`` is ``None`` (can't tell). Rows repeated
    across runs in ``base`` are pooled with :func:`combine`; rows of ``new`` are compared run by run. Machines
    are matched too, except when each side holds a single machine (comparing two machines is allowed).

    Columns: machine, base_machine, model, threads, run, base_<metric>, new_<metric> (ms), ratio (new/base),
    base_rounds, new_rounds, p_value, significant, verdict ("faster", "slower", "not significant" or
    "can't tell").
    """
    from scipy.stats import mannwhitneyu  # scipy is slow to import; only comparisons need it

    column = metric_column(metric)
    base = combine(base)
    keys = ["model", "threads"]
    if new["machine"].nunique() > 1 or base["machine"].nunique() > 1:
        keys = ["machine", *keys]
    right = base.rename(columns={"machine": "base_machine"}) if "machine" not in keys else base.assign(
        base_machine=base["machine"]
    )
    merged = new.merge(right[[*keys, "base_machine", column, "rounds", "samples"]], on=keys, suffixes=("", "_base"))
    if merged.empty:
        raise UserInputError(
            "No (model, threads) pair appears both in the CSVs and in the base CSV; compare runs of the same "
            "models and thread counts."
        )
    records = []
    for _, row in merged.iterrows():
        new_value, base_value = row[column], row[f"{column}_base"]
        ratio = new_value / base_value if base_value > 0 else float("nan")
        new_samples, base_samples = row["samples"], row["samples_base"]
        p_value, significant = float("nan"), None
        if has_samples(new_samples) and has_samples(base_samples):
            p_value = float(mannwhitneyu(new_samples, base_samples, alternative="two-sided").pvalue)
            significant = bool(p_value < alpha)  # NaN (degenerate input) compares False: no shown difference
        if significant is None:
            verdict = "can't tell"
        elif not significant:
            verdict = "not significant"
        else:
            verdict = "slower" if ratio > 1 else "faster"
        records.append(
            {
                "machine": row["machine"],
                "base_machine": row["base_machine"],
                "model": row["model"],
                "threads": int(row["threads"]),
                "run": row["run"],
                f"base_{metric}_ms": base_value,
                f"new_{metric}_ms": new_value,
                "ratio": ratio,
                "base_rounds": int(row["rounds_base"]),
                "new_rounds": int(row["rounds"]),
                "p_value": p_value,
                "significant": significant,
                "verdict": verdict,
            }
        )
    return pd.DataFrame(records)

