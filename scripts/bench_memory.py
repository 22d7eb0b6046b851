#!/usr/bin/env python
"""Memory benchmark (issue 23): what the headline models cost in RAM, at 1 and 2 threads, with ONNX Runtime's CPU
arena and memory-pattern planner on and off.

    python scripts/bench_memory.py                                   # the four headline models, threads 1,2
    python scripts/bench_memory.py --models mobileone-s0 --repeats 1 --rounds 3 --resolution 64     # a smoke run

Each model is exported once (opset 17, its own resolution); every (model, threads, arena, mem_pattern) is measured
by mbbench's own bench in a fresh worker, which records the worker's own peak resident set over the imported
runtime (``peak_delta_mib``), its anonymous part (``heap_delta_mib``) and the high-water mark itself
(``peak_rss_mib``): see mbbench/bench/memory.py. Memory barely depends on the machine's load, but repeats show
how much it moves; the figures are the min-max over the repeats. Rows go to
results/benchmarks/memory-<time>.csv, the figures to results/benchmarks/memory-<time>.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import mbbench
from mbbench.export import export_onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, Record  # noqa: E402  (a sibling module of this script, not a package)

SETTINGS = {  # name -> ONNX Runtime options
    "default": (),
    "no-arena": ("arena=off",),
    "no-mem-pattern": ("mem_pattern=off",),
    "neither": ("arena=off", "mem_pattern=off"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobileone-s0,mobilevit-xxs,mobilevitv2-050,fastvit-t8")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--resolution", type=int, default=None, help="default: each model's own (224 / 256)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--conditions", default="")
    args = parser.parse_args()
    record = Record("memory", args.output_dir)
    csv = args.output_dir / f"memory-{record.started.strftime('%Y%m%d-%H%M%S')}.csv"
    threads = [int(t) for t in args.threads.split(",")]
    figures: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            path = export_onnx(name, resolution=args.resolution, output_dir=tmp).path
            for setting, options in SETTINGS.items():
                seen: dict[int, list[dict]] = {t: [] for t in threads}
                for _ in range(args.repeats):
                    frame = mbbench.benchmark([path], threads=threads, rounds=args.rounds, warmup=2,
                                              runtime_options=options, output=csv, append=csv.exists(),
                                              extra_columns={path: {"memory_setting": setting}}, on_error="raise")
                    for row in frame.itertuples():
                        seen[row.threads].append({"peak_delta": row.peak_delta_mib, "heap_delta": row.heap_delta_mib,
                                                  "peak_rss": row.peak_rss_mib, "p50_ms": row.p50_ms,
                                                  "applied": row.applied_settings})
                for t, runs in seen.items():
                    key = f"{name} {t}t {setting}"
                    figures[key] = {
                        f"{what}_mib": [min(r[what] for r in runs), max(r[what] for r in runs)]
                        for what in ("peak_delta", "heap_delta", "peak_rss")
                    } | {"p50_ms": [min(r["p50_ms"] for r in runs), max(r["p50_ms"] for r in runs)],
                         "applied": runs[0]["applied"], "model_bytes": Path(path).stat().st_size}
                    cost = figures[key]["peak_delta_mib"]
                    heap = figures[key]["heap_delta_mib"]
                    print(f"{key:<40} peak over runtime {cost[0]:6.1f}-{cost[1]:6.1f} MiB, heap {heap[0]:6.1f}-"
                          f"{heap[1]:6.1f} MiB", flush=True)
    record.save({"rows": str(csv), "by_configuration": figures}, args.conditions)


if __name__ == "__main__":
    main()
