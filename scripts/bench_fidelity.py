"""Fidelity of `mbbench bench`: does its timed loop agree with a bare onnxruntime loop, and what do 2 threads buy?

This is a benchmark, not a test (timings depend on the machine and its load). It

1. times MobileOne-S0 at 1 thread through mbbench's own path (the runtime seam opens the session, bench's input
   maker feeds it, bench's timed loop ``timed_rounds`` runs it: what a sweep's worker does) and through a bare
   ``session.run`` loop written here against onnxruntime alone, with the session options spelled out to match
   bench's defaults; the two are interleaved finely in one process (:mod:`mbbench.bench.interleave`: a few
   rounds of one, a few of the other, the order reversed every block, many blocks), so this VM's switches
   between two speed levels hit both sides alike; the ratio mbbench / bare must sit within 0.97-1.03;
2. measures the 1- vs 2-thread speed-up of the same file the same way (two sessions, interleaved).

``--runs`` repeats both (default 3) so the spread between runs is on record. The figures, with the date, machine,
load average and versions, go to ``results/benchmarks/bench-fidelity-<time>.json`` (``--output-dir`` elsewhere).

Usage::

    python scripts/bench_fidelity.py --conditions "quiet machine"   # exports mobileone-s0 to a temp folder first
    python scripts/bench_fidelity.py --model models/mobileone-s0-224-opset17.onnx --blocks 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, Record  # noqa: E402  (a sibling module of this script, not a package)

LOW, HIGH = 0.97, 1.03


def bare_side(path: Path, threads: int, seed: int):
    """The reference: nothing from mbbench; graph optimisation all, sequential executor, 1 inter-op thread, ORT's
    default spinning, a seeded standard-normal input."""
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    arg = session.get_inputs()[0]
    shape = [d if isinstance(d, int) else 1 for d in arg.shape]
    feed = {arg.name: np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)}

    def block(rounds: int) -> list[int]:
        samples = []
        for _ in range(rounds):
            t0 = time.perf_counter_ns()
            session.run(None, feed)
            samples.append(time.perf_counter_ns() - t0)
        return samples

    return block


def mobileone_s0(folder: Path) -> Path:
    import mbbench

    result = mbbench.export_onnx("mobileone-s0", path=folder / "mobileone-s0-224-opset17.onnx")
    return Path(result.path)


def main(argv=None) -> int:
    from contextlib import ExitStack

    from mbbench.bench.interleave import compare_sides, open_side
    from mbbench.bench.options import BenchConfig

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="ONNX file to use (default: export mobileone-s0 now)")
    parser.add_argument("--runs", type=int, default=4, help="independent interleaved runs, the sides opened in the "
                        "other order every other run (default 4)")
    parser.add_argument("--blocks", type=int, default=100, help="blocks per run (default 100)")
    parser.add_argument("--block-rounds", type=int, default=10, help="timed rounds per side per block (default 10)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=RESULTS, help="where the result goes")
    parser.add_argument("--conditions", default="", help="e.g. 'quiet machine, nothing else running'")
    args = parser.parse_args(argv)

    record = Record("bench-fidelity", args.output_dir)
    settings = {"blocks": args.blocks, "block_rounds": args.block_rounds, "warmup": args.warmup}
    with tempfile.TemporaryDirectory(prefix="mbbench-fidelity-") as tmp:
        model = args.model or mobileone_s0(Path(tmp))
        print(f"model: {model}")
        print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
        harness, speedups = [], []
        config = BenchConfig(seed=args.seed)
        for run in range(args.runs):
            order = 1 if run % 2 == 0 else -1  # the side opened first can run up to 4.5% slower: alternate
            with ExitStack() as stack:
                # mbbench's own path: the runtime seam's session, bench's inputs, bench's timed loop
                makers = [("mbbench", lambda: open_side(stack, model, 1, config)),
                          ("bare", lambda: bare_side(model, 1, args.seed))][::order]
                sides = {label: make() for label, make in makers}
                result = compare_sides(sides, **settings).summary("mbbench", "bare")
            harness.append(result)
            print(f"  run {run + 1}: mbbench p50 {result['new_p50_ms']:.3f} ms, bare p50 {result['base_p50_ms']:.3f} ms,"
                  f" ratio {result['ratio']:.4f} (blocks' IQR {result['ratio_q1']:.4f}-{result['ratio_q3']:.4f})",
                  flush=True)
            with ExitStack() as stack:
                sides = {label: open_side(stack, model, threads, config)
                         for label, threads in [("2 threads", 2), ("1 thread", 1)][::order]}
                result = compare_sides(sides, **settings).summary("2 threads", "1 thread")
            speedups.append(result)
            print(f"  run {run + 1}: 1 thread p50 {result['base_p50_ms']:.3f} ms, 2 threads p50 "
                  f"{result['new_p50_ms']:.3f} ms, speed-up {1 / result['ratio']:.3f}x", flush=True)
        ratios = [r["ratio"] for r in harness]
        ratio = statistics.median(ratios)
        agree = (max(ratios) - min(ratios)) / ratio
        verdict = "PASS" if LOW <= ratio <= HIGH else "FAIL"
        print(f"p50 ratio mbbench/bare at 1 thread: median of runs {ratio:.4f} (runs {', '.join(f'{r:.4f}' for r in ratios)};"
              f" they agree within {agree * 100:.1f}%) -> {verdict} (target {LOW}-{HIGH})")
        factors = [1 / r["ratio"] for r in speedups]
        speedup = statistics.median(factors)
        print(f"1 -> 2 thread speed-up (p50): median {speedup:.3f}x (runs {', '.join(f'{f:.3f}' for f in factors)})")
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        record.save({
            "model": Path(model).name, "runs": args.runs, **settings, "harness": harness, "ratio_median": ratio,
            "ratios": ratios, "runs_agree_within": agree, "target": [LOW, HIGH], "verdict": verdict,
            "speedup_runs": speedups, "speedups": factors, "speedup_median": speedup,
        }, args.conditions)  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
