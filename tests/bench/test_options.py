import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mbbench.bench.options import (
    MAX_THREADS,
    BenchConfig,
    BenchOptionError,
    InputShapeError,
    InputShapeMismatch,
    parse_input_shapes,
    parse_threads,
    ThreadSpecError,
)
from mbbench.errors import UserInputError


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("2", (2,)),
        ("1-4", (1, 2, 3, 4)),
        ("1,2,4", (1, 2, 4)),
        (" 1 , 2 ", (1, 2)),
        ("1-2,4", (1, 2, 4)),
        ("3-3", (3,)),
        ("2,1,2", (2, 1)),  # order kept, duplicates dropped
        (4, (4,)),
        ((1, 2), (1, 2)),
    ],
)
def test_parse_threads_accepts(spec, expected):
    assert parse_threads(spec) == expected


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ("0", "start at 1"),
        ("0-2", "start at 1"),
        ("-1", "positive"),
        ("4-1", "reversed; write 1-4"),
        ("abc", "not a count or a range"),
        ("1,,2", "empty item"),
        ("", "empty item"),
        ("1.5", "not a count or a range"),
        ("1-", "not a count or a range"),
        ("2x", "not a count or a range"),
        (str(MAX_THREADS + 1), "more than"),
        (0, "start at 1"),
        ((1, -2), "start at 1"),
        (True, "invalid"),
        ((1.0, 2), "threads must be whole numbers, got 1.0"),
    ],
)
def test_parse_threads_refuses(spec, reason):
    with pytest.raises(ThreadSpecError, match=reason) as info:
        parse_threads(spec)
    assert isinstance(info.value, UserInputError)
    assert "\n" not in str(info.value)


@given(st.lists(st.integers(1, 64), min_size=1, max_size=8))
def test_parse_threads_list_roundtrip(counts):
    assert parse_threads(",".join(map(str, counts))) == tuple(dict.fromkeys(counts))


@given(st.integers(1, 200), st.integers(0, 50))
def test_parse_threads_range_is_inclusive_and_ascending(low, width):
    parsed = parse_threads(f"{low}-{low + width}")
    assert parsed == tuple(range(low, low + width + 1))


@given(st.integers(1, 200), st.integers(1, 50))
def test_parse_threads_reversed_range_is_refused(high, width):
    with pytest.raises(ThreadSpecError, match="reversed"):
        parse_threads(f"{high + width}-{high}")


@given(st.text(alphabet="0123456789,- x.a", max_size=12))
def test_parse_threads_never_crashes_and_only_returns_valid_counts(spec):
    try:
        parsed = parse_threads(spec)
    except ThreadSpecError:
        return
    assert parsed and all(1 <= t <= MAX_THREADS for t in parsed)
    assert len(set(parsed)) == len(parsed)


def test_input_shapes_forms_and_precedence():
    shapes = parse_input_shapes(["1x3x8x8", "x:4x8", "batch=6;seq=5"])
    assert shapes.default == (1, 3, 8, 8)
    assert dict(shapes.by_input) == {"x": (4, 8)}
    assert dict(shapes.by_dim) == {"batch": 6, "seq": 5}
    assert shapes.resolve("x", ["batch", 8]) == (4, 8)  # named input beats symbolic dim
    assert shapes.resolve("y", ["batch", "seq"]) == (6, 5)
    assert shapes.resolve("img", [1, 3, "h", None]) == (1, 3, 8, 8)  # unnamed shape for the same rank
    assert shapes.resolve("z", [None, "other", 7]) == (1, 1, 7)  # unknown dynamic dims default to 1


def test_input_shape_name_may_contain_colons_and_commas_separate_dims():
    shapes = parse_input_shapes("input:0:2,3")
    assert dict(shapes.by_input) == {"input:0": (2, 3)}


def test_input_shape_specs_roundtrip():
    shapes = parse_input_shapes(["2x3", "a:1x8", "n=4"])
    assert parse_input_shapes(shapes.specs()) == shapes


@pytest.mark.parametrize("spec", ["axb", "x:", ":1x2", "=3", "n=0", "1x0", "n=a", "1x2;3x4"])
def test_input_shape_refuses(spec):
    with pytest.raises(InputShapeError):
        parse_input_shapes(spec)


def test_input_shape_mismatch_with_fixed_dims_is_a_model_error():
    shapes = parse_input_shapes("x:2x9")
    with pytest.raises(InputShapeMismatch, match="fixed size 8 on axis 1"):
        shapes.resolve("x", ["batch", 8])
    with pytest.raises(InputShapeMismatch, match="2 dimensions"):
        parse_input_shapes("x:1x2x3").resolve("x", ["batch", 8])


def test_config_defaults_match_the_issue():
    config = BenchConfig()
    assert (config.threads, config.rounds, config.warmup, config.graph_opt) == ((1, 2), 30, 5, "all")
    assert (config.inter_threads, config.provider, config.isolate, config.spinning) == (
        1, "CPUExecutionProvider", True, None)
    assert config.spinning_label == "default"


def test_config_roundtrips_through_a_dict():
    config = BenchConfig(threads="1-3", input_shapes=("batch=4",), spinning=False, min_time=0.5)
    assert BenchConfig.from_dict(config.to_dict()) == config
    assert config.threads == (1, 2, 3)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rounds": 1},
        {"rounds": 0},
        {"warmup": -1},
        {"min_time": -0.1},
        {"min_time": float("nan")},
        {"cooldown": -1},
        {"inter_threads": 0},
        {"graph_opt": "max"},
        {"spinning": "yes"},
        {"seed": -1},
        {"rounds": 2.5},
        {"provider": ""},
    ],
)
def test_config_refuses(kwargs):
    with pytest.raises(BenchOptionError):
        BenchConfig(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rounds": 1_000_001}, "rounds must be from 2 to 1000000"),
        ({"warmup": 100_001}, "warmup must be from 0 to 100000"),
        ({"min_time": 3600.5}, "min_time must be a number of seconds from 0 to 3600, got 3600.5"),
        ({"min_time": 1e308}, "from 0 to 3600"),
        ({"cooldown": 1e10}, "cooldown must be a number of seconds from 0 to 3600"),
        ({"inter_threads": 1025}, "inter_threads must be from 1 to 1024"),
        ({"seed": 2**32}, "seed must be from 0 to 2**32-1, got 4294967296"),
        ({"seed": 2**70}, "seed must be from 0 to 2**32-1"),
        ({"threads": 1025}, "1025 threads is more than 1024"),
        ({"threads": [np.float64(1.5)]}, "threads must be whole numbers, got 1.5"),
        ({"threads": 1.5}, "threads must be whole numbers, got 1.5"),
        ({"rounds": np.float64(2.5)}, "rounds must be a whole number from 2 to 1000000, got 2.5"),
        ({"input_shapes": ("65536x65536",)}, "4294967296 elements is more than the limit of 2**31"),
    ],
)
def test_every_numeric_option_has_a_documented_range(kwargs, message):
    with pytest.raises(UserInputError) as caught:
        BenchConfig(**kwargs)
    assert message in str(caught.value)
    assert "np." not in str(caught.value)


def test_range_edges_and_zero_are_accepted_as_given():
    config = BenchConfig(rounds=1_000_000, warmup=0, min_time=3600, cooldown=0, inter_threads=1024, seed=2**32 - 1,
                         threads=np.array([1, 1024]), input_shapes=("2x1024x1024x1024",))
    assert (config.warmup, config.cooldown, config.min_time, config.seed) == (0, 0.0, 3600.0, 2**32 - 1)
    assert config.threads == (1, 1024) and all(type(t) is int for t in config.threads)
    assert BenchConfig(seed=0).seed == 0 and BenchConfig(rounds=np.int64(3)).rounds == 3
