"""What a finished sweep tells a person: the models x threads grid and the flags. Standard library only.

Both front ends use it: the rich CLI renders the grid as a table, the portable runner as plain text. How a
latency, a thread count and a flag look comes from :mod:`mbbench.bench.formatting`; why a row is unstable comes
from :meth:`mbbench.bench.stats.LatencyStats.reasons`, so the words are the same everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from mbbench.bench.formatting import (
    CONTENDED_MARK,
    OVERSUBSCRIBED_MARK,
    UNSTABLE_MARK,
    flag_marks,
    format_latency,
    is_true,
    threads_label,
    variant_labels,
)
from mbbench.bench.load import CONTENDED_CORES
from mbbench.bench.stats import LatencyStats

__all__ = [
    "CONTENDED_MARK", "OVERSUBSCRIBED_MARK", "UNSTABLE_MARK", "UNSTABLE_HINT", "contended_notes", "footer_lines",
    "format_latency", "oversubscribed_threads", "oversubscription_warning", "render_text", "summary_grid",
    "unstable_notes",
]

UNSTABLE_HINT = (
    "for steadier numbers: more --rounds, a --min-time of several seconds, --no-spin, or a quieter machine"
)
CONTENDED_HINT = (
    f"other processes used at least {CONTENDED_CORES:g} of a core meanwhile; those numbers include their "
    "interference: rerun on a quiet machine"
)

Row = Mapping[str, object]


def summary_grid(rows: Sequence[Row]) -> tuple[list[int], list[tuple[str, list[str]]]]:
    """Thread counts (columns) and one ``(model, cells)`` line per model, in first-seen order.

    A cell is ``mean ± std`` in ms followed by the row's flag marks (``†`` oversubscribed, ``!`` unstable,
    ``‡`` contended); an empty cell means that configuration did not run (failed, skipped or interrupted).
    """
    threads = sorted({int(r["threads"]) for r in rows})
    labels = row_labels(rows)
    models = list(dict.fromkeys(labels))
    cells = {(label, int(r["threads"])): _cell(r) for label, r in zip(labels, rows)}
    return threads, [(m, [cells.get((m, t), "") for t in threads]) for m in models]


def row_labels(rows: Sequence[Row]) -> list[str]:
    """Each row's model as :func:`~mbbench.bench.formatting.variant_labels` says what it measured (precision,
    input size, opset where the rows differ), and the device when it was measured on a ``--target``
    (``mobileone-s0 (int8) on ssh://phone``)."""
    labels, _, _ = variant_labels(rows)
    return [f"{label} on {r['target']}" if r.get("target") else label for label, r in zip(labels, rows)]


def _cell(row: Row) -> str:
    if row.get("unsupported"):
        return "not supported"
    return format_latency(row.get("mean_ms"), row.get("std_ms")) + flag_marks(row)


def unstable_notes(rows: Sequence[Row]) -> list[str]:
    """One line per unstable row saying why (empty when every row is stable)."""
    out = []
    for label, row in zip(row_labels(rows), rows):
        if not is_true(row.get("unstable")):
            continue
        reasons = LatencyStats.from_row(row).reasons()
        out.append(f"{label} at {threads_label(row['threads'])}: {', '.join(reasons) or 'unstable'}")
    return out


def contended_notes(rows: Sequence[Row]) -> list[str]:
    """One line per contended row: how much CPU the other processes took."""
    out = []
    for label, row in zip(row_labels(rows), rows):
        if not is_true(row.get("contended")):
            continue
        share = _float(row.get("others_cpu_pct"))
        load = _float(row.get("loadavg_1m"))
        facts = [f"others used {share:.0f}% of the cores it ran on"] if math.isfinite(share) else []
        if math.isfinite(load):
            facts.append(f"load average {load:.2f}")
        out.append(f"{label} at {threads_label(row['threads'])}: {', '.join(facts) or 'contended'}")
    return out


def oversubscribed_threads(rows: Sequence[Row]) -> list[int]:
    return sorted({int(r["threads"]) for r in rows if is_true(r.get("oversubscribed"))})


def oversubscription_warning(threads: int, cores: int) -> str:
    return (
        f"{threads} threads is more than the {cores} cores available: the threads will time-share cores, so "
        f"those rows measure contention rather than the model (flagged oversubscribed)"
    )


def render_text(rows: Sequence[Row]) -> str:
    """The grid and its notes as plain text (the portable runner's summary)."""
    threads, lines = summary_grid(rows)
    header = ["model"] + [f"{threads_label(t)} (ms)" for t in threads]
    table = [header] + [[model, *cells] for model, cells in lines]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))) for r in table]
    out += footer_lines(rows)
    return "\n".join(out)


def footer_lines(rows: Sequence[Row]) -> list[str]:
    """The notes under the grid: what every row has in common, then one block per flag that some row carries."""
    _, _, shared = variant_labels(rows)
    out = [f"Every row: {', '.join(shared)}."] if shared else []
    over = oversubscribed_threads(rows)
    if over:
        out.append(
            f"{OVERSUBSCRIBED_MARK} oversubscribed: more threads ({', '.join(map(str, over))}) than this machine "
            "has cores; those numbers measure contention, not the model."
        )
    notes = unstable_notes(rows)
    if notes:
        out.append(f"{UNSTABLE_MARK} unstable ({len(notes)} of {len(rows)} rows); {UNSTABLE_HINT}:")
        out += _summarised(notes)
    refused = dict.fromkeys(f"  {label}: {row['unsupported']}" for label, row in zip(row_labels(rows), rows)
                            if row.get("unsupported"))
    if refused:
        out.append("not supported (recorded in the CSV's unsupported column):")
        out += list(refused)
    busy = contended_notes(rows)
    if busy:
        out.append(f"{CONTENDED_MARK} contended ({len(busy)} of {len(rows)} rows): {CONTENDED_HINT}:")
        out += _summarised(busy)
    return out


#: How many flagged rows a summary names one by one; the rest are counted (a 100-row sweep on a busy machine must
#: not bury the table under a hundred lines).
SHOWN_FLAGGED = 3


def _summarised(notes: list[str]) -> list[str]:
    shown = [f"  {n}" for n in notes[:SHOWN_FLAGGED]]
    if len(notes) > SHOWN_FLAGGED:
        shown.append(f"  and {len(notes) - SHOWN_FLAGGED} more (the CSV's unstable, contended and others_cpu_pct "
                     "columns say which)")
    return shown


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
