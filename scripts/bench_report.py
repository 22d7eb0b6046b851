#!/usr/bin/env python
"""Report benchmark (issue 9): how long `mbbench report` takes on a 100k-row CSV.

    python scripts/bench_report.py            # generate the CSV, time markdown and --plot, write the result
    python scripts/bench_report.py --rows 20000 --no-write   # a smaller smoke run, result printed only

The CSV is generated deterministically (fixed seed): 250 models of three families, thread counts 1, 2, 4 and 8,
appended 100 times (as repeated `bench --append` runs make it), so 100,000 rows. Each timing is the wall time
of a fresh `python -m mbbench report ...` subprocess, imports included, as a user would see it. The result
(date, machine, versions, seconds) goes to results/benchmarks/report-100k.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "results" / "benchmarks" / "report-100k.md"
THREADS = (1, 2, 4, 8)
FAMILIES = ("mobileone", "mobilevit", "mobilevitv2")


def make_csv(path: Path, rows: int, seed: int = 0) -> Path:
    """A bench-schema CSV of ``rows`` rows: 250 models x 4 thread counts, repeated until ``rows``."""
    rng = np.random.default_rng(seed)
    n_models = 250
    models = [f"{FAMILIES[i % 3]}-m{i:03d}" for i in range(n_models)]
    macs = rng.uniform(0.1e9, 3e9, n_models)
    params = macs / 150
    base = macs / 1e9 * 12 + rng.uniform(0.5, 3, n_models)  # ms at 1 thread
    per_run = n_models * len(THREADS)
    repeats = -(-rows // per_run)
    model_idx = np.tile(np.repeat(np.arange(n_models), len(THREADS)), repeats)[:rows]
    threads = np.tile(np.array(THREADS * n_models), repeats)[:rows]
    mean = base[model_idx] / np.minimum(threads, 2) ** 0.8 * rng.lognormal(0, 0.03, rows)
    std = mean * rng.uniform(0.01, 0.12, rows)
    frame = pd.DataFrame(
        {
            "model": np.array(models)[model_idx], "threads": threads, "rounds": 30, "mean_ms": mean,
            "std_ms": std, "min_ms": mean - 1.5 * std, "p50_ms": mean - 0.1 * std, "p90_ms": mean + 1.2 * std,
            "p99_ms": mean + 2 * std, "max_ms": mean + 2.5 * std, "cv": std / mean,
            "unstable": std / mean > 0.1, "host": "bench-host", "cpu_model": "Bench CPU", "logical_cores": 2,
            "oversubscribed": threads > 2, "family": np.array([FAMILIES[i % 3] for i in range(n_models)])[model_idx],
            "params": params[model_idx].round(), "macs": macs[model_idx].round(),
        }
    )  # fmt: skip
    frame.to_csv(path, index=False)
    return path


def timed(*args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mbbench", "report", *args], capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"report {' '.join(args)} failed:\n{done.stderr}")
    return elapsed


def versions() -> str:
    import matplotlib
    import scipy

    import mbbench

    return (
        f"mbbench {mbbench.__version__}, Python {platform.python_version()}, pandas {pd.__version__}, "
        f"numpy {np.__version__}, scipy {scipy.__version__}, matplotlib {matplotlib.__version__}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--no-write", action="store_true", help="print the result only")
    parser.add_argument("--note", default="", help="conditions, e.g. 'measured while other jobs ran'")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        csv = make_csv(Path(tmp) / "big.csv", args.rows)
        markdown = timed(str(csv), "--format", "markdown", "--output", str(Path(tmp) / "big.md"))
        plot = timed(str(csv), "--format", "markdown", "--output", str(Path(tmp) / "big2.md"),
                     "--plot", str(Path(tmp) / "big.png"))  # fmt: skip
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.node()}, {platform.machine()}, {os.cpu_count()} logical CPUs, {platform.platform()}"
    lines = [
        f"# `mbbench report` on a {args.rows:,}-row CSV",
        "",
        "Produced by `python scripts/bench_report.py` (wall time of one `python -m mbbench report` subprocess,",
        "imports included).",
        "",
        "| what | seconds |",
        "| :--- | ---: |",
        f"| `--format markdown --output big.md` | {markdown:.1f} |",
        f"| `--format markdown --output big2.md --plot big.png` | {plot:.1f} |",
        "",
        f"- date: {now}",
        f"- machine: {machine}",
        f"- versions: {versions()}",
        *([f"- conditions: {args.note}"] if args.note else []),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        RESULT.parent.mkdir(parents=True, exist_ok=True)
        RESULT.write_text(text)
        print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
