#!/usr/bin/env python
"""Wall time of the commands whose duration the README states, as a new user runs them.

    python scripts/bench_commands.py run --conditions "quiet machine"     # `mbbench run` (the default models)
    python scripts/bench_commands.py reproduce-quick                       # `mbbench study reproduce --quick`
    python scripts/bench_commands.py activations                           # `mbbench study activations`
    python scripts/bench_commands.py blocks | attention | reproduce

Each command runs as ``python -m mbbench ...`` in a fresh temporary folder, so ``models/`` starts empty (the
"cold" time, exports included). The commands that reuse exports (run, reproduce) then run a second time in the
same folder (the "cached" time, exports reused). The figures, with the date, machine, load average and
versions, go to ``results/benchmarks/command-<name>-<time>.json`` (``--output-dir`` elsewhere).
``--extra "--threads 1 --rounds 2"`` appends options (for a smoke run; such figures are not the README's).
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, Record  # noqa: E402  (a sibling module of this script, not a package)

#: name -> (mbbench arguments, whether a second run reuses the first one's exports)
COMMANDS = {
    "run": (["run"], True),
    "reproduce-quick": (["study", "reproduce", "--quick"], True),
    "reproduce": (["study", "reproduce"], True),
    "activations": (["study", "activations"], False),
    "blocks": (["study", "blocks"], False),
    "attention": (["study", "attention"], False),
}


def wall(argv: list[str], cwd: Path, output: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "mbbench", *argv, "--output-dir", str(output)], cwd=cwd, check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=list(COMMANDS))
    parser.add_argument("--extra", default="", help="options appended to the command (smoke runs)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS, help="where the result goes")
    parser.add_argument("--conditions", default="", help="e.g. 'quiet machine, nothing else running'")
    args = parser.parse_args(argv)

    command, reuses = COMMANDS[args.what]
    command = [*command, *shlex.split(args.extra)]
    record = Record(f"command-{args.what}", args.output_dir)
    with tempfile.TemporaryDirectory(prefix="mbbench-command-") as tmp:
        cold = wall(command, Path(tmp), Path(tmp) / "first")
        print(f"mbbench {' '.join(command)}: {cold:.1f} s wall (models/ empty: exports included)")
        figures = {"command": "mbbench " + " ".join(command), "cold_seconds": round(cold, 1)}
        if reuses:
            cached = wall(command, Path(tmp), Path(tmp) / "second")
            print(f"mbbench {' '.join(command)}: {cached:.1f} s wall (exports reused)")
            figures["cached_seconds"] = round(cached, 1)
    record.save(figures, args.conditions)
    return 0


if __name__ == "__main__":
    sys.exit(main())
