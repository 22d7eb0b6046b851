"""The CPU's name on arm64, where /proc/cpuinfo has no "model name": the cores by implementer and part."""

from __future__ import annotations

import pytest

from mbbench.bench.arm_cores import core_name, cores, describe_cores
from mbbench.bench.environment import cpu_model_from


def arm_cpuinfo(parts: list[int], implementer: int = 0x41, hardware: str | None = None) -> str:
    blocks = [f"processor\t: {i}\nBogoMIPS\t: 38.40\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n"
              f"CPU implementer\t: {implementer:#04x}\nCPU architecture: 8\nCPU variant\t: 0x1\n"
              f"CPU part\t: {part:#05x}\nCPU revision\t: 0\n" for i, part in enumerate(parts)]
    return "\n".join(blocks) + (f"\nHardware\t: {hardware}\n" if hardware else "")


def test_a_server_core_is_named_by_its_part_number():
    assert cpu_model_from(arm_cpuinfo([0xD0C] * 2)) == "Neoverse-N1"


def test_a_big_little_phone_names_each_cluster_in_core_order():
    info = arm_cpuinfo([0xD05] * 4 + [0xD41] * 3 + [0xD44])  # a Snapdragon 888's three clusters
    assert describe_cores(info) == "4x Cortex-A55 + 3x Cortex-A78 + 1x Cortex-X1"
    assert cores(info)[3:5] == ["Cortex-A55", "Cortex-A78"]


def test_the_soc_name_comes_first_when_the_kernel_gives_it():
    info = arm_cpuinfo([0x805] * 4 + [0x804] * 4, implementer=0x51, hardware="Qualcomm Technologies, Inc SM8150")
    assert cpu_model_from(info) == "Qualcomm Technologies, Inc SM8150 (4x Kryo 4xx Silver + 4x Kryo 4xx Gold)"


def test_a_raspberry_pi_4():
    assert cpu_model_from(arm_cpuinfo([0xD08] * 4)) == "Cortex-A72"


@pytest.mark.parametrize("implementer, part, name", [
    (0x41, 0xFFF, "Arm part 0xfff"),               # a core newer than the table: its numbers, never a guess
    (0x99, 0x001, "implementer 0x99 part 0x001"),
])
def test_an_unknown_core_keeps_its_numbers(implementer, part, name):
    assert core_name(implementer, part) == name


def test_x86_and_old_arm_kernels_keep_their_own_lines():
    assert cpu_model_from("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n") == "AMD EPYC 7B13"
    assert cpu_model_from("Processor\t: ARMv7 Processor rev 4 (v7l)\n") == "ARMv7 Processor rev 4 (v7l)"
    assert cpu_model_from("") is None
    assert describe_cores("processor : 0\nCPU part : zz\n") is None
