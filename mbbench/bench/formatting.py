"""How mbbench shows a number to a person: one latency format, one set of flag marks, one thread-count label.

Every front end (bench's summary, the portable runner, report, the studies, the CLI) imports these, so the same
row reads the same everywhere (pyperf's ``_formatter``). Standard library only: the portable core uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

#: The flags a results row can carry, in the order their marks are shown, with the mark and what it means.
FLAGS: tuple[tuple[str, str, str], ...] = (
    ("oversubscribed", "†", "more threads than the cores this process could use: the row measures contention"),
    ("unstable", "!", "the rounds vary too much (cv above the limit, or a fast and a slow cluster) to trust"),
    ("contended", "‡", "other processes used a meaningful share of the cores during the measurement"),
)
OVERSUBSCRIBED_MARK, UNSTABLE_MARK, CONTENDED_MARK = (mark for _, mark, _ in FLAGS)


def decimals(value: float) -> int:
    """Decimals for a latency in ms: 1 from 100 ms, 2 from 1 ms, three significant digits below 1 ms."""
    magnitude = abs(value)
    if magnitude >= 100:
        return 1
    if magnitude >= 1 or magnitude == 0:
        return 2
    return max(3, 2 - math.floor(math.log10(magnitude)))


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_ms(value: object, like: object = None) -> str:
    """A latency in ms (``-`` when missing or not finite); with ``like``, as many decimals as ``like`` gets."""
    number = _finite(value)
    if number is None:
        return "-"
    reference = _finite(like)
    return f"{number:.{decimals(number if reference is None else reference)}f}"


def format_latency(mean: object, std: object) -> str:
    """``mean ± std`` in ms, the std with the mean's decimals (``?`` when it is unknown)."""
    std_text = format_ms(std, like=mean)
    return f"{format_ms(mean)} ± {'?' if std_text == '-' else std_text}"


def threads_label(count: object) -> str:
    """``1 thread``, ``2 threads``: the one spelling of a thread count in headers and lines."""
    text = str(count)
    try:
        text = str(int(count))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        pass
    return f"{text} thread" if text == "1" else f"{text} threads"


def is_true(value: object) -> bool:
    """A flag as the CSV spells it (``True``), as pandas reads it (a bool), or as numpy holds it."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    try:
        return bool(value) and value == value  # NaN is not a flag
    except (TypeError, ValueError):
        return False


def flag_marks(row: Mapping[str, object]) -> str:
    """The marks of the flags set on ``row``, each preceded by a space (empty when none is set)."""
    return "".join(f" {mark}" for name, mark, _ in FLAGS if is_true(row.get(name)))


def flag_legend(present: set[str] | frozenset[str]) -> list[str]:
    """One line per flag in ``present`` (names from :data:`FLAGS`): its mark, its name and what it means."""
    return [f"{mark} {name}: {meaning}." for name, mark, meaning in FLAGS if name in present]
