"""Where a benchmark script's result goes, and the conditions recorded with it.

Every figure the README quotes comes from a file this writes: ``results/benchmarks/<name>-<date>.json`` with
the figures, the command that produced them, the date, the machine (CPU, cores, load average before and after)
and the versions of everything that moves a timing. A figure without its conditions cannot be checked later.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "results" / "benchmarks"

_PACKAGES = ("mbbench", "onnxruntime", "onnx", "onnxsim", "torch", "numpy")


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # not on every platform
        return None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


class Record:
    """Start one before measuring (it notes the load average then), ``save`` it after."""

    def __init__(self, name: str, output_dir: str | os.PathLike | None = None) -> None:
        from mbbench.bench.environment import machine_facts

        self.name = name
        self.output_dir = Path(output_dir) if output_dir is not None else RESULTS
        self.started = datetime.now(timezone.utc)
        self.machine = machine_facts()
        self.load_before = load_average()

    def save(self, figures: dict, conditions: str = "") -> Path:
        """Write the figures with the date, machine and versions; returns the file's path."""
        from mbbench._io import atomic_write_text

        data = {
            "benchmark": self.name,
            "figures": figures,
            "command": shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
            "date": self.started.isoformat(timespec="seconds"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "conditions": conditions or "not stated (say whether other jobs ran on the machine)",
            "load_average_before": self.load_before,
            "load_average_after": load_average(),
            "machine": self.machine,
            "versions": versions(),
        }
        self.output_dir.mkdir(parents=True, exist_ok=True)
        path = self.output_dir / f"{self.name}-{self.started.strftime('%Y%m%d-%H%M%S')}.json"
        atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
        print(f"result: {path}")
        return path


def write_table(output: str | os.PathLike, lines: list[str], script: str) -> Path:
    """Write a markdown result (``lines``) with a last line saying when, by which command, on what, with which
    versions; print it too."""
    from mbbench._io import atomic_write_text
    from mbbench.bench.environment import cpu_model

    stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
    lines = [*lines, "", f"Made {stamp} by `{' '.join([script, *sys.argv[1:]])}` on {cpu_model()}; "
             + ", ".join(f"{k} {v}" for k, v in versions().items() if v) + "."]
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    print("\n".join(lines))
    return path


def parse_side_by_side(parser: argparse.ArgumentParser) -> argparse.Namespace:
    """Add the options every side-by-side benchmark takes (--repeats, --rounds, --output-dir, --conditions),
    parse, and create the output folder."""
    parser.add_argument("--repeats", type=int, default=4, help="side-by-side repeats (order alternates)")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--output-dir", type=Path, default=RESULTS, help="where the rows and the result go")
    parser.add_argument("--conditions", default="", help="e.g. 'quiet machine, nothing else running'")
    args = parser.parse_args()
    args.output_dir.mkdir(parents=True, exist_ok=True)
    return args
