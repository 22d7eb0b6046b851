"""The interleaved comparison: the order it runs the sides in, how it pairs their blocks, what it refuses."""

import statistics

import pytest

from mbbench.bench import interleave
from mbbench.bench.interleave import MAX_BLOCK_ROUNDS, MAX_BLOCKS, MAX_PAUSE, compare_files, compare_sides
from mbbench.bench.options import BenchConfig
from mbbench.bench.session import ModelRunError
from mbbench.errors import OptionError
from .tiny_onnx import fails_at_run


class Recorder:
    """Block runners that log each call and answer with durations set per call (ns)."""

    def __init__(self, durations):
        self.calls, self.durations = [], durations

    def side(self, label):
        def run(rounds):
            self.calls.append((label, rounds))
            return [self.durations(label, len(self.calls))] * rounds
        return run


def test_warms_up_then_reverses_the_order_every_block_with_a_block_warmup_before_each():
    rec = Recorder(lambda label, n: 1_000_000)
    compare_sides({"a": rec.side("a"), "b": rec.side("b"), "c": rec.side("c")}, blocks=3, block_rounds=4,
                  warmup=7, block_warmup=2, pause=0)  # fmt: skip
    assert rec.calls[:3] == [("a", 7), ("b", 7), ("c", 7)]
    timed = rec.calls[3:]
    assert timed[0::2] == [("a", 2), ("b", 2), ("c", 2), ("c", 2), ("b", 2), ("a", 2), ("a", 2), ("b", 2), ("c", 2)]
    assert timed[1::2] == [(label, 4) for label, _ in timed[0::2]]


def test_samples_are_kept_per_block_in_milliseconds_and_untimed_rounds_are_not():
    rec = Recorder(lambda label, n: n * 1_000_000)  # every call a new duration, so kept calls are identifiable
    result = compare_sides({"a": rec.side("a"), "b": rec.side("b")}, blocks=2, block_rounds=3, warmup=1,
                           block_warmup=1, pause=0)  # fmt: skip
    # calls: 1 a-warmup, 2 b-warmup; block 0: 3 a-bw, 4 a, 5 b-bw, 6 b; block 1 (reversed): 7 b-bw, 8 b, 9 a-bw, 10 a
    assert result.samples_ms == {"a": [[4.0] * 3, [10.0] * 3], "b": [[6.0] * 3, [8.0] * 3]}
    assert result.blocks == 2 and result.block_rounds == 3 and result.labels == ("a", "b")
    assert result.block_p50("a") == [4.0, 10.0] and result.p50("a") == 7.0


def test_ratio_pairs_the_blocks_measured_together_so_a_level_shift_cancels():
    # the machine runs at one speed in even blocks and at a third of it in odd ones; a is always 0.8 of b
    def durations(label, n):
        block = (n - 3) // 4  # two warm-up calls, then 4 calls a block (block warm-up + timed, two sides)
        level = 3 if block % 2 else 1
        return int((0.8 if label == "a" else 1.0) * level * 1_000_000)

    rec = Recorder(durations)
    result = compare_sides({"a": rec.side("a"), "b": rec.side("b")}, blocks=9, block_rounds=5, warmup=1,
                           block_warmup=1, pause=0)  # fmt: skip
    assert result.ratios("a", "b") == pytest.approx([0.8] * 9)
    summary = result.summary("a", "b")
    assert [summary[k] for k in ("ratio", "ratio_q1", "ratio_q3")] == pytest.approx([0.8] * 3)
    assert summary["new_p50_ms"] == pytest.approx(0.8) and summary["base_p50_ms"] == pytest.approx(1.0)
    assert summary["blocks"] == 9 and summary["block_rounds"] == 5


def test_the_summary_names_its_sides_quartiles_and_settings():
    # block ratios 1, 2, 3, 4, 5 (a's block k takes k ms, b's 1 ms): a is the slower side
    durations = {"a": iter([1, 2, 3, 4, 5]), "b": iter([1] * 5)}
    result = compare_sides({label: (lambda it: lambda k: [next(it) * 1_000_000] * k)(it)
                            for label, it in durations.items()}, blocks=5, block_rounds=3, warmup=0, block_warmup=0,
                           pause=0)  # fmt: skip
    summary = result.summary("a", "b")
    assert summary == {
        "new": "a", "base": "b", "ratio": 3.0, "ratio_q1": 1.5, "ratio_q3": 4.5, "ratio_of_p50": 3.0,
        "new_p50_ms": 3.0, "base_p50_ms": 1.0, "blocks": 5, "block_rounds": 3, "block_warmup": 0, "warmup": 0,
        "pause_s": 0, "threads": None, "runtime": None, "seed": None,
    }  # fmt: skip
    assert result.summary("b", "a")["ratio_of_p50"] == pytest.approx(1 / 3)


def test_two_blocks_have_statistics_quartiles():
    durations = {"a": iter([1, 3]), "b": iter([1, 1])}
    result = compare_sides({label: (lambda it: lambda k: [next(it) * 1_000_000] * k)(it)
                            for label, it in durations.items()}, blocks=2, warmup=0, block_warmup=0, pause=0)  # fmt: skip
    q1, _, q3 = statistics.quantiles([1.0, 3.0], n=4)
    summary = result.summary("a", "b")
    assert (summary["ratio_q1"], summary["ratio_q3"]) == pytest.approx((q1, q3)) and q1 < 1.0 < 3.0 < q3


def test_one_block_has_its_ratio_as_both_quartiles():
    result = compare_sides({"a": lambda k: [2_000_000] * k, "b": lambda k: [4_000_000] * k}, blocks=1, warmup=0,
                           block_warmup=0, pause=0)  # fmt: skip
    assert [result.summary("a", "b")[k] for k in ("ratio", "ratio_q1", "ratio_q3")] == [0.5, 0.5, 0.5]


@pytest.mark.parametrize("kwargs, message", [
    ({"blocks": 0}, "blocks must be from 1 to 100,000, not 0"),
    ({"blocks": MAX_BLOCKS + 1}, "blocks must be from 1 to 100,000, not 100001"),
    ({"block_rounds": 0}, "block_rounds must be from 1 to 10,000, not 0"),
    ({"block_rounds": MAX_BLOCK_ROUNDS + 1}, "block_rounds must be from 1 to 10,000, not 10001"),
    ({"block_warmup": -1}, "block_warmup must be from 0 to 10,000, not -1"),
    ({"block_warmup": MAX_BLOCK_ROUNDS + 1}, "block_warmup must be from 0 to 10,000, not 10001"),
    ({"pause": -0.1}, "pause must be from 0 to 10 seconds, not -0.1"),
    ({"pause": MAX_PAUSE + 0.5}, "pause must be from 0 to 10 seconds, not 10.5"),
])  # fmt: skip
def test_bad_settings_are_refused_before_anything_runs(kwargs, message):
    rec = Recorder(lambda label, n: 1)
    with pytest.raises(OptionError, match=message):
        compare_sides({"a": rec.side("a"), "b": rec.side("b")}, **kwargs)
    assert rec.calls == []


def test_the_edges_of_every_range_are_taken(monkeypatch):
    slept = []
    monkeypatch.setattr(interleave.time, "sleep", slept.append)  # the pause is not what is tested here: its value is
    rec = Recorder(lambda label, n: 1)
    sides = {"a": rec.side("a"), "b": rec.side("b")}
    assert compare_sides(sides, blocks=1, block_rounds=1, warmup=0, block_warmup=0, pause=0).blocks == 1
    assert slept == []  # no pause asked, no sleep
    result = compare_sides(sides, blocks=2, block_rounds=MAX_BLOCK_ROUNDS, warmup=0, block_warmup=MAX_BLOCK_ROUNDS,
                           pause=MAX_PAUSE)  # fmt: skip
    assert result.block_rounds == MAX_BLOCK_ROUNDS and result.block_warmup == MAX_BLOCK_ROUNDS
    assert slept == [MAX_PAUSE] * 4  # before each side in each block
    assert compare_sides(sides, blocks=MAX_BLOCKS, block_rounds=1, warmup=0, block_warmup=0, pause=0).blocks == MAX_BLOCKS


def test_the_defaults_are_the_documented_ones(monkeypatch):
    slept = []
    monkeypatch.setattr(interleave.time, "sleep", slept.append)
    rec = Recorder(lambda label, n: 1)
    result = compare_sides({"a": rec.side("a"), "b": rec.side("b")})
    assert (result.blocks, result.block_rounds, result.block_warmup, result.warmup, result.pause) == (40, 10, 2, 5, 0.02)
    assert rec.calls[:2] == [("a", 5), ("b", 5)] and rec.calls[2:4] == [("a", 2), ("a", 10)]
    assert len(rec.calls) == 2 + 40 * 2 * 2 and slept == [0.02] * 80


def test_one_side_is_no_comparison():
    with pytest.raises(OptionError, match="at least two sides, got 1"):
        compare_sides({"a": lambda k: [1] * k})


def test_files_are_opened_once_and_fed_through_the_sweeps_timed_loop(models):
    result = compare_files({"conv": models["conv"], "again": models["conv"]}, 1, BenchConfig(warmup=3, seed=7),
                           blocks=3, block_rounds=2, block_warmup=1, pause=0.001)  # fmt: skip
    for label in ("conv", "again"):
        assert [len(block) for block in result.samples_ms[label]] == [2, 2, 2]
        assert all(x > 0 for block in result.samples_ms[label] for x in block)
    # what it ran with is on record: the config's warm-up and seed, the block settings, threads and runtime
    assert (result.warmup, result.block_warmup, result.pause, result.threads, result.runtime, result.seed) == (
        3, 1, 0.001, 1, "onnxruntime", 7)


def test_without_a_config_the_bench_defaults_apply(models):
    result = compare_files({"a": models["conv"], "b": models["add"]}, 1, blocks=1, block_rounds=1, pause=0)
    assert result.warmup == BenchConfig().warmup and result.seed == BenchConfig().seed


def test_a_file_that_fails_at_run_time_is_one_line_naming_it(models, tmp_path):
    bad = fails_at_run(tmp_path / "bad.onnx")
    with pytest.raises(ModelRunError, match=r"^cannot run bad.onnx: .*(?i:reshape)"):  # ORT's own words
        compare_files({"conv": models["conv"], "bad": bad}, 1, BenchConfig(warmup=0), blocks=2, block_rounds=1,
                      pause=0)  # fmt: skip
