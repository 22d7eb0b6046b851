"""Device facts read from a sysfs tree laid out as Linux lays it out (cpufreq, thermal zones, trip points)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from mbbench.bench import device
from mbbench.bench.modelfile import inspect_model
from mbbench.bench.options import BenchConfig, format_cpus, parse_cpus
from mbbench.bench.runner import run_sweep
from mbbench.errors import UserInputError
from tests.bench.tiny_onnx import conv_relu


def write(path: Path, text: str) -> None:
    """As the kernel updates sysfs: a reader sees the old value or the new one, never an empty file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(path.name + ".new")
    staged.write_text(text + "\n")
    os.replace(staged, path)


@pytest.fixture
def phone(tmp_path, monkeypatch):
    """A 4-core big.LITTLE phone: cpu0-1 at 1.8 GHz, cpu2-3 at 2.4 GHz (cpu3 capped), two thermal zones."""
    cpu_root, thermal_root = tmp_path / "cpu", tmp_path / "thermal"
    for cpu, khz, cap, governor in ((0, 1800000, 1800000, "schedutil"), (1, 1800000, 1800000, "schedutil"),
                                    (2, 2400000, 2400000, "performance"), (3, 2400000, 2000000, "performance")):
        write(cpu_root / f"cpu{cpu}" / "cpufreq" / "cpuinfo_max_freq", str(khz))
        write(cpu_root / f"cpu{cpu}" / "cpufreq" / "scaling_max_freq", str(cap))
        write(cpu_root / f"cpu{cpu}" / "cpufreq" / "scaling_governor", governor)
    for n, kind, temp, trip in ((0, "cpu-big", 48500, 85000), (1, "battery", 31000, 60000)):
        zone = thermal_root / f"thermal_zone{n}"
        write(zone / "type", kind)
        write(zone / "temp", str(temp))
        write(zone / "trip_point_0_type", "passive")
        write(zone / "trip_point_0_temp", str(trip))
    monkeypatch.setattr(device, "CPU_ROOT", cpu_root)
    monkeypatch.setattr(device, "THERMAL_ROOT", thermal_root)
    return thermal_root


def test_clusters_governors_and_zones(phone):
    assert device.clusters() == "2x1.80GHz+2x2.40GHz"
    assert device.governors() == "schedutil/performance"
    assert device.governors([2, 3]) == "performance"
    assert device.thermal_zones() == {"cpu-big": 48.5, "battery": 31.0}
    assert device.hottest_c() == 48.5


def test_throttled_when_a_used_core_is_capped_or_a_zone_passes_its_passive_trip(phone):
    cool = device.throttle_state([0, 1, 2])
    assert device.thermal_columns(cool, cool) == {"temp_start_c": 48.5, "temp_end_c": 48.5, "throttled": False}
    capped = device.throttle_state([2, 3])  # cpu3's cap is below its maximum
    assert device.thermal_columns(cool, capped)["throttled"] is True
    write(phone / "thermal_zone0" / "temp", "86000")  # past the 85 C passive trip
    hot = device.throttle_state([0])
    assert hot["passive"] == ["cpu-big"]
    assert device.thermal_columns(cool, hot) == {"temp_start_c": 48.5, "temp_end_c": 86.0, "throttled": True}


def test_throttled_is_unknown_where_the_kernel_exposes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(device, "CPU_ROOT", tmp_path / "none")
    monkeypatch.setattr(device, "THERMAL_ROOT", tmp_path / "none")
    state = device.throttle_state()
    assert device.thermal_columns(state, state) == {"temp_start_c": None, "temp_end_c": None, "throttled": None}


def test_cool_to_waits_until_the_zone_is_below_the_limit(phone):
    write(phone / "thermal_zone0" / "temp", "70000")
    notes = []

    def cool_down():
        time.sleep(0.3)
        write(phone / "thermal_zone0" / "temp", "39000")

    threading.Thread(target=cool_down).start()
    started = time.monotonic()
    assert device.wait_until_cool(40, timeout_s=30, poll_s=0.05, note=notes.append) == 39.0
    assert time.monotonic() - started >= 0.3
    assert notes and "waiting for < 40 C" in notes[0]


def test_cool_to_gives_up_after_its_timeout_and_says_so(phone):
    notes = []
    assert device.wait_until_cool(40, timeout_s=0.2, poll_s=0.05, note=notes.append) == 48.5
    assert "measuring anyway" in notes[-1]


@pytest.mark.parametrize("spec, cpus", [("4-7", (4, 5, 6, 7)), ("0,2", (0, 2)), ("0-1,4", (0, 1, 4)), (3, (3,)),
                                        ([2, 0, 2], (0, 2))])
def test_parse_cpus(spec, cpus):
    assert parse_cpus(spec) == cpus


@pytest.mark.parametrize("spec", ["", "a", "3-1", "-1", [1.5], "5000"])
def test_bad_cpus_are_refused(spec):
    with pytest.raises(UserInputError):
        BenchConfig(cpus=spec)


def test_format_cpus_is_the_kernel_cpulist():
    assert format_cpus([0, 1, 2, 3, 6]) == "0-3,6" and format_cpus([5]) == "5"


def test_a_sweep_pinned_to_one_cpu_records_it_and_cpus_it_may_not_use_are_refused(tmp_path):
    model = inspect_model(conv_relu(tmp_path / "m.onnx", size=8))
    result = run_sweep([model], BenchConfig(threads=(1, 2), rounds=2, warmup=0, cpus="0", cool_to=99))
    assert [(r["cpus"], r["oversubscribed"], r["cool_to_c"]) for r in result.rows] == [("0", False, 99.0),
                                                                                       ("0", True, 99.0)]
    with pytest.raises(UserInputError, match="may use CPUs"):
        run_sweep([model], BenchConfig(threads=(1,), rounds=2, warmup=0, cpus="4095"))
