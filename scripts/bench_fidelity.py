"""Fidelity of `mbbench bench`: does its p50 agree with a bare onnxruntime loop, and what do 2 threads buy?

This is a benchmark, not a test (timings depend on the machine and its load). It

1. measures MobileOne-S0 at 1 thread with ``mbbench.benchmark`` (isolated, as the CLI does) and with a
   bare ``session.run`` loop written here against onnxruntime alone, in a fresh process with the same
   session options, interleaved A B B A ... so that slow drifts of the machine hit both sides equally;
   the p50 ratio mbbench / bare must sit within 0.97-1.03;
2. measures the 1- vs 2-thread speed-up of the same model with ``mbbench.benchmark``, interleaved too.

The figures, with the date, machine, load average and versions, go to
``results/benchmarks/bench-fidelity-<time>.json`` (``--output-dir`` elsewhere).

Usage::

    python scripts/bench_fidelity.py --conditions "quiet machine"   # exports mobileone-s0 to a temp folder first
    python scripts/bench_fidelity.py --model models/mobileone-s0-224-opset17.onnx --repeats 8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, Record  # noqa: E402  (a sibling module of this script, not a package)

LOW, HIGH = 0.97, 1.03

# The reference: nothing from mbbench, the session options spelled out to match mbbench's defaults
# (graph optimisation all, sequential executor, 1 inter-op thread, ORT's default spinning).
BARE_LOOP = r"""
import json, sys, time
import numpy as np
import onnxruntime as ort

path = sys.argv[1]
threads, rounds, warmup, seed = (int(a) for a in sys.argv[2:6])
options = ort.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
arg = session.get_inputs()[0]
shape = [d if isinstance(d, int) else 1 for d in arg.shape]
feed = {arg.name: np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)}
session.run(None, feed)
for _ in range(warmup):
    session.run(None, feed)
samples = []
for _ in range(rounds):
    t0 = time.perf_counter_ns()
    session.run(None, feed)
    samples.append(time.perf_counter_ns() - t0)
print(json.dumps({"p50_ms": float(np.percentile(np.array(samples) / 1e6, 50))}))
"""


def bare_p50(path: Path, threads: int, rounds: int, warmup: int, seed: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", BARE_LOOP, str(path), str(threads), str(rounds), str(warmup), str(seed)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)["p50_ms"]


def mbbench_p50(path: Path, threads, rounds: int, warmup: int, seed: int) -> dict[int, float]:
    from mbbench import benchmark

    frame = benchmark([path], threads=threads, rounds=rounds, warmup=warmup, seed=seed, isolate=True,
                      on_error="raise")
    return dict(zip(frame["threads"].tolist(), frame["p50_ms"].tolist()))


def mobileone_s0(folder: Path) -> Path:
    import mbbench

    result = mbbench.export_onnx("mobileone-s0", path=folder / "mobileone-s0-224-opset17.onnx")
    return Path(result.path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="ONNX file to use (default: export mobileone-s0 now)")
    parser.add_argument("--repeats", type=int, default=6, help="A/B pairs for the ratio, and 1/2-thread pairs")
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=RESULTS, help="where the result goes")
    parser.add_argument("--conditions", default="", help="e.g. 'quiet machine, nothing else running'")
    args = parser.parse_args(argv)

    record = Record("bench-fidelity", args.output_dir)
    with tempfile.TemporaryDirectory(prefix="mbbench-fidelity-") as tmp:
        model = args.model or mobileone_s0(Path(tmp))
        print(f"model: {model}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")

        pairs = []
        for i in range(args.repeats):
            # A B, then B A: a linear drift of the machine cancels out over each pair of pairs
            order = ("mbbench", "bare") if i % 2 == 0 else ("bare", "mbbench")
            got = {}
            for side in order:
                if side == "bare":
                    got[side] = bare_p50(model, 1, args.rounds, args.warmup, args.seed)
                else:
                    got[side] = mbbench_p50(model, 1, args.rounds, args.warmup, args.seed)[1]
            pairs.append(got)
            print(f"  pair {i + 1}: mbbench p50 {got['mbbench']:.3f} ms, bare p50 {got['bare']:.3f} ms, "
                  f"ratio {got['mbbench'] / got['bare']:.4f}")
        ratios = [p["mbbench"] / p["bare"] for p in pairs]
        ratio = statistics.median(ratios)
        of_medians = statistics.median(p["mbbench"] for p in pairs) / statistics.median(p["bare"] for p in pairs)
        verdict = "PASS" if LOW <= ratio <= HIGH else "FAIL"
        print(f"p50 ratio mbbench/bare at 1 thread: median of pairs {ratio:.4f} (range {min(ratios):.4f}-"
              f"{max(ratios):.4f}), ratio of medians {of_medians:.4f} -> {verdict} (target {LOW}-{HIGH})")

        speedups = []
        for i in range(args.repeats):
            order = (1, 2) if i % 2 == 0 else (2, 1)
            p50 = mbbench_p50(model, order, args.rounds, args.warmup, args.seed)
            speedups.append(p50[1] / p50[2])
            print(f"  pair {i + 1}: 1 thread p50 {p50[1]:.3f} ms, 2 threads p50 {p50[2]:.3f} ms, "
                  f"speed-up {p50[1] / p50[2]:.3f}x")
        speedup = statistics.median(speedups)
        print(f"1 -> 2 thread speed-up (p50): median {speedup:.3f}x (range {min(speedups):.3f}-{max(speedups):.3f})")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        record.save({
            "model": Path(model).name, "rounds": args.rounds, "warmup": args.warmup, "repeats": args.repeats,
            "pairs": pairs, "ratio_median": ratio, "ratio_of_medians": of_medians, "target": [LOW, HIGH],
            "verdict": verdict, "speedups": speedups, "speedup_median": speedup,
        }, args.conditions)  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
