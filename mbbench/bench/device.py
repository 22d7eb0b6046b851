"""What a phone or a board needs recorded next to a number: core clusters, governor, temperature, throttling.

Standard library only (it runs on the device, also as ``python -m mbbench.bench.device``, which prints the
device's facts as JSON). Linux exposes all of it under /sys; elsewhere each fact is simply absent (None), never
an error: a missing file on an odd kernel must not cost a run.

Throttling is read from what the kernel itself says: a thermal cap is a ``scaling_max_freq`` below the core's
``cpuinfo_max_freq``, and a thermal zone at or above one of its ``passive`` trip points is throttling by
definition (that is the temperature at which the kernel starts to cap the clocks).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

CPU_ROOT = Path("/sys/devices/system/cpu")
THERMAL_ROOT = Path("/sys/class/thermal")


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        return None


def _read_int(path: Path) -> int | None:
    text = _read(path)
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def cpu_ids() -> list[int]:
    ids = []
    for entry in CPU_ROOT.glob("cpu[0-9]*"):
        try:
            ids.append(int(entry.name[3:]))
        except ValueError:
            continue
    return sorted(ids) or list(range(os.cpu_count() or 1))


def max_frequencies_khz(cpus: Iterable[int] | None = None) -> dict[int, int]:
    """Each core's hardware maximum clock (``cpuinfo_max_freq``), where the kernel exposes it."""
    out = {}
    for cpu in cpus if cpus is not None else cpu_ids():
        value = _read_int(CPU_ROOT / f"cpu{cpu}" / "cpufreq" / "cpuinfo_max_freq")
        if value:
            out[cpu] = value
    return out


def capped_cpus(cpus: Iterable[int] | None = None) -> list[int]:
    """Cores whose current clock cap (``scaling_max_freq``) is below their hardware maximum."""
    capped = []
    for cpu, hardware_max in max_frequencies_khz(cpus).items():
        cap = _read_int(CPU_ROOT / f"cpu{cpu}" / "cpufreq" / "scaling_max_freq")
        if cap and cap < hardware_max:
            capped.append(cpu)
    return capped


def clusters(cpus: Iterable[int] | None = None) -> str | None:
    """The core clusters by maximum clock, e.g. ``4x1.80GHz+3x2.42GHz+1x2.84GHz`` (big.LITTLE), or None."""
    freqs = max_frequencies_khz(cpus)
    if not freqs:
        return None
    counts = Counter(freqs.values())
    return "+".join(f"{n}x{khz / 1e6:.2f}GHz" for khz, n in sorted(counts.items()))


def governors(cpus: Iterable[int] | None = None) -> str | None:
    """The cpufreq governor(s) of ``cpus`` (``schedutil``; several joined by ``/`` when cores differ)."""
    found = []
    for cpu in cpus if cpus is not None else cpu_ids():
        name = _read(CPU_ROOT / f"cpu{cpu}" / "cpufreq" / "scaling_governor")
        if name and name not in found:
            found.append(name)
    return "/".join(found) or None


def thermal_zones() -> dict[str, float]:
    """Every readable thermal zone's temperature in degrees C, keyed ``<type>`` (``<type>#<n>`` if repeated)."""
    zones: dict[str, float] = {}
    for zone in sorted(THERMAL_ROOT.glob("thermal_zone[0-9]*"), key=lambda p: int(p.name[12:] or 0)):
        millidegrees = _read_int(zone / "temp")
        if millidegrees is None:
            continue
        kind = _read(zone / "type") or zone.name
        key = kind if kind not in zones else f"{kind}#{zone.name[12:]}"
        zones[key] = millidegrees / 1000.0
    return zones


def hottest_c() -> float | None:
    """The hottest thermal zone now, in degrees C (None where the device exposes none)."""
    zones = thermal_zones()
    return max(zones.values()) if zones else None


def zones_at_passive_trip() -> list[str]:
    """Thermal zones at or above one of their ``passive`` trip points (the kernel is capping clocks there)."""
    hot = []
    for zone in THERMAL_ROOT.glob("thermal_zone[0-9]*"):
        temp = _read_int(zone / "temp")
        if temp is None:
            continue
        for trip_type in zone.glob("trip_point_*_type"):
            if _read(trip_type) != "passive":
                continue
            trip = _read_int(zone / trip_type.name.replace("_type", "_temp"))
            if trip and temp >= trip:
                hot.append(_read(zone / "type") or zone.name)
                break
    return hot


def throttle_state(cpus: Iterable[int] | None = None) -> dict[str, object]:
    """A snapshot for the ``throttled`` flag: the temperature, capped cores, and zones past a passive trip."""
    cpus = list(cpus) if cpus is not None else None
    return {"temp_c": hottest_c(), "capped": capped_cpus(cpus), "passive": zones_at_passive_trip()}


def thermal_columns(start: dict[str, object], end: dict[str, object]) -> dict[str, object]:
    """The row's ``temp_start_c``, ``temp_end_c`` and ``throttled`` from snapshots around a configuration.

    ``throttled`` is True when, at either end, a core the run used was clock-capped below its maximum or a
    thermal zone sat at a passive trip point; False when the kernel exposes the facts and neither happened;
    None (unknown) on a machine that exposes neither cpufreq nor thermal zones.
    """
    knowable = bool(max_frequencies_khz()) or bool(thermal_zones())
    hit = bool(start["capped"] or end["capped"] or start["passive"] or end["passive"])
    return {
        "temp_start_c": start["temp_c"],
        "temp_end_c": end["temp_c"],
        "throttled": hit if knowable else None,
    }


def wait_until_cool(limit_c: float, timeout_s: float = 300.0, poll_s: float = 2.0, note=None) -> float | None:
    """Block until the hottest zone is below ``limit_c`` (or ``timeout_s`` passed); return the temperature then.

    Returns None at once where the device exposes no thermal zone (``note`` says so once).
    """
    temp = hottest_c()
    if temp is None:
        if note:
            note("--cool-to: this device exposes no thermal zone; not waiting")
        return None
    deadline = time.monotonic() + timeout_s
    announced = False
    while temp is not None and temp >= limit_c and time.monotonic() < deadline:
        if note and not announced:
            note(f"cooling: {temp:.1f} C, waiting for < {limit_c:g} C (at most {timeout_s:g} s)")
            announced = True
        time.sleep(poll_s)
        temp = hottest_c()
    if temp is not None and temp >= limit_c and note:
        note(f"still {temp:.1f} C after {timeout_s:g} s; measuring anyway (recorded in temp_start_c)")
    return temp


def library_version(module: str) -> str | None:
    try:
        imported = __import__(module)
    except Exception:  # a broken install is "absent" to the probe, which says what to install
        return None
    return str(getattr(imported, "__version__", "unknown"))


def device_facts() -> dict[str, object]:
    """Everything the probe of a target reports (JSON-serialisable)."""
    from mbbench.bench.environment import cpu_model

    return {
        "cpu_model": cpu_model(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "machine": platform.machine(),
        "os": platform.platform(),
        "onnxruntime": library_version("onnxruntime"),
        "numpy": library_version("numpy"),
        "logical_cores": os.cpu_count(),
        "clusters": clusters(),
        "governor": governors(),
        "thermal_zones": thermal_zones(),
    }


if __name__ == "__main__":
    json.dump(device_facts(), sys.stdout)
    sys.stdout.write("\n")
