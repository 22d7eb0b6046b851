"""The portable command line: ``python -m mbbench.bench.runner`` (argparse; onnxruntime + numpy only).

Copy the ``mbbench/`` folder to a phone (Termux) or a board and run::

    python -m mbbench.bench.runner models/ --threads 1-4 --rounds 50

It writes the same CSV schema as ``mbbench bench`` (``report`` reads either). Registry names need the full
install; there, pass paths. Ctrl-C exits 130 and SIGTERM 143, each after the worker is killed and what finished
is saved.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from mbbench.bench._runner import SweepObserver, default_output, run_sweep
from mbbench.bench.formatting import flag_marks, format_latency, threads_label
from mbbench.bench.modelfile import resolve_models
from mbbench.bench.options import GRAPH_OPT_LEVELS, BenchConfig
from mbbench.bench.summary import render_text
from mbbench.errors import MbbenchError, OptionError


class _TextObserver(SweepObserver):
    def __init__(self, stream=sys.stderr):
        self.stream = stream

    def note(self, message: str) -> None:
        print(f"note: {message}", file=self.stream, flush=True)

    def configuration_started(self, index, total, model, threads):
        self._prefix = f"[{index}/{total}] {model.label} @ {threads_label(threads)}"

    def configuration_finished(self, row, stats, measurement):
        print(f"{self._prefix}: {format_latency(stats.mean_ms, stats.std_ms)} ms{flag_marks(row)}",
              file=self.stream, flush=True)

    def configuration_failed(self, model, threads, message):
        print(f"{self._prefix}: FAILED: {message}", file=self.stream, flush=True)


class _OneLineParser(argparse.ArgumentParser):
    """argparse's usage errors as the main command line gives them: one ``Error:`` line, exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"Error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m mbbench.bench.runner",
        description="Portable ONNX Runtime latency sweep (onnxruntime + numpy only); same CSV as 'mbbench bench'.",
    )
    parser.add_argument("models", nargs="*", metavar="MODEL", help=".onnx file, folder of them, or registry name")
    parser.add_argument("--threads", default="1,2", help="2, 1-4 or 1,2,4 (default: 1,2)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--min-time", type=float, default=0.0, metavar="S")
    parser.add_argument("--graph-opt", choices=GRAPH_OPT_LEVELS, default="all")
    spin = parser.add_mutually_exclusive_group()
    spin.add_argument("--spin", dest="spinning", action="store_true", default=None)
    spin.add_argument("--no-spin", dest="spinning", action="store_false")
    parser.add_argument("--inter-threads", type=int, default=1)
    parser.add_argument("--provider", default="CPUExecutionProvider")
    parser.add_argument("--input-shape", action="append", default=[], metavar="SPEC")
    parser.add_argument("--seed", type=int, default=0)
    iso = parser.add_mutually_exclusive_group()
    iso.add_argument("--isolate", dest="isolate", action="store_true", default=True)
    iso.add_argument("--no-isolate", dest="isolate", action="store_false")
    parser.add_argument("--shuffle", action="store_true")
    parser.add_argument("--cooldown", type=float, default=0.0, metavar="S")
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--append", action="store_true")
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    observer = _TextObserver()
    previous = _sigterm_as_interrupt()
    try:
        return _run(args, observer)
    except _Terminated:
        print("interrupted: nothing saved", file=sys.stderr)
        return 143
    except KeyboardInterrupt:  # before the sweep started
        print("interrupted: nothing saved", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interrupt so the worker is killed and every clean-up runs (as for Ctrl-C)."""


def _sigterm_as_interrupt():
    def handler(signum, frame):
        raise _Terminated()

    try:
        if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
            return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass
    return None


def _run(args: argparse.Namespace, observer: _TextObserver) -> int:
    try:
        config = BenchConfig(
            threads=args.threads, rounds=args.rounds, warmup=args.warmup, min_time=args.min_time,
            graph_opt=args.graph_opt, spinning=args.spinning, inter_threads=args.inter_threads,
            provider=args.provider, input_shapes=tuple(args.input_shape), seed=args.seed, isolate=args.isolate,
            shuffle=args.shuffle, cooldown=args.cooldown,
        )
        models = resolve_models(args.models, args.models_dir, note=observer.note)
        output = args.output if args.output is not None else default_output()
        result = run_sweep(models, config, output=output, append=args.append, observer=observer)
    except OptionError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    except MbbenchError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    if result.rows:
        print(render_text(result.rows))
    for failure in result.failures:
        print(f"failed: {failure.model}: {failure.message}", file=sys.stderr)
    saved = f"{len(result.rows)} of {result.total} configurations saved to {result.output}" if result.rows else (
        "nothing saved")
    if result.interrupted:
        print(f"interrupted: {saved}", file=sys.stderr)
        return 143 if isinstance(result.interruption, _Terminated) else 130
    print(saved, file=sys.stderr)
    return 1 if result.failures else 0


if __name__ == "__main__":
    sys.exit(main())
