#!/usr/bin/env python
"""Coverage: every registry model quantized to INT8 (and any other precision asked) at opsets 13 and newer.

    python scripts/precision_matrix.py [--opsets 13,17,18,23] [--precisions int8] [--models NAME,...]
                                       [--resolution N] [--output results/benchmarks/precision-matrix.md]

Each cell is one ``mbbench.export_precisions`` run at the model's default resolution (or ``--resolution``): the
FP32 export verified against PyTorch, then each precision derived from it, checked (onnx.checker, the opset
kept, an ONNX Runtime session) and judged against the FP32 graph on 64 held-out random inputs. A cell shows
the node count, the fidelity cosine and top-1 agreement, or the error, which names the op that blocks it.
Random-init networks: the fidelity describes a random network, not a trained one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from mbbench.errors import MbbenchError
from mbbench.export import MAX_OPSET, export_precisions
from mbbench.models import list_models

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, write_table  # noqa: E402  (a sibling module of this script, not a package)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--opsets", default=f"13,17,18,{MAX_OPSET}")
    parser.add_argument("--precisions", default="int8")
    parser.add_argument("--models", default=",".join(list_models()))
    parser.add_argument("--resolution", type=int, default=None)
    parser.add_argument("--output", default=str(RESULTS / "precision-matrix.md"))
    args = parser.parse_args()
    opsets = [int(o) for o in args.opsets.split(",")]
    precisions = [p for p in args.precisions.split(",") if p and p != "fp32"]
    models = args.models.split(",")
    columns = [(opset, p) for opset in opsets for p in precisions]
    lines = [
        "| model | " + " | ".join(f"opset {o} {p}" for o, p in columns) + " |",
        "| :--- | " + " | ".join("---" for _ in columns) + " |",
    ]
    failures, cells_done = 0, 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name in models:
            cells = []
            for opset in opsets:
                try:
                    made = export_precisions(name, precisions, opset=opset, resolution=args.resolution,
                                             output_dir=tmp)  # fmt: skip
                    results = {r.precision: r for r in made}
                    found = [f"{r.nodes_after} nodes, cos {r.fidelity_cosine:.4f}, top-1 {r.fidelity_top1:.0%}"
                             for r in (results[p] for p in precisions)]  # fmt: skip
                except MbbenchError as exc:
                    failures += len(precisions)
                    found = [f"FAILED: {exc}"] * len(precisions)
                cells += found
                cells_done += len(precisions)
                print(f"{name} opset {opset}: {'; '.join(found)}", flush=True)
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"{cells_done - failures} of {cells_done} precision exports succeed "
                 f"({', '.join(precisions)}; fidelity against the FP32 graph on 64 held-out random inputs, random "
                 f"calibration, random-init networks); {time.perf_counter() - started:.0f} s.")  # fmt: skip
    write_table(args.output, lines, "scripts/precision_matrix.py")
    raise SystemExit(1 if failures else 0)


if __name__ == "__main__":
    main()
