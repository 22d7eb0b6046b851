"""Was the machine busy while a configuration ran? Standard library only (psutil is used if importable).

The sweep takes a :class:`LoadProbe` before a configuration and reads it after. Two clocks are compared over
the same wall-clock interval:

- the busy CPU time of the cores this process may run on (its affinity mask): Linux ``/proc/stat`` per-core
  user + nice + system + irq + softirq + steal jiffies (``steal`` is a hypervisor giving the core to another
  guest, which slows the run just the same); elsewhere ``psutil.cpu_times(percpu=True)``;
- this process tree's own CPU time: ``os.times()`` of the process plus its waited-for children (the isolated
  worker is waited for before the probe is read, so its time is included).

The difference is what *other* processes used. It is reported as ``others_cpu_pct``: a percent of the cores the
configuration ran on (``min(threads, cores it may use)``), so 100 means "as much CPU as the whole run had". A
row is ``contended`` when others averaged at least :data:`CONTENDED_CORES` of one core: below that the noise of
the jiffy clock (10 ms) and of system daemons dominates; above it another process was really running. Where
neither ``/proc/stat`` nor psutil exists, the columns stay empty and nothing is flagged.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

#: Others' average CPU use, in cores, from which a row is flagged ``contended`` (a quarter of one core).
CONTENDED_CORES = 0.25

_BUSY_FIELDS = (0, 1, 2, 5, 6, 7)  # user nice system (idle iowait) irq softirq steal


def _allowed_cpus() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def _proc_stat_busy(cpus: set[int] | None) -> float | None:
    """Busy seconds summed over ``cpus`` (all when None) from /proc/stat, or None where there is none."""
    try:
        with open("/proc/stat", "rb") as handle:
            text = handle.read(1 << 20).decode("ascii", "replace")
    except OSError:
        return None
    try:
        hz = os.sysconf("SC_CLK_TCK")
    except (AttributeError, ValueError, OSError):
        hz = 100
    busy, seen = 0, False
    for line in text.splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *values = line.split()
        try:
            cpu = int(name[3:])
            numbers = [int(v) for v in values]
        except ValueError:
            continue
        if cpus is not None and cpu not in cpus:
            continue
        busy += sum(numbers[i] for i in _BUSY_FIELDS if i < len(numbers))
        seen = True
    return busy / hz if seen else None


def _psutil_busy(cpus: set[int] | None) -> float | None:
    try:
        import psutil  # optional: the portable core never requires it
    except ImportError:
        return None
    try:
        per_cpu = psutil.cpu_times(percpu=True)
    except Exception:  # noqa: BLE001 - an optional probe must never cost a run
        return None
    total = 0.0
    for index, times in enumerate(per_cpu):
        if cpus is not None and index not in cpus:
            continue
        total += sum(getattr(times, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq", "steal"))
    return total


def busy_seconds(cpus: set[int] | None = None) -> float | None:
    """Busy CPU seconds of ``cpus`` since boot (None when this platform cannot tell)."""
    value = _proc_stat_busy(cpus)
    return value if value is not None else _psutil_busy(cpus)


def own_cpu_seconds() -> float:
    """CPU seconds of this process and its waited-for children."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


@dataclass(frozen=True)
class Load:
    """What other processes did during one configuration."""

    others_cpu_pct: float | None
    loadavg_1m: float | None
    contended: bool | None

    def as_columns(self) -> dict[str, object]:
        return {"others_cpu_pct": self.others_cpu_pct, "loadavg_1m": self.loadavg_1m, "contended": self.contended}


class LoadProbe:
    """Started before a configuration, :meth:`finish`-ed after it (and after its worker was waited for)."""

    def __init__(self) -> None:
        self.cpus = _allowed_cpus()
        self.wall = time.monotonic()
        self.busy = busy_seconds(self.cpus)
        self.own = own_cpu_seconds()

    def finish(self, threads: int) -> Load:
        busy = busy_seconds(self.cpus)
        own = own_cpu_seconds()
        wall = time.monotonic() - self.wall
        loadavg = load_average()
        if busy is None or self.busy is None or wall <= 0:
            return Load(None, loadavg, None)
        others_cores = max(0.0, (busy - self.busy) - (own - self.own)) / wall
        cores = len(self.cpus) if self.cpus else (os.cpu_count() or 1)
        used = max(1, min(int(threads), cores))
        return Load(round(100.0 * others_cores / used, 1), loadavg, others_cores >= CONTENDED_CORES)
