#!/usr/bin/env python
"""Export benchmarks (issue: opset-aware export). Timings belong here, never in tests.

    python scripts/bench_export.py all        # wall time of `mbbench export --all` at the default opset
    python scripts/bench_export.py reparam    # MobileOne-S0 fused vs --no-reparam, 1 thread
    python scripts/bench_export.py fold       # MobileViTv2-1.0 opset 18: --fold reshape vs col2im, 1 and 2 threads
    python scripts/bench_export.py public     # MobileViTv2-1.0: mbbench's graph vs the best public export forms
    python scripts/bench_export.py forms      # MobileViTv2-1.0: the exactly equal fold forms against each other

Every comparison is measured side by side in one run through mbbench's own bench (isolated subprocess per
configuration, order alternated across repeats) and reported as a ratio of medians of p50 latencies; absolute
times on a small shared machine are noisy, ratios measured together are not. Raw rows go to results/.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mbbench
from mbbench.export import export_onnx
from mbbench.models import set_fold_impl

RESULTS = Path(__file__).resolve().parents[1] / "results"


def side_by_side(files: dict[str, Path], threads: list[int], repeats: int, rounds: int, tag: str) -> dict:
    """p50 per (label, threads) for each repeat; labels alternate order between repeats."""
    labels = list(files)
    p50 = {(label, t): [] for label in labels for t in threads}
    output = RESULTS / f"export-{tag}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
    for repeat in range(repeats):
        order = labels if repeat % 2 == 0 else labels[::-1]
        frame = mbbench.benchmark(
            [files[label] for label in order], threads=threads, rounds=rounds, warmup=5, output=output,
            append=True, extra_columns={str(files[label]): {"variant": label} for label in labels},
            on_error="raise",
        )  # fmt: skip
        for row in frame.itertuples():
            p50[(row.variant, row.threads)].append(row.p50_ms)
    print(f"rows: {output}")
    return {key: statistics.median(values) for key, values in p50.items()} | {"_all": p50}


def report_ratio(result: dict, new: str, base: str, threads: list[int]) -> None:
    for t in threads:
        a, b = result[(new, t)], result[(base, t)]
        spread = result["_all"]
        print(
            f"  {t} thread(s): {new} {a:.2f} ms / {base} {b:.2f} ms = {a / b:.3f}"
            f"   (per repeat: {[round(x, 2) for x in spread[(new, t)]]} vs {[round(x, 2) for x in spread[(base, t)]]})"
        )


def cmd_all(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "mbbench", "export", "--all", "--output-dir", tmp], check=True)
        print(f"export --all (opset 17, simplify + parity): {time.perf_counter() - start:.1f} s wall")


def cmd_reparam(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fused = export_onnx("mobileone-s0", output_dir=tmp)
        unfused = export_onnx("mobileone-s0", output_dir=tmp, reparam=False)
        print(f"nodes: fused {fused.nodes_after}, unfused {unfused.nodes_after}")
        files = {"fused": Path(fused.path), "unfused": Path(unfused.path)}
        result = side_by_side(files, [1], args.repeats, args.rounds, "reparam")
    print("MobileOne-S0 re-parameterized / multi-branch (target <= 0.30):")
    report_ratio(result, "fused", "unfused", [1])


def cmd_fold(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            fold: Path(export_onnx("mobilevitv2-100", opset=18, fold=fold, output_dir=tmp).path)
            for fold in ("reshape", "col2im")
        }
        result = side_by_side(files, [1, 2], args.repeats, args.rounds, "fold")
    print("MobileViTv2-1.0, opset 18, --fold reshape / --fold col2im (target <= 1.00):")
    report_ratio(result, "reshape", "col2im", [1, 2])


def _public(fold_impl: str, path: Path) -> Path:
    """The graph a plain export of the reference model gives: norms as exported, the given fold form."""
    model = set_fold_impl(mbbench.create_model("mobilevitv2-100"), fold_impl)
    fold = "col2im" if fold_impl == "unfold" else "reshape"
    export_onnx(model, path, opset=18, fold=fold, fuse_norms=False, name="mobilevitv2-100", resolution=256)
    return path


def cmd_public(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {
            "mbbench-col2im": Path(export_onnx("mobilevitv2-100", opset=18, fold="col2im", output_dir=tmp).path),
            "mbbench-reshape": Path(export_onnx("mobilevitv2-100", opset=18, fold="reshape", output_dir=tmp).path),
            "public-col2im": _public("unfold", tmp / "public-col2im.onnx"),
            "public-pixel": _public("pixel", tmp / "public-pixel.onnx"),
        }
        result = side_by_side(files, [1, 2], args.repeats, args.rounds, "public")
    print("MobileViTv2-1.0 at 256, opset 18: mbbench's graphs (GroupNorm affine folded) / public export forms:")
    report_ratio(result, "mbbench-col2im", "public-col2im", [1, 2])
    report_ratio(result, "mbbench-reshape", "public-pixel", [1, 2])
    print("best of each side:")
    report_ratio(result, "mbbench-reshape", "public-pixel", [1, 2])


def cmd_forms(args) -> None:
    import mbbench.export.api as api

    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for label, fold, impl in (("col2im", "col2im", "unfold"), ("pixel", "reshape", "pixel"),
                                  ("transpose", "reshape", "reshape")):  # fmt: skip
            saved = dict(api._FOLD_IMPL)
            api._FOLD_IMPL["reshape"] = impl
            try:
                files[label] = Path(export_onnx("mobilevitv2-100", Path(tmp) / f"{label}.onnx", opset=18, fold=fold).path)
            finally:
                api._FOLD_IMPL.update(saved)
        result = side_by_side(files, [1, 2], args.repeats, args.rounds, "forms")
    print("MobileViTv2-1.0, opset 18, fold forms (norms fused in all):")
    report_ratio(result, "pixel", "col2im", [1, 2])
    report_ratio(result, "transpose", "col2im", [1, 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["all", "reparam", "fold", "public", "forms"])
    parser.add_argument("--repeats", type=int, default=4, help="side-by-side repeats (order alternates)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    RESULTS.mkdir(exist_ok=True)
    {"all": cmd_all, "reparam": cmd_reparam, "fold": cmd_fold, "public": cmd_public, "forms": cmd_forms}[args.what](args)


if __name__ == "__main__":
    main()
