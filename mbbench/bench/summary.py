"""What a finished sweep tells a person: the models x threads grid and the flags. Standard library only.

Both front ends use it: the rich CLI renders the grid as a table, the portable runner as plain text.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mbbench.bench.stats import CV_LIMIT

UNSTABLE_MARK = "!"
OVERSUBSCRIBED_MARK = "*"
UNSTABLE_HINT = (
    "for steadier numbers: more --rounds, a --min-time of several seconds, --no-spin, or a quieter machine"
)

Row = Mapping[str, object]


def format_latency(mean: float, std: float) -> str:
    """``mean ± std`` with as many decimals as the mean's size warrants."""
    decimals = 1 if mean >= 100 else 2 if mean >= 1 else 3
    std_text = f"{std:.{decimals}f}" if isinstance(std, float) and math.isfinite(std) else "?"
    return f"{mean:.{decimals}f} ± {std_text}"


def summary_grid(rows: Sequence[Row]) -> tuple[list[int], list[tuple[str, list[str]]]]:
    """Thread counts (columns) and one ``(model, cells)`` line per model, in first-seen order.

    A cell is ``mean ± std`` in ms, then ``!`` if the row is unstable and ``*`` if oversubscribed; an empty
    cell means that configuration did not run (failed, skipped or interrupted).
    """
    threads = sorted({int(r["threads"]) for r in rows})
    models = list(dict.fromkeys(str(r["model"]) for r in rows))
    cells = {(str(r["model"]), int(r["threads"])): _cell(r) for r in rows}
    return threads, [(m, [cells.get((m, t), "") for t in threads]) for m in models]


def _cell(row: Row) -> str:
    text = format_latency(float(row["mean_ms"]), _float(row.get("std_ms")))
    marks = (UNSTABLE_MARK if _true(row.get("unstable")) else "") + (
        OVERSUBSCRIBED_MARK if _true(row.get("oversubscribed")) else ""
    )
    return f"{text} {marks}" if marks else text


def unstable_notes(rows: Sequence[Row]) -> list[str]:
    """One line per unstable row saying why (empty when every row is stable)."""
    out = []
    for row in rows:
        if not _true(row.get("unstable")):
            continue
        reasons = []
        cv = _float(row.get("cv"))
        if math.isfinite(cv) and cv > CV_LIMIT:
            reasons.append(f"cv {cv:.1%} > {CV_LIMIT:.0%}")
        if _true(row.get("bimodal")):
            reasons.append("the rounds split into a fast and a slow cluster")
        unit = "thread" if str(row["threads"]) == "1" else "threads"
        out.append(f"{row['model']} at {row['threads']} {unit}: {', '.join(reasons) or 'unstable'}")
    return out


def oversubscribed_threads(rows: Sequence[Row]) -> list[int]:
    return sorted({int(r["threads"]) for r in rows if _true(r.get("oversubscribed"))})


def oversubscription_warning(threads: int, cores: int) -> str:
    return (
        f"{threads} threads is more than the {cores} cores available: the threads will time-share cores, so "
        f"those rows measure contention rather than the model (flagged oversubscribed)"
    )


def render_text(rows: Sequence[Row]) -> str:
    """The grid and its notes as plain text (the portable runner's summary)."""
    threads, lines = summary_grid(rows)
    header = ["model"] + [f"{t} thread{'s' if t > 1 else ''} (ms)" for t in threads]
    table = [header] + [[model, *cells] for model, cells in lines]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in table]
    out += footer_lines(rows)
    return "\n".join(out)


def footer_lines(rows: Sequence[Row]) -> list[str]:
    out = []
    notes = unstable_notes(rows)
    if notes:
        out.append(f"{UNSTABLE_MARK} unstable ({len(notes)} of {len(rows)} rows), {UNSTABLE_HINT}:")
        out += [f"  {n}" for n in notes]
    over = oversubscribed_threads(rows)
    if over:
        out.append(
            f"{OVERSUBSCRIBED_MARK} oversubscribed: more threads ({', '.join(map(str, over))}) than cores; "
            "not a meaningful latency"
        )
    return out


def _true(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
