"""Peak memory per configuration (issue 23): the worker's own figures, never its parent's."""

import subprocess
import sys

import pytest

from mbbench.bench._worker import measure_isolated
from mbbench.bench.memory import MemoryProbe
from mbbench.bench.options import BenchConfig
from mbbench.bench.session import measure
from .tiny_onnx import conv_relu

PARENT_MIB = 400
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="VmHWM is Linux's")


@pytest.fixture
def big_parent():
    """This process holds PARENT_MIB of touched memory while the test starts a worker (as `mbbench run` holds torch)."""
    block = bytearray(PARENT_MIB << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    yield
    del block


def test_the_recorded_peak_is_the_workers_own_not_its_parents(tmp_path, big_parent):
    # the pitfall, shown: a child's ru_maxrss starts at its parent's high-water mark
    floored = subprocess.run([sys.executable, "-c", "import resource; print(resource.getrusage(resource.RUSAGE_SELF)"
                              ".ru_maxrss // 1024)"], capture_output=True, text=True, check=True)
    assert int(floored.stdout) >= PARENT_MIB
    measurement = measure_isolated(conv_relu(tmp_path / "m.onnx"), 1, BenchConfig(rounds=3, warmup=0))
    memory = measurement.memory
    assert memory["memory_method"] == "proc-vmhwm"
    assert 5 < memory["peak_rss_mib"] < PARENT_MIB / 2  # an interpreter, numpy and onnxruntime, not the parent
    assert 0 < memory["peak_delta_mib"] < memory["peak_rss_mib"]
    assert 0 <= memory["heap_delta_mib"] <= memory["peak_delta_mib"]
    assert measurement.model_bytes == (tmp_path / "m.onnx").stat().st_size


def test_a_bigger_model_costs_more_and_the_arena_option_is_applied(tmp_path):
    # each in a fresh worker, as bench measures: a process that freed memory before would reuse it
    small = measure_isolated(conv_relu(tmp_path / "small.onnx", size=8), 1, BenchConfig(rounds=3, warmup=0))
    # a 1x3x512x512 input and activations: tens of MiB more anonymous memory than an 8x8 one
    big = measure_isolated(conv_relu(tmp_path / "big.onnx", size=512), 1, BenchConfig(rounds=3, warmup=0))
    assert big.memory["heap_delta_mib"] > small.memory["heap_delta_mib"] + 5
    off = measure(tmp_path / "big.onnx", 1, BenchConfig(rounds=3, warmup=0, runtime_options=("arena=off",)))
    assert off.applied["arena"] == "off" and big.applied["arena"] == "on"


def test_the_probe_sees_memory_taken_after_it_started():
    probe = MemoryProbe()
    block = bytearray(64 << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    probe.sample()
    figures = probe.finish()
    del block
    assert figures.heap_delta_mib >= 60 and figures.peak_delta_mib >= 60
