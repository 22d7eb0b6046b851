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
from mbbench.report.load import DEFAULT_METRIC, has_samples, metric_column, sort_results

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
    for column in ("peak_delta_mib", "heap_delta_mib", "peak_rss_mib"):
        if column in group.columns:
            # memory is not averaged: the pooled cell keeps the range the runs span (AI Hub shows one too)
            values = pd.to_numeric(group[column], errors="coerce")
            row[column], row[f"{column}_low"] = values.max(), values.min()
    row["run"] = POOLED_PREFIX + " + ".join(dict.fromkeys(group["run"]))
    row["source"] = "; ".join(dict.fromkeys(group["source"]))
    row["run_index"] = int(group["run_index"].min())
    row["oversubscribed"] = bool(group["oversubscribed"].any())
    return row


def compare(
    new: pd.DataFrame, base: pd.DataFrame, metric: str = DEFAULT_METRIC, alpha: float = DEFAULT_ALPHA
) -> pd.DataFrame:
    """For each measurement in both ``new`` and ``base``: the ratio new/base of ``metric`` and whether the
    difference is significant, in the spirit of pyperf's ``compare_to``.

    Rows are paired by what was measured, never by the ``model`` label alone (bench labels a file
    ``mobileone-s0`` alone and ``mobileone-s0-224-opset17`` next to other exports of it): by the model file's
    ``sha256`` where both sides know it, else by model name and thread count, with ``opset`` and ``precision``
    equal where both sides record them. A pair whose ``input_shape`` differs is kept, and its ``note`` says so.
    A measurement present on one side only is listed with verdict "only in new" or "only in base".

    Significance is a two-sided Mann-Whitney U test on the raw samples (load both sides with
    ``samples=True``); without samples on either side ``significant`` is ``None`` (can't tell). Rows repeated
    across runs in ``base`` are pooled with :func:`combine`; rows of ``new`` are compared run by run. Machines
    are matched too, except when each side holds a single machine (comparing two machines is allowed).

    Memory is compared the same way: the peak over the imported runtime on each side and memory_ratio (new/base;
    NaN where a side does not record it).

    Columns: machine, base_machine, model, threads, run, base_<metric>, new_<metric> (ms), base_rounds,
    new_rounds, base_peak_delta_mib, new_peak_delta_mib, memory_ratio, ratio (new/base), p_value, significant,
    verdict ("faster", "slower", "not significant",
    "can't tell", "only in new", "only in base"), note.
    """
    from scipy.stats import mannwhitneyu  # scipy is slow to import; only comparisons need it

    check_alpha(alpha)
    column = metric_column(metric)
    new = new.reset_index(drop=True)
    base = combine(base).reset_index(drop=True)
    by_machine = new["machine"].nunique() > 1 or base["machine"].nunique() > 1
    new_facts, base_facts = _facts(new, by_machine).assign(run=new["run"]), _facts(base, by_machine)
    pairs = _pair_rows(new_facts, base_facts)
    if not pairs:
        same_names = _same_names_other_files(new_facts, base_facts)
        if same_names:
            raise UserInputError(
                "The CSVs and the base measured other files under the same names, so nothing can be compared: "
                f"{same_names}. Compare runs of the same exports (same sha256 and opset)."
            )
        raise UserInputError(
            "No (model, threads) pair appears both in the CSVs and in the base CSV; compare runs of the same "
            "models and thread counts."
        )
    records = []
    for i, j in pairs:
        row, other = new.loc[i], base.loc[j]
        new_value, base_value = row[column], other[column]
        ratio = new_value / base_value if base_value > 0 else float("nan")
        p_value, significant = float("nan"), None
        if has_samples(row["samples"]) and has_samples(other["samples"]):
            p_value = float(mannwhitneyu(row["samples"], other["samples"], alternative="two-sided").pvalue)
            significant = bool(p_value < alpha)  # NaN (degenerate input) compares False: no shown difference
        if significant is None:
            verdict = "can't tell"
        elif not significant:
            verdict = "not significant"
        else:
            verdict = "slower" if ratio > 1 else "faster"
        records.append(
            _record(row, other, metric, column) | {
                "ratio": ratio, "p_value": p_value, "significant": significant, "verdict": verdict,
                "note": _pair_note(row, other),
            }
        )  # fmt: skip
    paired_new, paired_base = {i for i, _ in pairs}, {j for _, j in pairs}
    for i in new.index.difference(sorted(paired_new)):
        records.append(_record(new.loc[i], None, metric, column) | _one_sided("only in new"))
    for j in base.index.difference(sorted(paired_base)):
        records.append(_record(None, base.loc[j], metric, column) | _one_sided("only in base"))
    return pd.DataFrame(records)


def check_alpha(alpha: float) -> float:
    """Raise a one-sentence error unless ``alpha`` is a significance level strictly between 0 and 1."""
    if not (isinstance(alpha, (int, float)) and 0 < alpha < 1):  # NaN fails both comparisons
        raise UserInputError(f"alpha {alpha} is not a significance level; give a number between 0 and 1, e.g. 0.05.")
    return float(alpha)


def _text(frame: pd.DataFrame, column: str) -> pd.Series:
    """A metadata column as comparable text ("" when unknown); 17.0 and "17" read the same."""
    if column not in frame.columns:
        return pd.Series("", index=frame.index)

    def plain(value) -> str:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value).strip()

    return frame[column].map(plain)


def _facts(frame: pd.DataFrame, by_machine: bool) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "machine": frame["machine"] if by_machine else "",
            "threads": frame["threads"].astype(int),
            "model": frame["model"],
            **{c: _text(frame, c) for c in ("sha256", "opset", "precision", "input_shape")},
        },
        index=frame.index,
    )


def _pair_rows(new: pd.DataFrame, base: pd.DataFrame) -> list[tuple[int, int]]:
    """(new index, base index) pairs: first the same file (sha256), then the same name among the rest.

    Each base row pairs with at most one row of each run of ``new`` (``new`` has a ``run`` column).
    """
    pairs: list[tuple[int, int]] = []
    left, right = new.reset_index(names="i"), base.reset_index(names="j")
    hashed = left[left["sha256"] != ""].merge(right[right["sha256"] != ""], on=["machine", "threads", "sha256"])
    hashed = hashed.drop_duplicates("i").drop_duplicates(["run", "j"])
    pairs += list(zip(hashed["i"], hashed["j"]))
    # Rows whose file is known on both sides and differs are different models, whatever their labels say.
    left, right = left[~left["i"].isin(hashed["i"])], right[~right["j"].isin(hashed["j"])]
    named = left.merge(right, on=["machine", "threads", "model"], suffixes=("", "_base"))
    agree = pd.Series(True, index=named.index)
    for fact in ("sha256", "opset", "precision"):
        a, b = named[fact], named[f"{fact}_base"]
        agree &= (a == "") | (b == "") | (a == b)
    named = named[agree].drop_duplicates("i").drop_duplicates(["run", "j"])
    pairs += list(zip(named["i"], named["j"]))
    return sorted(pairs)


def _same_names_other_files(new: pd.DataFrame, base: pd.DataFrame, shown: int = 4) -> str:
    """The (model, threads) that both sides name but whose files differ, in words: what could be matched by name
    ("mobileone-s0 at 1 thread: sha256 1a2b3c4d vs 5e6f7a8b, opset 17 vs 12"); "" when there are none."""
    named = new.merge(base, on=["machine", "threads", "model"], suffixes=("", "_base")).drop_duplicates(
        ["model", "threads"])
    parts = []
    for _, row in named.iterrows():
        what = []
        for fact in ("sha256", "opset", "precision", "input_shape"):
            a, b = row[fact], row[f"{fact}_base"]
            if a and b and a != b:
                what.append(f"{fact} {a[:8]} vs {b[:8]}" if fact == "sha256" else f"{fact} {a} vs {b}")
        parts.append(f"{row['model']} at {row['threads']} thread{'s' if row['threads'] != 1 else ''}: "
                     + (", ".join(what) or "other files"))
    text = "; ".join(parts[:shown])
    return text + (f"; and {len(parts) - shown} more" if len(parts) > shown else "")


def _pair_note(row: pd.Series, other: pd.Series) -> str:
    notes = []
    shape, base_shape = _text(row.to_frame().T, "input_shape").iloc[0], _text(other.to_frame().T, "input_shape").iloc[0]
    if shape and base_shape and shape != base_shape:
        notes.append(f"input {shape} vs base {base_shape}: not the same input")
    if row["model"] != other["model"]:
        notes.append(f"base labels it {other['model']}")
    return "; ".join(notes)


def _record(row: pd.Series | None, other: pd.Series | None, metric: str, column: str) -> dict:
    either = row if row is not None else other
    return {
        "machine": either["machine"],
        "base_machine": other["machine"] if other is not None else None,
        "model": either["model"],
        "threads": int(either["threads"]),
        "run": row["run"] if row is not None else "",
        f"base_{metric}_ms": other[column] if other is not None else float("nan"),
        f"new_{metric}_ms": row[column] if row is not None else float("nan"),
        "base_rounds": int(other["rounds"]) if other is not None else None,
        "new_rounds": int(row["rounds"]) if row is not None else None,
        **_memory(row, other),
    }


def _memory(row: pd.Series | None, other: pd.Series | None) -> dict:
    """Memory, compared like latency: both sides' cost over the imported runtime and the ratio new/base (NaN
    where a side does not record it)."""
    def cost(side) -> float:
        value = side.get("peak_delta_mib") if side is not None else None
        return float(value) if value is not None and not pd.isna(value) else float("nan")

    base, new = cost(other), cost(row)
    return {"base_peak_delta_mib": base, "new_peak_delta_mib": new,
            "memory_ratio": new / base if base > 0 else float("nan")}


def _one_sided(verdict: str) -> dict:
    return {"ratio": float("nan"), "p_value": float("nan"), "significant": None, "verdict": verdict, "note": ""}
