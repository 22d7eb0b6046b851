#!/usr/bin/env python
"""Coverage: every registry model at opsets 12, 13, 17, 18 and the newest, each checked against PyTorch.

    python scripts/export_matrix.py [--opsets 12,13,17,18,23] [--models NAME,...]
                                    [--output results/benchmarks/export-matrix.md]

Each export goes through ``mbbench.export_onnx`` (opset verified op by op, onnxsim, ONNX Runtime vs PyTorch
parity at 1e-4 relative) at the model's default resolution. Prints and writes a markdown table: the exporter
and fold path taken, node count and parity error per cell, or the error that says which opset is needed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mbbench.errors import MbbenchError
from mbbench.export import MAX_OPSET, export_onnx
from mbbench.models import list_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, write_table  # noqa: E402  (a sibling module of this script, not a package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opsets", default=f"12,13,17,18,{MAX_OPSET}")
    parser.add_argument("--models", default=",".join(list_models()))
    parser.add_argument("--output", default=str(RESULTS / "export-matrix.md"))
    args = parser.parse_args()
    opsets = [int(o) for o in args.opsets.split(",")]
    models = args.models.split(",")
    lines = [
        "| model | " + " | ".join(f"opset {o}" for o in opsets) + " |",
        "| :--- | " + " | ".join("---" for _ in opsets) + " |",
    ]
    failures = 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            cells = []
            for opset in opsets:
                try:
                    r = export_onnx(name, opset=opset, output_dir=tmp)
                    path = f"{r.exporter}{'/' + r.fold if r.fold else ''}"
                    cells.append(f"{path}, {r.nodes_after} nodes, {r.parity_max_rel:.1e}")
                except MbbenchError as exc:
                    failures += 1
                    cells.append(f"FAILED: {exc}")
                print(f"{name} opset {opset}: {cells[-1]}", flush=True)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"{len(models) * len(opsets) - failures} of {len(models) * len(opsets)} exports match PyTorch "
                 f"(parity: max abs error / max |output|, tolerance 1e-4); {time.perf_counter() - started:.0f} s.")
    write_table(args.output, lines, "scripts/export_matrix.py")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
