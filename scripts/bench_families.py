#!/usr/bin/env python
"""Latency questions of the FastViT and MobileNetV3 families, measured side by side (timings never go in tests).

    python scripts/bench_families.py fastvit-reparam   # FastViT-T8 re-parameterized vs training form, 1 thread
    python scripts/bench_families.py hardswish         # MobileNetV3-Large at opset 12 (x * HardSigmoid(x))
                                                       # vs opset 17 (HardSwish), 1 and 2 threads

Both use bench_export.py's side-by-side runner: mbbench's own bench, an isolated subprocess per configuration,
the order alternated across repeats, a ratio of medians of p50 latencies. Rows go to
results/benchmarks/export-families-<what>-<time>.csv, figures with date, machine, load and versions to
families-<what>-<date>.json (``--output-dir`` elsewhere; ``--conditions`` says whether the machine was quiet).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from mbbench.export import export_onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import parse_side_by_side, Record  # noqa: E402  (sibling modules of this script, not a package)
from bench_export import report_ratio, save, side_by_side  # noqa: E402


def cmd_fastvit_reparam(args) -> None:
    record = Record("families-fastvit-reparam", args.output_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fused = export_onnx("fastvit-t8", output_dir=tmp, resolution=args.resolution)
        unfused = export_onnx("fastvit-t8", output_dir=tmp, resolution=args.resolution, reparam=False)
        print(f"nodes: fused {fused.nodes_after}, unfused {unfused.nodes_after}")
        files = {"fused": Path(fused.path), "unfused": Path(unfused.path)}
        result = side_by_side(files, [1], args, "families-fastvit-reparam")
    print("FastViT-T8 re-parameterized / training form:")
    save(record, args, result, report_ratio(result, "fused", "unfused", [1]),
         resolution=args.resolution, nodes={"fused": fused.nodes_after, "unfused": unfused.nodes_after})  # fmt: skip


def cmd_hardswish(args) -> None:
    record = Record("families-hardswish", args.output_dir)
    with tempfile.TemporaryDirectory() as tmp:
        decomposed = export_onnx("mobilenetv3-large", output_dir=tmp, resolution=args.resolution, opset=12)
        native = export_onnx("mobilenetv3-large", output_dir=tmp, resolution=args.resolution, opset=17)
        print(f"nodes: opset 12 {decomposed.nodes_after}, opset 17 {native.nodes_after}")
        files = {"opset12": Path(decomposed.path), "opset17": Path(native.path)}
        result = side_by_side(files, [1, 2], args, "families-hardswish")
    print("MobileNetV3-Large x * HardSigmoid(x) (opset 12) / HardSwish (opset 17):")
    save(record, args, result, report_ratio(result, "opset12", "opset17", [1, 2]),
         resolution=args.resolution, nodes={"opset12": decomposed.nodes_after, "opset17": native.nodes_after})  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = {"fastvit-reparam": cmd_fastvit_reparam, "hardswish": cmd_hardswish}
    parser.add_argument("what", choices=list(commands))
    parser.add_argument("--resolution", type=int, default=None, help="input size (default: the model's own)")
    args = parse_side_by_side(parser)
    commands[args.what](args)


if __name__ == "__main__":
    main()
