"""What a configuration costs in memory, measured in the process that ran it. Standard library only.

The isolated worker measures one configuration: it imports the runtime, then :meth:`MemoryProbe.start` resets the
process's resident high-water mark and records the resident set, the model is loaded and run, and
:meth:`MemoryProbe.finish` reads the high-water mark again. Reported per row (MiB = 2**20 bytes):

- ``peak_rss_mib``: the worker's own resident high-water mark (what the out-of-memory killer sees);
- ``peak_delta_mib``: that mark minus the resident set right after the runtime was imported and before the model
  was loaded: what this configuration cost;
- ``heap_delta_mib``: the anonymous part of that cost (weights, pre-packed weights, arenas, activations), apart
  from file-backed code pages: the largest anonymous resident set sampled after loading, after the first run and
  after the timed rounds, minus the one at the start;
- ``memory_method``: how the figures were read.

The pitfall this avoids: ``getrusage(RUSAGE_SELF).ru_maxrss`` of a child started from a big parent is floored at
the parent's size, because the kernel carries the high-water mark across ``exec``; ``mbbench run`` holds torch when
it starts its workers, so that figure would report torch's memory for every model. On Linux the worker writes 5 to
``/proc/self/clear_refs`` (which resets ``VmHWM`` to the current resident set) and reads ``VmHWM`` from
``/proc/self/status`` (``proc-vmhwm``). Where that cannot be reset (other systems), ``ru_maxrss`` is reported as it
is (``rusage``, and ``peak_delta_mib`` then only bounds the cost from above); where nothing can be read, the
columns are empty (``none``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

MIB = 1 << 20


def _status() -> dict[str, int]:
    """``/proc/self/status``'s memory lines in bytes (empty where there is none)."""
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as handle:
            text = handle.read()
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        parts = value.split()
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile") and len(parts) == 2 and parts[1] == "kB":
            out[key] = int(parts[0]) * 1024
    return out


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _ru_maxrss_bytes() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    value = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return value if sys.platform == "darwin" else value * 1024  # macOS reports bytes, Linux KiB


@dataclass
class MemoryFigures:
    peak_rss_mib: float | None
    peak_delta_mib: float | None
    heap_delta_mib: float | None
    memory_method: str

    def as_columns(self) -> dict[str, object]:
        return dict(self.__dict__)


class MemoryProbe:
    """Started once the runtime is imported and before the model loads; :meth:`sample` after each stage."""

    def __init__(self) -> None:
        status = _status()
        self.method = "proc-vmhwm" if status and _reset_high_water_mark() else (
            "rusage" if _ru_maxrss_bytes() is not None else "none")
        status = _status() if self.method == "proc-vmhwm" else status
        self.start_rss = status.get("VmRSS")
        self.start_anon = status.get("RssAnon")
        self.max_anon = self.start_anon

    def sample(self) -> None:
        anon = _status().get("RssAnon")
        if anon is not None and (self.max_anon is None or anon > self.max_anon):
            self.max_anon = anon

    def finish(self) -> MemoryFigures:
        self.sample()
        if self.method == "proc-vmhwm":
            peak = _status().get("VmHWM")
        elif self.method == "rusage":
            peak = _ru_maxrss_bytes()
        else:
            return MemoryFigures(None, None, None, "none")
        delta = peak - self.start_rss if peak is not None and self.start_rss is not None else None
        heap = (self.max_anon - self.start_anon if self.max_anon is not None and self.start_anon is not None
                else None)  # fmt: skip
        return MemoryFigures(_mib(peak), _mib(delta), _mib(heap), self.method)


def _mib(value: int | None) -> float | None:
    return None if value is None else round(value / MIB, 2)


def file_bytes(path: str | os.PathLike) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None
