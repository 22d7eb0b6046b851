"""What to measure: thread specs, input shapes and the validated options of one sweep.

Standard library only, so the portable runner, the library and the CLI share one parser and one set of
error messages. Everything here fails early, before any model is loaded.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from mbbench.errors import MbbenchError, OptionError

#: ORT accepts more, but a request for thousands of threads is a typo, not an experiment.
MAX_THREADS = 1024
#: The documented range of every numeric option, checked before any model loads (a typo such as
#: ``--cooldown 1e10`` must not turn into a run that never ends). The seed range is numpy's legacy one.
MAX_ROUNDS = 1_000_000
MAX_WARMUP = 100_000
MAX_SECONDS = 3600.0
MAX_SEED = 2**32 - 1
#: Elements of one input tensor: beyond 2**31 an input no longer fits the 32-bit indexing of many kernels,
#: and at 4 bytes each it is already 8 GiB.
MAX_INPUT_ELEMENTS = 2**31

GRAPH_OPT_LEVELS = ("disable", "basic", "extended", "all")


class ThreadSpecError(OptionError):
    """A ``--threads`` value is not a positive count, an ascending range or a list of those."""


class InputShapeError(OptionError):
    """An ``--input-shape`` value cannot be parsed."""


class InputShapeMismatch(MbbenchError):
    """A requested input shape does not fit one model's inputs (that model is skipped)."""


class BenchOptionError(OptionError):
    """A benchmark option is out of range."""


_RANGE = re.compile(r"^(\d+)\s*-\s*(\d+)$")


def parse_threads(spec: str | int | Iterable[int]) -> tuple[int, ...]:
    """Thread counts from ``"2"``, ``"1-4"``, ``"1,2,4"`` (or a mix such as ``"1-2,4"``) or from ints.

    Order is kept and duplicates are dropped, so ``"2,1,2"`` measures 2 then 1.
    """
    if isinstance(spec, bool):
        raise ThreadSpecError(f"invalid thread spec {spec}; use a count (2), a range (1-4) or a list (1,2,4)")
    if isinstance(spec, numbers.Integral):
        counts = [int(spec)]
        text = str(spec)
    elif isinstance(spec, numbers.Real):
        raise ThreadSpecError(f"threads must be whole numbers, got {_user_text(spec)}")
    elif isinstance(spec, str):
        text = spec
        counts = []
        for part in spec.split(","):
            counts.extend(_parse_thread_part(part.strip(), spec))
    else:
        items = list(spec)
        text = ",".join(map(_user_text, items))
        counts = [_whole(c, text) for c in items]
    if not counts:
        raise ThreadSpecError("the thread spec is empty; use a count (2), a range (1-4) or a list (1,2,4)")
    for count in counts:
        if count < 1:
            raise ThreadSpecError(f"invalid thread spec {text!r}: thread counts start at 1 (got {count})")
        if count > MAX_THREADS:
            raise ThreadSpecError(f"invalid thread spec {text!r}: {count} threads is more than {MAX_THREADS}")
    return tuple(dict.fromkeys(counts))


def _user_text(value: Any) -> str:
    """A value as the user wrote it: ``1.5``, not ``np.float64(1.5)``."""
    if hasattr(value, "item") and hasattr(value, "dtype"):
        value = value.item()
    return str(value)


def _whole(value: Any, text: str) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return int(value)
    raise ThreadSpecError(f"threads must be whole numbers, got {_user_text(value)}")


def _parse_thread_part(part: str, spec: str) -> list[int]:
    hint = "use a count (2), a range (1-4) or a list (1,2,4)"
    if not part:
        raise ThreadSpecError(f"invalid thread spec {spec!r}: it has an empty item; {hint}")
    if part.isdigit():
        return [int(part)]
    if part.startswith("-") and part[1:].strip().isdigit():
        raise ThreadSpecError(f"invalid thread spec {spec!r}: thread counts must be positive (got {part})")
    match = _RANGE.match(part)
    if match is None:
        raise ThreadSpecError(f"invalid thread spec {spec!r}: {part!r} is not a count or a range; {hint}")
    low, high = int(match[1]), int(match[2])
    if low > high:
        raise ThreadSpecError(f"invalid thread spec {spec!r}: the range {part} is reversed; write {high}-{low}")
    if high - low >= MAX_THREADS:
        raise ThreadSpecError(f"invalid thread spec {spec!r}: the range {part} is longer than {MAX_THREADS}")
    return list(range(low, high + 1))


def parse_cpus(spec: str | int | Iterable[int]) -> tuple[int, ...]:
    """CPU numbers from ``"4-7"``, ``"0,2"``, ``"0-1,4"`` or ints (sorted, without repeats; CPU 0 is allowed)."""
    hint = "use CPU numbers as a list (0,2), a range (4-7) or both (0-1,4)"
    if isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
        items: list[int] = [int(spec)]
    elif isinstance(spec, str):
        items = []
        for part in spec.split(","):
            part = part.strip()
            match = _RANGE.match(part)
            if part.isdigit():
                items.append(int(part))
            elif match and int(match[1]) <= int(match[2]):
                items.extend(range(int(match[1]), int(match[2]) + 1))
            else:
                raise BenchOptionError(f"invalid --cpus {spec!r}: {part!r} is not a CPU number or range; {hint}")
    else:
        try:
            items = [int(c) for c in spec if not isinstance(c, bool) and isinstance(c, numbers.Integral)]
        except TypeError:
            raise BenchOptionError(f"invalid --cpus {spec!r}; {hint}") from None
        if len(items) != len(list(spec)):
            raise BenchOptionError(f"invalid --cpus {_user_text(spec)}; {hint}")
    if not items:
        raise BenchOptionError(f"--cpus is empty; {hint}")
    if max(items) >= 4096:
        raise BenchOptionError(f"invalid --cpus {_user_text(spec)}: CPU numbers go up to 4095")
    return tuple(sorted(set(items)))


def format_cpus(cpus: Iterable[int]) -> str:
    """``(0, 1, 2, 3, 6)`` -> ``0-3,6`` (the kernel's own cpulist notation)."""
    ordered = sorted(set(cpus))
    parts, start = [], None
    for i, cpu in enumerate(ordered):
        if start is None:
            start = cpu
        if i + 1 == len(ordered) or ordered[i + 1] != cpu + 1:
            parts.append(str(start) if start == cpu else f"{start}-{cpu}")
            start = None
    return ",".join(parts)


@dataclass(frozen=True)
class InputShapes:
    """Shapes for dynamic inputs, from ``--input-shape`` values.

    Three forms, each repeatable (several may be joined with ``;``, which is how the ``input_shape`` column
    is written, so a row's value can be passed back verbatim):

    - ``1x3x256x256`` (or ``1,3,256,256``): every input of that rank;
    - ``NAME:1x3x256x256``: the input called NAME (split at the last ``:``, so ``input:0:1x8`` works);
    - ``DIM=8``: every symbolic dimension called DIM (e.g. ``batch=8``).

    Precedence: a named input, then an unnamed shape, then symbolic dimensions; any dynamic dimension still
    unknown is 1. A requested size that contradicts a fixed dimension of the model is an error for that model.
    A name that a model does not use is ignored for that model (one sweep may mix models with other inputs).
    """

    default: tuple[int, ...] | None = None
    by_input: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    by_dim: Mapping[str, int] = field(default_factory=dict)

    def resolve(self, name: str, declared: Iterable[Any]) -> tuple[int, ...]:
        """The concrete shape for input ``name`` whose declared dims are ints, strings (symbolic) or None."""
        declared = list(declared)
        requested = self.by_input.get(name)
        if requested is None and self.default is not None and len(self.default) == len(declared):
            requested = self.default
        if requested is not None:
            if len(requested) != len(declared):
                raise InputShapeMismatch(
                    f"input {name!r} has {len(declared)} dimensions but --input-shape gives {len(requested)}"
                )
            for axis, (want, have) in enumerate(zip(requested, declared)):
                if isinstance(have, int) and have >= 0 and have != want:
                    raise InputShapeMismatch(
                        f"input {name!r} has a fixed size {have} on axis {axis} but --input-shape asks for {want}"
                    )
            return tuple(requested)
        shape = []
        for dim in declared:
            if isinstance(dim, int) and dim >= 0:
                shape.append(dim)
            elif isinstance(dim, str) and dim in self.by_dim:
                shape.append(self.by_dim[dim])
            else:
                shape.append(1)
        return tuple(shape)

    def specs(self) -> tuple[str, ...]:
        """The ``--input-shape`` values that rebuild this object (for the isolated worker)."""
        out = []
        if self.default is not None:
            out.append(format_shape(self.default))
        out += [f"{name}:{format_shape(shape)}" for name, shape in self.by_input.items()]
        out += [f"{dim}={size}" for dim, size in self.by_dim.items()]
        return tuple(out)


def format_shape(shape: Iterable[int]) -> str:
    return "x".join(str(d) for d in shape)


def parse_input_shapes(specs: str | Iterable[str] | None) -> InputShapes:
    """Parse ``--input-shape`` values (see :class:`InputShapes` for the syntax)."""
    if specs is None:
        return InputShapes()
    if isinstance(specs, str):
        specs = [specs]
    default = None
    by_input: dict[str, tuple[int, ...]] = {}
    by_dim: dict[str, int] = {}
    for spec in specs:
        for item in str(spec).split(";"):
            item = item.strip()
            if not item:
                continue
            if ":" in item:
                name, dims = item.rsplit(":", 1)
                if not name:
                    raise InputShapeError(f"invalid --input-shape {item!r}: the input name before ':' is empty")
                by_input[name] = _parse_dims(dims, item)
            elif "=" in item:
                name, size = item.rsplit("=", 1)
                if not name.strip():
                    raise InputShapeError(f"invalid --input-shape {item!r}: the dimension name before '=' is empty")
                by_dim[name.strip()] = _parse_dims(size, item, single=True)[0]
            else:
                if default is not None and default != _parse_dims(item, item):
                    raise InputShapeError(
                        f"--input-shape got two unnamed shapes ({format_shape(default)} and {item}); "
                        "name the input they apply to, as NAME:1x3x224x224"
                    )
                default = _parse_dims(item, item)
    return InputShapes(default=default, by_input=by_input, by_dim=by_dim)


def _parse_dims(text: str, item: str, single: bool = False) -> tuple[int, ...]:
    parts = [p.strip() for p in re.split(r"[x,X*]", text.strip())] if not single else [text.strip()]
    if not parts or not all(p.isdigit() for p in parts):
        form = "DIM=8" if single else "1x3x224x224, NAME:1x3x224x224 or DIM=8"
        raise InputShapeError(f"invalid --input-shape {item!r}: write it as {form}")
    dims = tuple(int(p) for p in parts)
    if any(d == 0 for d in dims):
        raise InputShapeError(f"invalid --input-shape {item!r}: every dimension must be at least 1")
    if math.prod(dims) > MAX_INPUT_ELEMENTS:
        raise InputShapeError(
            f"invalid --input-shape {item!r}: {math.prod(dims)} elements is more than the limit of 2**31"
        )
    return dims


@dataclass(frozen=True)
class BenchConfig:
    """Every knob of one sweep, validated on construction (the portable worker rebuilds it from a dict).

    ``spinning=None`` leaves ORT's own intra-op spinning default in place (on, in ORT 1.x).
    ``inter_threads > 1`` switches ORT to its parallel executor, the only mode that uses inter-op threads.
    """

    threads: tuple[int, ...] = (1, 2)
    rounds: int = 30
    warmup: int = 5
    min_time: float = 0.0
    graph_opt: str = "all"
    spinning: bool | None = None
    inter_threads: int = 1
    provider: str = "CPUExecutionProvider"
    input_shapes: tuple[str, ...] = ()
    seed: int = 0
    isolate: bool = True
    shuffle: bool = False
    cooldown: float = 0.0
    #: CPUs the measurement is pinned to (``--cpus 4-7``, the big cores of a phone); None: the process's affinity
    cpus: tuple[int, ...] | None = None
    #: before each configuration, wait until the hottest thermal zone is below this (degrees C); None: don't wait
    cool_to: float | None = None
    #: how long ``cool_to`` may wait before measuring anyway (seconds)
    cool_timeout: float = 300.0
    #: ``--runtime-option [RUNTIME.]KEY=VALUE``: (runtime or "" for every runtime that has KEY, key, value)
    runtime_options: tuple[tuple[str, str, str], ...] = ()
    #: a runtime's artifact whose output is further from the export's than this cosine similarity is refused
    min_cosine: float = 0.9999

    def __post_init__(self) -> None:
        object.__setattr__(self, "threads", parse_threads(self.threads))
        # parse once here so a bad spec fails before the first model loads, then keep the canonical text
        object.__setattr__(self, "input_shapes", parse_input_shapes(self.input_shapes).specs())
        object.__setattr__(self, "rounds", _check_int("rounds", self.rounds, 2, MAX_ROUNDS,
                                                      why=" (2 so the standard deviation is defined)"))
        object.__setattr__(self, "warmup", _check_int("warmup", self.warmup, 0, MAX_WARMUP))
        object.__setattr__(self, "inter_threads", _check_int("inter_threads", self.inter_threads, 1, MAX_THREADS))
        object.__setattr__(self, "seed", _check_int("seed", self.seed, 0, MAX_SEED, high_text="2**32-1"))
        object.__setattr__(self, "min_time", _check_seconds("min_time", self.min_time))
        object.__setattr__(self, "cooldown", _check_seconds("cooldown", self.cooldown))
        object.__setattr__(self, "cpus", parse_cpus(self.cpus) if self.cpus is not None else None)
        if self.cool_to is not None:
            if (isinstance(self.cool_to, bool) or not isinstance(self.cool_to, numbers.Real)
                    or not 20 <= self.cool_to <= 110):
                raise BenchOptionError(f"cool_to must be a temperature from 20 to 110 degrees C, got "
                                       f"{_user_text(self.cool_to)}")
            object.__setattr__(self, "cool_to", float(self.cool_to))
        object.__setattr__(self, "cool_timeout", _check_seconds("cool_timeout", self.cool_timeout))
        if self.graph_opt not in GRAPH_OPT_LEVELS:
            raise BenchOptionError(
                f"graph_opt must be one of {', '.join(GRAPH_OPT_LEVELS)}, not {self.graph_opt!r}"
            )
        if self.spinning not in (None, True, False):
            raise BenchOptionError(f"spinning must be True, False or None (ORT's default), not {self.spinning!r}")
        if not isinstance(self.provider, str) or not self.provider:
            raise BenchOptionError(f"provider must be an execution provider name, not {self.provider!r}")
        object.__setattr__(self, "runtime_options", parse_runtime_options(self.runtime_options))
        if (isinstance(self.min_cosine, bool) or not isinstance(self.min_cosine, numbers.Real)
                or not 0 <= self.min_cosine <= 1):
            raise BenchOptionError(f"min_cosine must be a number from 0 to 1, got {_user_text(self.min_cosine)}")
        object.__setattr__(self, "min_cosine", float(self.min_cosine))

    def runtime_settings(self, runtime: str) -> dict[str, str]:
        """The options ``runtime`` opens each model with: its defaults, bench's ONNX Runtime options
        (``graph_opt``, ``spinning``, ``inter_threads``, ``provider``) for onnxruntime, then the
        ``runtime_options`` that name it or name no runtime; checked by the runtime (imported here)."""
        from mbbench.runtimes import get_runtime

        engine = get_runtime(runtime)
        given: dict[str, str] = {}
        if runtime == "onnxruntime":
            given = {"graph_opt": self.graph_opt, "spinning": self.spinning_label,
                     "inter_threads": str(self.inter_threads), "provider": self.provider}
        for owner, key, value in self.runtime_options:
            if owner == runtime or (not owner and key in engine.options):
                given[key] = value
        return engine.check_options(given)

    @property
    def shapes(self) -> InputShapes:
        return parse_input_shapes(self.input_shapes)

    @property
    def cpus_label(self) -> str | None:
        """``cpus`` as the ``cpus`` column writes it (``4-7``, ``0,2``), None when not pinned."""
        return format_cpus(self.cpus) if self.cpus else None

    @property
    def spinning_label(self) -> str:
        return {None: "default", True: "on", False: "off"}[self.spinning]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BenchConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def parse_runtime_options(specs: Iterable[Any]) -> tuple[tuple[str, str, str], ...]:
    """``--runtime-option`` values: ``KEY=VALUE`` (every runtime with that option) or ``RUNTIME.KEY=VALUE``, as
    (runtime, key, value); tuples pass through (the worker rebuilds the config from them)."""
    from mbbench.runtimes import check_runtime_name

    out = []
    for spec in specs:
        if isinstance(spec, (tuple, list)) and len(spec) == 3:
            owner, key, value = (str(part) for part in spec)
        else:
            text = str(spec)
            if "=" not in text or not text.split("=", 1)[0].strip():
                raise BenchOptionError(f"invalid --runtime-option {text!r}: write KEY=VALUE or RUNTIME.KEY=VALUE")
            key, value = (part.strip() for part in text.split("=", 1))
            owner, _, bare = key.rpartition(".")
            key = bare
        if owner:
            check_runtime_name(owner)
        out.append((owner, key, value))
    return tuple(out)


def _check_int(name: str, value: Any, low: int, high: int, why: str = "", high_text: str = "") -> int:
    """``value`` as an int in ``[low, high]``; numpy integers are accepted, bools and fractions are not."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise BenchOptionError(f"{name} must be a whole number from {low} to {high_text or high}, "
                               f"got {_user_text(value)}")
    if not low <= value <= high:
        raise BenchOptionError(f"{name} must be from {low} to {high_text or high}{why}, got {_user_text(value)}")
    return int(value)


def _check_seconds(name: str, value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or not 0 <= value <= MAX_SECONDS):
        raise BenchOptionError(f"{name} must be a number of seconds from 0 to {MAX_SECONDS:g}, got {_user_text(value)}")
    return float(value)
