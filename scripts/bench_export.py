#!/usr/bin/env python
"""Export benchmarks: how fast the exported graphs are, and how long exporting takes. Timings belong here, never
in tests.

    python scripts/bench_export.py public     # mbbench's exports against a plain public export of the same function
                                              # (MobileOne-S0, MobileViT-XXS, MobileViTv2-0.5/1.0), opset 18
    python scripts/bench_export.py forms      # MobileViTv2-0.5 and 1.0, opset 18: the four exactly equal unfold/fold
                                              # forms against col2im (what --fold auto takes there)
    python scripts/bench_export.py fold       # MobileViTv2-1.0 at opset 17 and 18: --fold pixel / --fold col2im
                                              # at 18, and the opset-17 default (pixel) against both
    python scripts/bench_export.py norms      # MobileViTv2-1.0 opset 18: GroupNorm affine fused / --no-fuse-norms
    python scripts/bench_export.py reparam    # MobileOne-S0 fused vs --no-reparam
    python scripts/bench_export.py all --repeats 2   # `mbbench export --all` wall time: --jobs 1 against the default

Every latency comparison interleaves the files in one process (:mod:`mbbench.bench.interleave`): each file opened
once with bench's default session settings, then blocks of ``--block-rounds`` timed rounds per file, the order
reversed every block, ``--blocks`` blocks, at 1 and 2 threads (``--threads``); the ratio is the median of the
per-block ratios, and ``--runs`` independent runs (default 3) show how far it moves. This VM's speed switches
between two levels from one stretch to the next; a level shift between two sweeps' configurations reads as a
difference between the files, a ratio of neighbouring blocks does not. The figures, with the date, machine, load
and versions, go to results/benchmarks/export-<what>-<time>.json (``--output-dir`` elsewhere; ``--conditions``
says whether the machine was quiet).
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
from mbbench.models import FOLD_FORMS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import parse_side_by_side, Record  # noqa: E402  (a sibling module of this script, not a package)


def side_by_side(files: dict[str, Path], args) -> dict[int, list]:
    """``--runs`` interleaved comparisons of ``files`` at each of ``--threads``: {threads: [Comparison, ...]}."""
    from mbbench.bench.interleave import compare_files

    runs: dict[int, list] = {}
    for threads in args.threads:
        for run in range(args.runs):
            # the files are opened (their memory placed) in the given order: reverse it every other run
            ordered = files if run % 2 == 0 else dict(reversed(list(files.items())))
            runs.setdefault(threads, []).append(
                compare_files(ordered, threads, blocks=args.blocks, block_rounds=args.block_rounds))
            print(f"  {threads} thread(s), run {run + 1} of {args.runs} done", flush=True)
    return runs


def report_ratio(runs: dict[int, list], new: str, base: str, **facts) -> list[dict]:
    """Print ``new / base`` per thread count (the median over runs, and each run) and return the figures."""
    figures = []
    for threads, comparisons in runs.items():
        per_run = [c.summary(new, base) for c in comparisons]
        ratio = statistics.median(r["ratio"] for r in per_run)
        print(f"  {threads} thread(s): {new} / {base} = {ratio:.3f}   (runs: "
              + ", ".join(f"{r['ratio']:.3f} [blocks' IQR {r['ratio_q1']:.3f}-{r['ratio_q3']:.3f}]" for r in per_run)
              + f"; p50 {per_run[0]['new_p50_ms']:.2f} vs {per_run[0]['base_p50_ms']:.2f} ms in run 1)", flush=True)
        figures.append({**facts, "threads": threads, "new": new, "base": base, "ratio": ratio,
                        "spread": max(r["ratio"] for r in per_run) - min(r["ratio"] for r in per_run), "runs": per_run})
    return figures


def save(record: Record, args, ratios: list[dict], **more) -> None:
    settings = {"runs": args.runs, "blocks": args.blocks, "block_rounds": args.block_rounds, "threads": args.threads}
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
        runs = side_by_side({"fused": Path(fused.path), "unfused": Path(unfused.path)}, args)
    print("MobileOne-S0 re-parameterized / multi-branch (target <= 0.30):")
    save(record, args, report_ratio(runs, "fused", "unfused"),
         nodes={"fused": fused.nodes_after, "unfused": unfused.nodes_after})


def cmd_fold(args) -> None:
    """What ``--fold auto`` takes at each opset, against the other choice there: at 18 col2im / pixel; at 17 only
    pixel exports, measured against both opset-18 forms so the opset's cost is visible too."""
    record = Record("export-fold", args.output_dir)
    with tempfile.TemporaryDirectory() as tmp:
        files = {f"opset18-{fold}": Path(export_onnx("mobilevitv2-100", opset=18, fold=fold, output_dir=tmp).path)
                 for fold in ("col2im", "pixel")}
        files["opset17-pixel"] = Path(export_onnx("mobilevitv2-100", opset=17, output_dir=tmp).path)
        runs = side_by_side(files, args)
    print("MobileViTv2-1.0 at 256: the fold forms --fold auto chooses between (target: auto's pick <= 1.00):")
    ratios = report_ratio(runs, "opset18-col2im", "opset18-pixel")
    ratios += report_ratio(runs, "opset17-pixel", "opset18-pixel")
    save(record, args, ratios)


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
            "fused": Path(export_onnx("mobilevitv2-100", opset=18, fold="col2im", output_dir=tmp).path),
            "unfused": _unfused("col2im", tmp / "unfused-col2im.onnx"),
        }
        runs = side_by_side(files, args)
    print("MobileViTv2-1.0 at 256, opset 18, --fold col2im: GroupNorm affine fused / not fused:")
    save(record, args, report_ratio(runs, "fused", "unfused"))


def cmd_forms(args) -> None:
    record = Record("export-forms", args.output_dir)
    ratios = []
    for name in args.models.split(",") if args.models else ("mobilevitv2-050", "mobilevitv2-100"):
        with tempfile.TemporaryDirectory() as tmp:
            files = {fold: Path(export_onnx(name, Path(tmp) / f"{fold}.onnx", opset=18, fold=fold).path)
                     for fold in FOLD_FORMS}  # fmt: skip
            print(f"{name}, opset 18, the unfold/fold forms (norms fused in all):", flush=True)
            runs = side_by_side(files, args)
        for other in FOLD_FORMS[1:]:
            ratios += report_ratio(runs, other, "col2im", model=name)
    save(record, args, ratios)


PUBLIC_MODELS = ("mobileone-s0", "mobilevit-xxs", "mobilevitv2-050", "mobilevitv2-100")


def public_export(name: str, path: Path, opset: int) -> Path:
    """What a user gets from the authors' code: the same function (MobileOne re-parameterized as its authors
    instruct; MobileViT v2 with ml-cvnets' own ``F.unfold``/``F.fold``, GroupNorm affine left alone), the same
    seeded weights as mbbench's export, ``torch.onnx.export`` with its default settings at ``opset``, then onnxsim.
    The file is checked against PyTorch, so the comparison is of two correct graphs."""
    import numpy as np
    import onnx
    import onnxruntime as ort
    import onnxsim
    import torch

    from mbbench.models import deploy, model_info

    # the registry models' own forms are the authors' code: F.unfold/F.fold in v2, the reshape in v1
    model = deploy(mbbench.create_model(name), reparameterize=True)
    resolution = model_info(name).default_resolution
    x = torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(1))
    torch.onnx.export(model, (x,), str(path), opset_version=opset)
    simplified, ok = onnxsim.simplify(onnx.load(str(path)))
    if not ok:
        raise SystemExit(f"onnxsim could not check its simplification of {name}'s public export")
    onnx.save(simplified, str(path))
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    error = float(np.abs(got - expected).max() / np.abs(expected).max())
    if error > 1e-4:
        raise SystemExit(f"the public export of {name} differs from PyTorch by {error:.2e}")
    return path


def cmd_public(args) -> None:
    """Every model: mbbench's default export at ``--opset`` against the public one; the ratio is mbbench / public
    (< 1: mbbench's is faster)."""
    record = Record("export-public", args.output_dir)
    ratios = []
    for name in args.models.split(",") if args.models else PUBLIC_MODELS:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            ours = export_onnx(name, opset=args.opset, output_dir=tmp, **_export_overrides(args))
            public = public_export(name, tmp / f"{name}-public.onnx", args.opset)
            print(f"{name}: mbbench's {Path(ours.path).name} (fold {ours.fold}) against the public export", flush=True)
            runs = side_by_side({"mbbench": Path(ours.path), "public": public}, args)
        ratios += report_ratio(runs, "mbbench", "public", model=name, opset=args.opset, fold=ours.fold,
                               mbbench_file=Path(ours.path).name)
    save(record, args, ratios, opset=args.opset, export_options=_export_overrides(args))


def _export_overrides(args) -> dict:
    return {"fold": args.fold} if getattr(args, "fold", None) else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = {"all": cmd_all, "reparam": cmd_reparam, "fold": cmd_fold, "norms": cmd_norms, "forms": cmd_forms,
                "public": cmd_public}
    parser.add_argument("what", choices=list(commands))
    parser.add_argument("--models", help="public, forms: comma list (default: %s; forms: mobilevitv2-050,"
                        "mobilevitv2-100)" % ",".join(PUBLIC_MODELS))
    parser.add_argument("--opset", type=int, default=18, help="public: the opset of both exports (default 18, "
                        "the first at which the public MobileViT v2 exports: F.fold needs Col2Im)")
    parser.add_argument("--threads", type=lambda v: [int(t) for t in v.split(",")], default=[1, 2],
                        help="thread counts (default 1,2)")
    parser.add_argument("--runs", type=int, default=4, help="independent interleaved runs, the files opened in the "
                        "other order every other run (default 4)")
    parser.add_argument("--blocks", type=int, default=60, help="blocks per run (default 60)")
    parser.add_argument("--block-rounds", type=int, default=10, help="timed rounds per file per block (default 10)")
    parser.add_argument("--fold", help="public: mbbench's --fold (default: its auto)")
    args = parse_side_by_side(parser)
    commands[args.what](args)


if __name__ == "__main__":
    main()
