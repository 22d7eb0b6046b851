#!/usr/bin/env python
"""Latency prediction, validated honestly (issue 25): build a predictor for this machine (ONNX Runtime, 1 thread)
within a budget, then predict and measure models it never learned from.

    python scripts/bench_predict.py --budget 15            # the issue's setting
    python scripts/bench_predict.py --budget 2 --held-out 3 --zoo mobileone-s0   # a smoke run

Held out from the fit: the 31 zoo models at their default resolution (exported at opset 17), and generated
variants of MobileOne, MobileNetV3 and MobileViT from a seed the predictor never saw. Each is measured by
mbbench's own bench (isolated worker, p50 of ``--rounds``), in ``--repeats`` passes over the list in alternating
order (the median of the passes' p50s is "measured"), and predicted three ways:

- ``kernel``: mbbench predict (kernels under the device's fusion patterns, a forest per kernel family);
- ``per-op``: the same regressors with every op its own kernel (no fusion detection);
- ``flops``: latency proportional to MACs (plus a constant), fitted on the predictor's own training variants.

Per method and family: RMSPE, and the share of models within +-10% and +-5% of measured. Rows go to
results/benchmarks/predict-<time>.csv, the figures to predict-<time>.json, the predictor next to them.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, Record  # noqa: E402  (a sibling module of this script, not a package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", type=float, default=15.0, help="minutes of measurement for the build")
    parser.add_argument("--held-out", type=int, default=12, help="generated variants held out (families in turn)")
    parser.add_argument("--zoo", default="all", help="zoo models to predict: all, or a comma list")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0, help="the build's variant seed (held-out: seed + 1000)")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--conditions", default="")
    parser.add_argument("--reuse", type=Path, metavar="CSV", help="predict again with this code, from an earlier "
                        "run's rows (its measured p50s) and --predictor (its predictor file): nothing is measured")
    parser.add_argument("--predictor", type=Path, metavar="FILE", help="with --reuse: the predictor to load")
    args = parser.parse_args()
    if (args.reuse is None) != (args.predictor is None):
        parser.error("--reuse and --predictor go together")

    from mbbench.bench.modelfile import inspect_model
    from mbbench.bench.options import BenchConfig
    from mbbench.bench.runner import run_sweep
    from mbbench.export import export_onnx
    from mbbench.models import list_models
    from mbbench.predict.build import build_predictor, export_variant
    from mbbench.predict.variants import random_variants

    record = Record("predict", args.output_dir)
    stamp = record.started.strftime("%Y%m%d-%H%M%S")
    if args.reuse is None:
        report = build_predictor(budget_minutes=args.budget, seed=args.seed, note=print)
        predictor = report.predictor
        predictor_path = predictor.save(args.output_dir / f"predictor-{stamp}.json")
        print(f"predictor: {len(predictor.samples)} kernels from {len(report.profiled)} variants in "
              f"{report.seconds / 60:.1f} min -> {predictor_path}")
        build = {"budget_minutes": args.budget, "variants": len(report.profiled),
                 "minutes": round(report.seconds / 60, 2)}
    else:
        from mbbench.predict.model import Predictor

        predictor, predictor_path = Predictor.load(args.predictor), args.predictor
        build = {"reused": str(args.predictor), "rows_reused": str(args.reuse), "variants": len(predictor.models)}
        with open(args.reuse, newline="") as handle:
            earlier = {row["model"]: float(row["measured_p50_ms"]) for row in csv.DictReader(handle)}

    with tempfile.TemporaryDirectory(prefix="mbbench-bench-predict-") as tmp:
        folder = Path(tmp)
        zoo = list_models() if args.zoo == "all" else [n.strip() for n in args.zoo.split(",")]
        cases = []  # (split, family, name, path)
        for name in zoo:
            made = export_onnx(name, output_dir=folder / "zoo")
            cases.append(("zoo", made.family, name, Path(made.path)))
        held = folder / "held-out"
        held.mkdir()
        for variant in random_variants(args.held_out, seed=args.seed + 1000):
            _, path = export_variant(variant, held, args.seed)
            cases.append(("held-out", variant.family, variant.name, path))
        models = [inspect_model(path) for *_, path in cases]
        p50: dict[str, list[float]] = {m.path.as_posix(): [] for m in models}
        if args.reuse is not None:
            for (_, _, name, _), model in zip(cases, models):
                if name in earlier:
                    p50[model.path.as_posix()].append(earlier[name])
        config = BenchConfig(threads=(1,), rounds=args.rounds, warmup=5)
        for repeat in range(args.repeats if args.reuse is None else 0):
            order = models if repeat % 2 == 0 else list(reversed(models))
            result = run_sweep(order, config)
            for row in result.rows:
                p50[row["file"]].append(float(row["p50_ms"]))
            print(f"pass {repeat + 1}/{args.repeats}: {len(result.rows)} measured", flush=True)

        # the FLOPs baseline: least squares ms = a * MACs + b over the predictor's own training variants
        macs = np.array([m["macs"] for m in predictor.models])
        measured_train = np.array([m["measured_ms"] for m in predictor.models])
        a, b = np.linalg.lstsq(np.stack([macs, np.ones_like(macs)], axis=1), measured_train, rcond=None)[0]
        rows = []
        for (split, family, name, path), model in zip(cases, models):
            values = p50[model.path.as_posix()]
            if not values:
                print(f"{name}: not measured (failed); left out")
                continue
            measured = statistics.median(values)
            kernel = predictor.predict(path, name)
            per_op = predictor.predict(path, name, fused=False)
            rows.append({"split": split, "family": family or "", "model": name, "file": path.name,
                         "measured_p50_ms": round(measured, 4), "kernel_ms": round(kernel.predicted_ms, 4),
                         "kernel_low_ms": round(kernel.low_ms, 4), "kernel_high_ms": round(kernel.high_ms, 4),
                         "per_op_ms": round(per_op.predicted_ms, 4), "flops_ms": round(float(a * kernel.macs + b), 4),
                         "macs": kernel.macs, "kernels": len(kernel.kernels)})  # fmt: skip
    csv_path = args.output_dir / f"predict-{stamp}.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)

    inside = sum(r["kernel_low_ms"] <= r["measured_p50_ms"] <= r["kernel_high_ms"] for r in rows) / len(rows)
    figures = {"build": {**build, "kernels": len(predictor.samples), "predictor": str(predictor_path),
                         "patterns": ["+".join(p) for p in predictor.patterns]},
               "rows": str(csv_path), "measured_inside_10_90": round(inside, 3), "scores": {}}
    print(f"\n{'split':9} {'family':12} {'method':7} {'n':>3} {'RMSPE':>7} {'+-10%':>6} {'+-5%':>6}")
    for split in ("zoo", "held-out"):
        for family in ["all", *sorted({r["family"] for r in rows if r["split"] == split})]:
            chosen = [r for r in rows if r["split"] == split and (family == "all" or r["family"] == family)]
            if not chosen:
                continue
            for method in ("kernel", "per_op", "flops"):
                errors = [r[f"{method}_ms"] / r["measured_p50_ms"] - 1 for r in chosen]
                score = {"n": len(errors), "rmspe": math.sqrt(statistics.fmean(e * e for e in errors)),
                         "within_10": sum(abs(e) <= 0.10 for e in errors) / len(errors),
                         "within_5": sum(abs(e) <= 0.05 for e in errors) / len(errors)}
                figures["scores"][f"{split}/{family}/{method}"] = {k: round(v, 4) for k, v in score.items()}
                print(f"{split:9} {family:12} {method:7} {score['n']:3d} {score['rmspe']:7.1%} "
                      f"{score['within_10']:6.0%} {score['within_5']:6.0%}")
    print(f"rows: {csv_path}")
    record.save(figures, args.conditions)


if __name__ == "__main__":
    main()
