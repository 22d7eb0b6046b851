#!/usr/bin/env python
"""Runtime benchmark (issue 22): the headline models in every runtime at 1 and 2 threads, as ratios to ONNX
Runtime measured side by side, with each artifact's fidelity and the cells a runtime refused.

    python scripts/bench_runtimes.py                        # 4 models x 5 runtimes x threads 1,2, 3 repeats
    python scripts/bench_runtimes.py --models mobileone-s0 --runtimes onnxruntime,mnn --repeats 1 --rounds 5

Each model is exported once (opset 17, its own resolution) and converted once per runtime (mbbench's cache). The
measurements are mbbench's own bench: every (model, runtime, threads) in a fresh worker, the whole plan shuffled
(seeded) and repeated, so the runtimes of one model are interleaved in time and a slow minute of the machine does
not fall on one runtime. Per (model, threads, runtime) the figure is the median of the repeats' p50s, and the ratio
is that over ONNX Runtime's; the spread is the min-max of the per-repeat ratios. Rows go to
results/benchmarks/runtimes-<time>.csv (mbbench report reads it), the figures to runtimes-<time>.json.
Run it on a quiet machine: nothing else measuring or compiling beside it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

import mbbench
from mbbench.export import export_onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, Record  # noqa: E402  (a sibling module of this script, not a package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobileone-s0,mobilevit-xxs,mobilevitv2-050,fastvit-t8")
    parser.add_argument("--runtimes", default="onnxruntime,openvino,mnn,ncnn,litert")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--resolution", type=int, default=None, help="default: each model's own (224 / 256)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--models-dir", type=Path, default=None, help="keep exports and artifacts here (cached)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--conditions", default="")
    parser.add_argument("--table", type=Path, metavar="CSV", help="only print the markdown table of an earlier run")
    args = parser.parse_args()
    if args.table:
        print(markdown_table(summarise(pd.read_csv(args.table)), args.runtimes.split(",")))
        return
    record = Record("runtimes", args.output_dir)
    csv = args.output_dir / f"runtimes-{record.started.strftime('%Y%m%d-%H%M%S')}.csv"
    runtimes = args.runtimes.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.models_dir or Path(tmp)
        paths = [export_onnx(name, resolution=args.resolution, output_dir=folder).path
                 for name in args.models.split(",")]
        for repeat in range(args.repeats):
            mbbench.benchmark(paths, threads=args.threads, rounds=args.rounds, warmup=5, runtimes=runtimes,
                              shuffle=True, seed=repeat, output=csv, append=csv.exists(),
                              extra_columns={p: {"repeat": repeat} for p in paths}, on_error="warn")
    rows = pd.read_csv(csv)
    figures = summarise(rows)
    table = markdown_table(figures, runtimes)
    print(table, flush=True)
    record.save({"rows": str(csv), "by_configuration": figures, "table": table}, args.conditions)


def summarise(rows: pd.DataFrame) -> dict[str, dict]:
    """Per (model, threads, runtime): median p50 over the repeats, ratio to ONNX Runtime (median and min-max of
    the per-repeat ratios), the artifact's cosine, or the refusal's reason."""
    out: dict[str, dict] = {}
    measured = rows[rows["unsupported"].isna()] if "unsupported" in rows else rows
    reference = measured[measured["runtime"] == "onnxruntime"].set_index(["model", "threads", "repeat"])["p50_ms"]
    for (model, threads, runtime), group in rows.groupby(["model", "threads", "runtime"], sort=False):
        key = f"{model} {threads}t {runtime}"
        reasons = group["unsupported"].dropna() if "unsupported" in group else pd.Series(dtype=object)
        if not reasons.empty:
            out[key] = {"unsupported": str(reasons.iloc[0])}
            continue
        ratios = [p50 / reference[(model, threads, r)] for r, p50 in zip(group["repeat"], group["p50_ms"])
                  if (model, threads, r) in reference.index]
        out[key] = {
            "p50_ms": round(statistics.median(group["p50_ms"]), 4),
            "ratio_to_onnxruntime": round(statistics.median(ratios), 3) if ratios else None,
            "ratio_range": [round(min(ratios), 3), round(max(ratios), 3)] if ratios else None,
            "cosine": None if pd.isna(group["conversion_cosine"].iloc[0]) else float(group["conversion_cosine"].iloc[0]),
            "applied_threads": sorted(set(group["applied_threads"].dropna().astype(int))),
            "applied_precision": sorted(set(group["applied_precision"].dropna())),
            "unstable_repeats": int(group["unstable"].astype(str).str.lower().eq("true").sum()),
        }
    return out


def markdown_table(figures: dict[str, dict], runtimes: list[str]) -> str:
    """Model x threads rows, one column per runtime: ONNX Runtime's p50, every other runtime's ratio to it (range
    of the per-repeat ratios in brackets) or "not supported [n]", the reasons numbered below."""
    keys = list(dict.fromkeys(k.rsplit(" ", 1)[0] for k in figures))
    keys.sort(key=lambda k: (k.split()[0], int(k.split()[1][:-1])))
    reasons: dict[str, int] = {}
    lines = ["| model | threads | " + " | ".join(runtimes) + " |", "| :--- | ---: |" + " ---: |" * len(runtimes)]
    for key in keys:
        model, threads = key.split()
        cells = []
        for runtime in runtimes:
            figure = figures.get(f"{key} {runtime}")
            if figure is None:
                cells.append("-")
            elif "unsupported" in figure:
                number = reasons.setdefault(f"{runtime}: {figure['unsupported']}", len(reasons) + 1)
                cells.append(f"not supported [{number}]")
            elif runtime == "onnxruntime":
                cells.append(f"{figure['p50_ms']:.2f} ms")
            else:
                low, high = figure["ratio_range"]
                cells.append(f"x{figure['ratio_to_onnxruntime']:.2f} ({low:.2f}-{high:.2f})")
        lines.append(f"| {model} | {threads[:-1]} | " + " | ".join(cells) + " |")
    lines.append("")
    lines += [f"[{n}] {reason}" + "  " for reason, n in reasons.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
