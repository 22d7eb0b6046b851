"""Side-by-side comparison by fine interleaving: which of two files (or two harnesses) is faster, and by how much.

A sweep measures one configuration after the other, each in a fresh process: the right way to get a file's
latency, the wrong way to compare two files on a shared VM whose speed moves between levels from one minute to
the next (a level shift between A's block and B's block reads as a difference between A and B). Here every side
is opened once in this process, then the sides take turns: a few rounds of A, a few of B, then B, A (the order
reverses every block, so a drift within a block hits both sides alike), for many blocks. Each block gives a ratio
of the sides' medians measured seconds apart; the comparison is the median of those ratios, which a level shift
moves only in the blocks it falls in.

Only one side computes at a time; between sides the comparison sleeps ``pause`` seconds so that the previous
side's spinning thread pool goes idle before the next side starts (ONNX Runtime's intra-op threads spin for a
while after each run), and each block starts with ``block_warmup`` untimed rounds: the first runs after a switch
wait for the side's threads to wake and its data to come back into cache (measured on the 2-core VM at 2 threads:
with 5 timed rounds a block and no warm-up, a file compared with itself gave block ratios from 0.5 to 2.1).
The timed loop is the sweep's own (:func:`mbbench.bench.session.timed_rounds`).

What interleaving cannot remove is an effect of the order the files are opened in (where each side's memory and
threads land, presumably; the cause is not known): on the 2-core VM the file opened first ran 0.5-4.5% slower
than in the same comparison with the order reversed (``scripts/bench_export.py public`` and ``forms``).
Callers that want a ratio to better than that run the comparison an even number of times, the files opened in
the other order every other run, and take the median (the benchmark scripts do).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from mbbench.bench.options import BenchConfig
from mbbench.bench.session import ModelRunError, make_inputs, timed_rounds
from mbbench.errors import MbbenchError, OptionError

#: a side: run this many rounds, return each round's duration in nanoseconds
BlockRunner = Callable[[int], Sequence[int]]

MAX_BLOCKS = 100_000
MAX_BLOCK_ROUNDS = 10_000
MAX_PAUSE = 10.0

#: the defaults: 40 blocks of 2 untimed and 10 timed rounds per side, 5 warm-up rounds each first, 20 ms between
#: sides (measured on the 2-core VM: a file against itself gives 0.99-1.01 so; see the module's text)
BLOCKS, BLOCK_ROUNDS, BLOCK_WARMUP, WARMUP, PAUSE = 40, 10, 2, 5, 0.02


@dataclass(frozen=True)
class Comparison:
    """Per-block samples of every side; ratios pair the blocks measured together."""

    labels: tuple[str, ...]
    block_rounds: int
    #: label -> one list of round durations (ms) per block
    samples_ms: Mapping[str, list[list[float]]] = field(repr=False)
    #: the settings it ran with: warm-up rounds per side before the blocks, untimed rounds at each block's start,
    #: seconds between sides; for files also the threads, runtime and input seed
    warmup: int = 0
    block_warmup: int = 0
    pause: float = 0.0
    threads: int | None = None
    runtime: str | None = None
    seed: int | None = None

    @property
    def blocks(self) -> int:
        return len(self.samples_ms[self.labels[0]])

    def block_p50(self, label: str) -> list[float]:
        """The median round of each block of ``label`` (ms)."""
        return [statistics.median(block) for block in self.samples_ms[label]]

    def p50(self, label: str) -> float:
        """The median of every round of ``label`` (ms)."""
        return statistics.median(x for block in self.samples_ms[label] for x in block)

    def ratios(self, new: str, base: str) -> list[float]:
        """``new`` over ``base`` block by block: each the ratio of the two medians measured together."""
        return [a / b for a, b in zip(self.block_p50(new), self.block_p50(base))]

    def ratio(self, new: str, base: str) -> float:
        """The median of :meth:`ratios`: below 1 means ``new`` is faster."""
        return statistics.median(self.ratios(new, base))

    def summary(self, new: str, base: str) -> dict:
        """The figures a benchmark records for ``new`` against ``base``."""
        ratios = sorted(self.ratios(new, base))
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        return {
            "new": new, "base": base, "ratio": self.ratio(new, base),
            "ratio_q1": quartiles[0], "ratio_q3": quartiles[2],
            "ratio_of_p50": self.p50(new) / self.p50(base),
            "new_p50_ms": self.p50(new), "base_p50_ms": self.p50(base),
            "blocks": self.blocks, "block_rounds": self.block_rounds, "block_warmup": self.block_warmup,
            "warmup": self.warmup, "pause_s": self.pause, "threads": self.threads, "runtime": self.runtime,
            "seed": self.seed,
        }  # fmt: skip


def compare_sides(
    sides: Mapping[str, BlockRunner], *, blocks: int = BLOCKS, block_rounds: int = BLOCK_ROUNDS, warmup: int = WARMUP,
    block_warmup: int = BLOCK_WARMUP, pause: float = PAUSE,
) -> Comparison:  # fmt: skip
    """Run every side ``warmup`` rounds, then ``blocks`` blocks of ``block_warmup`` untimed and ``block_rounds``
    timed rounds each, the sides' order reversed every block."""
    labels = tuple(sides)
    if len(labels) < 2:
        raise OptionError(f"a comparison needs at least two sides, got {len(labels)}")
    if not 1 <= blocks <= MAX_BLOCKS:
        raise OptionError(f"blocks must be from 1 to {MAX_BLOCKS:,}, not {blocks}")
    if not 1 <= block_rounds <= MAX_BLOCK_ROUNDS:
        raise OptionError(f"block_rounds must be from 1 to {MAX_BLOCK_ROUNDS:,}, not {block_rounds}")
    if not 0 <= block_warmup <= MAX_BLOCK_ROUNDS:
        raise OptionError(f"block_warmup must be from 0 to {MAX_BLOCK_ROUNDS:,}, not {block_warmup}")
    if not 0 <= pause <= MAX_PAUSE:
        raise OptionError(f"pause must be from 0 to {MAX_PAUSE:g} seconds, not {pause}")
    if warmup:
        for label in labels:
            sides[label](warmup)
    samples: dict[str, list[list[float]]] = {label: [] for label in labels}
    for block in range(blocks):
        for label in labels if block % 2 == 0 else labels[::-1]:
            if pause:
                time.sleep(pause)
            if block_warmup:
                sides[label](block_warmup)
            durations = sides[label](block_rounds)
            samples[label].append([ns / 1e6 for ns in durations])
    return Comparison(labels, block_rounds, samples, warmup=warmup, block_warmup=block_warmup, pause=pause)


def open_side(stack: ExitStack, path: str | Path, threads: int, config: BenchConfig,
              runtime: str = "onnxruntime") -> BlockRunner:  # fmt: skip
    """Open ``path`` in ``runtime`` at ``threads`` threads with ``config``'s settings (closed when ``stack`` ends),
    fed bench's seeded input: a side whose blocks run bench's own timed loop. A run-time failure is one
    :class:`ModelRunError` line naming the file."""
    from mbbench.runtimes import get_runtime

    engine = get_runtime(runtime)
    engine.check_installed()
    session = engine.open(str(path), threads, config.runtime_settings(runtime))
    stack.callback(session.close)
    feed, _ = make_inputs(session.inputs, config.shapes, config.seed)
    session.prepare(feed)
    run, name = session.run, Path(path).name

    def block(rounds: int) -> Sequence[int]:
        try:
            return timed_rounds(run, rounds)
        except MbbenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - a runtime fails at run time in its own ways: one line
            raise ModelRunError(f"cannot run {name}: {engine.error_text(exc)}") from None

    return block


def compare_files(
    files: Mapping[str, str | Path], threads: int, config: BenchConfig | None = None, *, runtime: str = "onnxruntime",
    blocks: int = BLOCKS, block_rounds: int = BLOCK_ROUNDS, block_warmup: int = BLOCK_WARMUP, pause: float = PAUSE,
) -> Comparison:  # fmt: skip
    """Interleave ``files`` (label -> file) at ``threads`` threads in ``runtime``, each opened once (in the given
    order) with ``config``'s settings and fed the same seeded input; ``config.warmup`` rounds each first."""
    config = config or BenchConfig()
    with ExitStack() as stack:
        sides = {label: open_side(stack, path, threads, config, runtime) for label, path in files.items()}
        result = compare_sides(sides, blocks=blocks, block_rounds=block_rounds, warmup=config.warmup,
                               block_warmup=block_warmup, pause=pause)
    return replace(result, threads=threads, runtime=runtime, seed=config.seed)
