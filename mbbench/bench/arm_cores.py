"""Arm CPU cores by the ``CPU implementer`` / ``CPU part`` numbers an arm64 ``/proc/cpuinfo`` gives.

arm64 kernels print no ``model name``: each processor block has only the implementer and part numbers (the
MIDR register's fields). This table of facts (the numbers are those of the cores' technical reference manuals,
as Linux's ``cputype.h`` and util-linux's ``lscpu`` list them) turns them into the names an engineer knows, and
:func:`describe_cores` names each cluster of a big.LITTLE phone: ``4x Cortex-A55 + 3x Cortex-A78 + 1x Cortex-X1``.
Standard library only: part of the portable core that runs on the device.
"""

from __future__ import annotations

import re

IMPLEMENTERS = {0x41: "Arm", 0x42: "Broadcom", 0x48: "HiSilicon", 0x4E: "NVIDIA", 0x51: "Qualcomm",
                0x53: "Samsung", 0x61: "Apple", 0xC0: "Ampere"}

PARTS = {
    0x41: {
        0xD01: "Cortex-A32", 0xD02: "Cortex-A34", 0xD03: "Cortex-A53", 0xD04: "Cortex-A35", 0xD05: "Cortex-A55",
        0xD06: "Cortex-A65", 0xD07: "Cortex-A57", 0xD08: "Cortex-A72", 0xD09: "Cortex-A73", 0xD0A: "Cortex-A75",
        0xD0B: "Cortex-A76", 0xD0C: "Neoverse-N1", 0xD0D: "Cortex-A77", 0xD0E: "Cortex-A76AE",
        0xD40: "Neoverse-V1", 0xD41: "Cortex-A78", 0xD42: "Cortex-A78AE", 0xD43: "Cortex-A65AE",
        0xD44: "Cortex-X1", 0xD46: "Cortex-A510", 0xD47: "Cortex-A710", 0xD48: "Cortex-X2",
        0xD49: "Neoverse-N2", 0xD4A: "Neoverse-E1", 0xD4B: "Cortex-A78C", 0xD4C: "Cortex-X1C",
        0xD4D: "Cortex-A715", 0xD4E: "Cortex-X3", 0xD4F: "Neoverse-V2", 0xD80: "Cortex-A520",
        0xD81: "Cortex-A720", 0xD82: "Cortex-X4", 0xD84: "Neoverse-V3", 0xD85: "Cortex-X925",
        0xD87: "Cortex-A725", 0xD8E: "Neoverse-N3",
    },
    0x42: {0x00F: "Brahma-B15", 0x100: "Brahma-B53"},
    0x48: {0xD01: "TaiShan-v110"},
    0x4E: {0x003: "Denver 2", 0x004: "Carmel"},
    0x51: {
        0x800: "Kryo 2xx Gold", 0x801: "Kryo 2xx Silver", 0x802: "Kryo 3xx Gold", 0x803: "Kryo 3xx Silver",
        0x804: "Kryo 4xx Gold", 0x805: "Kryo 4xx Silver", 0xC00: "Falkor", 0xC01: "Saphira", 0x001: "Oryon",
    },
    0x53: {0x001: "Exynos-M1", 0x002: "Exynos-M3", 0x003: "Exynos-M4", 0x004: "Exynos-M5"},
    0xC0: {0xAC3: "Ampere-1", 0xAC4: "Ampere-1a"},
}

_FIELD = re.compile(r"^(processor|CPU implementer|CPU part)\s*:\s*(\S+)", re.MULTILINE)


def core_name(implementer: int, part: int) -> str:
    """``Cortex-A76``; an unknown part keeps its numbers (``Qualcomm part 0x123``) rather than a guess."""
    name = PARTS.get(implementer, {}).get(part)
    if name:
        return name
    vendor = IMPLEMENTERS.get(implementer, f"implementer {implementer:#04x}")
    return f"{vendor} part {part:#05x}"


def cores(cpuinfo: str) -> list[str]:
    """The core name of each processor block in ``cpuinfo``, in processor order (empty: not an arm64 cpuinfo)."""
    found: list[str] = []
    implementer = part = None
    for key, value in _FIELD.findall(cpuinfo) + [("processor", "")]:
        if key == "processor":
            if implementer is not None and part is not None:
                found.append(core_name(implementer, part))
            implementer = part = None
            continue
        try:
            number = int(value, 16)
        except ValueError:
            continue
        if key == "CPU implementer":
            implementer = number
        else:
            part = number
    return found


def describe_cores(cpuinfo: str) -> str | None:
    """``Neoverse-N1`` for one kind of core; ``4x Cortex-A55 + 4x Cortex-A76`` for a big.LITTLE phone, each
    cluster in the order its cores are numbered; None when ``cpuinfo`` names no Arm cores."""
    names = cores(cpuinfo)
    if not names:
        return None
    clusters: list[list] = []
    for name in names:
        if clusters and clusters[-1][0] == name:
            clusters[-1][1] += 1
        else:
            clusters.append([name, 1])
    if len(clusters) == 1:
        return names[0]
    return " + ".join(f"{count}x {name}" for name, count in clusters)
