"""Facts about the machine a number was measured on. Standard library only (runs on Termux and ARM boards).

Every probe degrades to a weaker source instead of failing: a missing /sys file on an odd kernel must not
cost a benchmark run.
"""

from __future__ import annotations

import math
import os
import platform
import re
import socket
import subprocess
import sys
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def machine_facts() -> dict[str, object]:
    """The machine columns of a results row."""
    logical = os.cpu_count() or 1
    return {
        "cpu_model": cpu_model(),
        "physical_cores": physical_cores(),
        "logical_cores": logical,
        "available_cpus": available_cpus(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "host": socket.gethostname(),
    }


def usable_cores() -> int:
    """Cores a thread pool can really occupy: physical cores, capped by affinity and cgroup quota."""
    return max(1, min(physical_cores(), available_cpus()))


def cpu_model() -> str:
    if sys.platform == "darwin":
        text = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
        if text:
            return text
    info = _read("/proc/cpuinfo")
    return cpu_model_from(info) or _board() or platform.processor() or platform.machine() or "unknown"


def cpu_model_from(info: str) -> str | None:
    """The CPU's name from a ``/proc/cpuinfo`` text. x86 says ``model name``; arm64 gives only each core's
    implementer and part numbers, named by :mod:`mbbench.bench.arm_cores` (each cluster of a big.LITTLE phone),
    after the SoC's ``Hardware`` line when there is one: ``Qualcomm SM8250 (4x Cortex-A55 + 4x Kryo 4xx Gold)``."""
    from mbbench.bench.arm_cores import describe_cores

    model = _field(info, "model name")
    if model:
        return model
    arm, hardware = describe_cores(info), _field(info, "Hardware")
    if arm:
        return f"{hardware} ({arm})" if hardware else arm
    for key in ("Hardware", "Processor", "cpu model"):
        value = _field(info, key)
        if value:
            return value
    return None


def _field(info: str, key: str) -> str | None:
    match = re.search(rf"^{key}\s*:\s*(.+)$", info, re.MULTILINE)
    return match[1].strip() if match and match[1].strip() else None


def _board() -> str:
    return _read("/sys/firmware/devicetree/base/model").strip("\x00\n ")


def physical_cores() -> int:
    """Physical cores (SMT siblings counted once)."""
    siblings = set()
    for topo in Path("/sys/devices/system/cpu").glob("cpu[0-9]*/topology"):
        text = _read(topo / "core_cpus_list") or _read(topo / "thread_siblings_list")
        if text:
            siblings.add(text.strip())
    if siblings:
        return len(siblings)
    pairs = re.findall(r"^physical id\s*:\s*(\d+)\s*$.*?^core id\s*:\s*(\d+)\s*$", _read("/proc/cpuinfo"),
                       re.MULTILINE | re.DOTALL)
    if pairs:
        return len(set(pairs))
    if sys.platform == "darwin":
        text = _run(["sysctl", "-n", "hw.physicalcpu"])
        if text.isdigit():
            return int(text)
    return os.cpu_count() or 1


def available_cpus() -> int:
    """CPUs this process may run on: the affinity mask, further limited by a cgroup v2/v1 CPU quota."""
    try:
        count = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        count = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        count = min(count, max(1, math.ceil(quota)))
    return count


def _cgroup_quota() -> float | None:
    text = _read("/sys/fs/cgroup/cpu.max").split()
    if len(text) == 2 and text[0] != "max":
        try:
            return int(text[0]) / int(text[1])
        except ValueError:
            return None
    quota, period = _read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), _read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")
    try:
        if int(quota) > 0 and int(period) > 0:
            return int(quota) / int(period)
    except ValueError:
        pass
    return None


def _read(path) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
