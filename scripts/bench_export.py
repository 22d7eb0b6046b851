#!/usr/bin/env python
"""Export benchmarks (issue: opset-aware export). Timings belong here, never in tests.

    python scripts/bench_export.py all --repeats 2   # `mbbench export --all` wall time: --jobs 1 against the default
    python scripts/bench_export.py reparam    # MobileOne-S0 fused vs --no-reparam, 1 thread
    python scripts/bench_export.py fold       # MobileViTv2-1.0 opset 18: --fold pixel vs col2im, 1 and 2 threads
    python scripts/bench_export.py norms      # MobileViTv2-1.0 opset 18: mbbench's export with vs without
                                              # GroupNorm affine fusion (--no-fuse-norms), same fold form
    python scripts/bench_export.py forms      # MobileViTv2-1.0: the exactly equal fold forms against each other

Every comparison is measured side by side in one run through mbbench's own bench (isolated subprocess per
configuration, order alternated across repeats) and reported as a ratio of medians of p50 latencies; absolute
times on a small shared machine are noisy, ratios measured together are not. The raw rows go to
results/benchmarks/export-<what>-<time>.csv and the figures, with the date, machine, load and versions, to
results/benchmarks/export-<what>-<time>.json (``--output-dir`` elsewhere; ``--conditions`` says whether the
machine was quiet).
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import parse_side_by_side, Record  # noqa: E402  (a sibling module of this script, not a package)


def side_by_side(files: dict[str, Path], threads: list[int], args, tag: str) -> dict:
    """p50 per (label, threads) for each repeat; labels alternate order between repeats."""
    labels = list(files)
    repeats, rounds = args.repeats, args.rounds
    p50 = {(label, t): [] for label in labels for t in threads}
    output = args.output_dir / f"export-{tag}-{time.strftime('%Y%m%d-%H%M%S')}.csv"
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
    return {key: statistics.median(values) for key, values in p50.items()} | {"_all": p50, "_rows": str(output)}


def report_ratio(result: dict, new: str, base: str, threads: list[int]) -> list[dict]:
    """Print ``new / base`` per thread count and return the figures for the record."""
    figures = []
    for t in threads:
        a, b = result[(new, t)], result[(base, t)]
        spread = result["_all"]
        print(
            f"  {t} thread(s): {new} {a:.2f} ms / {base} {b:.2f} ms = {a / b:.3f}"
            f"   (per repeat: {[round(x, 2) for x in spread[(new, t)]]} vs {[round(x, 2) for x in spread[(base, t)]]})"
        )
        figures.append({
            "threads": t, "new": new, "base": base, "new_p50_ms": a, "base_p50_ms": b, "ratio": a / b,
            "new_p50_per_repeat_ms": spread[(new, t)], "base_p50_per_repeat_ms": spread[(base, t)],
        })  # fmt: skip
    return figures


def save(record: Record, args, result: dict, ratios: list[dict], **more) -> None:
    settings = {"repeats": args.repeats, "rounds": args.rounds, "rows": result["_rows"]}
    record.save({"ratios": ratios, **settings, **more}, args.conditions)


def cmd_all(args) -> None:
    """``export --all`` one model after the other (``--jobs 1``, as before issue 24) and with the default jobs (one
    worker per CPU), alternated over ``--repeats`` (each from an empty folder): the wall times and their ratio."""
    record = Record("export-all", args.output_dir)
    walls: dict[str, list[float]] = {"jobs 1": [], "default jobs": []}
    files = 0
    for repeat in range(max(1, args.repeats)):
        order = list(walls) if repeat % 2 == 0 else list(reversed(walls))
        for setting in order:
            extra = ["--jobs", "1"] if setting == "jobs 1" else []
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "mbbench", "export", "--all", "--models-dir", tmp, *extra],
                               check=True, stdout=subprocess.DEVNULL)
                walls[setting].append(time.perf_counter() - start)
                files = len(list(Path(tmp).glob("*.onnx")))
            print(f"export --all ({setting}): {walls[setting][-1]:.1f} s wall, {files} files", flush=True)
    medians = {setting: statistics.median(values) for setting, values in walls.items()}
    ratio = medians["default jobs"] / medians["jobs 1"]
    print(f"median: jobs 1 {medians['jobs 1']:.1f} s, default jobs {medians['default jobs']:.1f} s "
          f"(ratio {ratio:.2f}); {files} files, opset 17, simplify + parity")
    record.save({"wall_seconds": round(medians["default jobs"], 1), "wall_seconds_jobs_1": round(medians["jobs 1"], 1),
                 "ratio_default_to_jobs_1": round(ratio, 3), "walls": {k: [round(v, 1) for v in vs]
                 for k, vs in walls.items()}, "repeats": args.repeats, "onnx_files": files, "opset": 17},
                args.conditions)


def cmd_reparam(args) -> None:
    record = Record("export-reparam", args.output_dir)
    with tempfile.TemporaryDirectory() as tmp:
        fused = export_onnx("mobileone-s0", output_dir=tmp)
        unfused = export_onnx("mobileone-s0", output_dir=tmp, reparam=False)
        print(f"nodes: fused {fused.nodes_after}, unfused {unfused.nodes_after}")
        files = {"fused": Path(fused.path), "unfused": Path(unfused.path)}
        result = side_by_side(files, [1], args, "reparam")
    print("MobileOne-S0 re-parameterized / multi-branch (target <= 0.30):")
    save(record, args, result, report_ratio(result, "fused", "unfused", [1]),
         nodes={"fused": fused.nodes_after, "unfused": unfused.nodes_after})


def cmd_fold(args) -> None:
    record = Record("export-fold", args.output_dir)
    with tempfile.TemporaryDirectory() as tmp:
        files = {
            fold: Path(export_onnx("mobilevitv2-100", opset=18, fold=fold, output_dir=tmp).path)
            for fold in ("pixel", "col2im")
        }
        result = side_by_side(files, [1, 2], args, "fold")
    print("MobileViTv2-1.0, opset 18, --fold pixel / --fold col2im (target <= 1.00):")
    save(record, args, result, report_ratio(result, "pixel", "col2im", [1, 2]))


def _unfused(fold_impl: str, path: Path) -> Path:
    """mbbench's own export of the same model and fold form with the GroupNorm affine left as separate ops."""
    model = mbbench.create_model("mobilevitv2-100", fold_impl=fold_impl)
    export_onnx(model, path, opset=18, fold=fold_impl, fuse_norms=False, name="mobilevitv2-100", resolution=256)
    return path


def cmd_norms(args) -> None:
    record = Record("export-norms", args.output_dir)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {
            "fused-col2im": Path(export_onnx("mobilevitv2-100", opset=18, fold="col2im", output_dir=tmp).path),
            "fused-pixel": Path(export_onnx("mobilevitv2-100", opset=18, fold="pixel", output_dir=tmp).path),
            "unfused-col2im": _unfused("col2im", tmp / "unfused-col2im.onnx"),
            "unfused-pixel": _unfused("pixel", tmp / "unfused-pixel.onnx"),
        }
        result = side_by_side(files, [1, 2], args, "norms")
    print("MobileViTv2-1.0 at 256, opset 18, mbbench's export: GroupNorm affine fused / not fused, same fold form:")
    ratios = report_ratio(result, "fused-col2im", "unfused-col2im", [1, 2])
    ratios += report_ratio(result, "fused-pixel", "unfused-pixel", [1, 2])
    best = []
    for t in (1, 2):
        # the fastest graph each setting can give, whichever fold form that is
        fused = min(("fused-col2im", "fused-pixel"), key=lambda label: result[(label, t)])
        unfused = min(("unfused-col2im", "unfused-pixel"), key=lambda label: result[(label, t)])
        ratio = result[(fused, t)] / result[(unfused, t)]
        print(f"  fastest of each, {t} thread(s): {fused} / {unfused} = {ratio:.3f}")
        best.append({"threads": t, "fused": fused, "unfused": unfused, "ratio": ratio})
    save(record, args, result, ratios, fastest_of_each=best)


def cmd_forms(args) -> None:
    record = Record("export-forms", args.output_dir)
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        for label, fold in (("col2im", "col2im"), ("pixel", "pixel"), ("transpose", "reshape")):
            files[label] = Path(export_onnx("mobilevitv2-100", Path(tmp) / f"{label}.onnx", opset=18, fold=fold).path)
        result = side_by_side(files, [1, 2], args, "forms")
    print("MobileViTv2-1.0, opset 18, fold forms (norms fused in all):")
    ratios = report_ratio(result, "pixel", "col2im", [1, 2]) + report_ratio(result, "transpose", "col2im", [1, 2])
    save(record, args, result, ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = {"all": cmd_all, "reparam": cmd_reparam, "fold": cmd_fold, "norms": cmd_norms, "forms": cmd_forms}
    parser.add_argument("what", choices=list(commands))
    args = parse_side_by_side(parser)
    commands[args.what](args)


if __name__ == "__main__":
    main()
