"""Wall time of ``mbbench list``: the goal is well under 2 s on a 2-core machine, without importing torch.

This is a benchmark, not a test (timings depend on the machine and its load). Each repeat runs
``python -m mbbench list`` (and ``list --json``) in a fresh process, as a user would, and times it from
spawn to exit; the median of the repeats is reported, with min and max. The result, with the date, machine,
load average and versions, goes to ``results/benchmarks/list.md`` (``--output`` elsewhere).

Usage::

    python scripts/bench_list.py --repeats 9 --conditions "quiet machine"
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, load_average, versions  # noqa: E402  (a sibling module of this script)

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 2.0


def time_command(args: list[str], repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mbbench", *args], cwd=REPO, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return times


def imports_torch() -> bool:
    code = "import runpy, sys; sys.argv = ['mbbench', 'list']\ntry:\n    runpy.run_module('mbbench', run_name='__main__')\n" \
           "except SystemExit:\n    pass\nprint('torch' in sys.modules, file=sys.stderr)"  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return proc.stderr.strip().splitlines()[-1] == "True"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--conditions", default="", help="e.g. 'quiet machine' or 'other jobs running'")
    parser.add_argument("--output", type=Path, default=RESULTS / "list.md")
    args = parser.parse_args()

    from mbbench._io import atomic_write_text
    from mbbench.bench.environment import machine_facts

    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    load_before = load_average()
    rows = []
    for command in (["list"], ["list", "--json"]):
        times = time_command(command, args.repeats)
        rows.append((" ".join(["mbbench", *command]), statistics.median(times), min(times), max(times)))
    torch_imported = imports_torch()
    machine = machine_facts()
    lines = [
        "# `mbbench list` wall time",
        "",
        f"Produced by `python scripts/bench_list.py --repeats {args.repeats}` on {date}. Each repeat is a fresh",
        "`python -m mbbench ...` process timed from spawn to exit.",
        "",
        "| command | median (s) | min (s) | max (s) | goal |",
        "| :--- | ---: | ---: | ---: | :--- |",
        *[f"| `{cmd}` | {med:.3f} | {lo:.3f} | {hi:.3f} | {'met' if med < GOAL_S else 'MISSED'} (< {GOAL_S:g} s) |"
          for cmd, med, lo, hi in rows],  # fmt: skip
        "",
        f"- imports torch: {'yes' if torch_imported else 'no'}",
        f"- conditions: {args.conditions or 'not stated'}; load average before {load_before}, after {load_average()}",
        f"- machine: {machine.get('cpu_model')}, {machine.get('physical_cores')} physical / "
        f"{machine.get('logical_cores')} logical cores, {machine.get('os')}",
        f"- versions: {', '.join(f'{k} {v}' for k, v in versions().items())}",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output, "\n".join(lines))
    print("\n".join(lines))
    print(f"result: {args.output}")


if __name__ == "__main__":
    main()
