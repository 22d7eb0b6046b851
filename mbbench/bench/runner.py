"""``python -m mbbench.bench.runner``: the portable sweep, kept at its documented name.

The work is split the pyperf way: :mod:`mbbench.bench._runner` (the sweep), :mod:`mbbench.bench._worker` (the
isolated process) and :mod:`mbbench.bench._cli` (the argparse command line). This module re-exports their
public names so ``from mbbench.bench.runner import run_sweep`` keeps working.
"""

from __future__ import annotations

import sys

from mbbench.bench._cli import build_parser, main
from mbbench.bench._runner import Failure, SweepObserver, SweepResult, TargetFailure, default_output, make_row, run_sweep
from mbbench.bench._worker import measure_isolated

__all__ = [
    "Failure", "SweepObserver", "SweepResult", "TargetFailure", "build_parser", "default_output", "main", "make_row",
    "measure_isolated", "run_sweep",
]

if __name__ == "__main__":
    sys.exit(main())
