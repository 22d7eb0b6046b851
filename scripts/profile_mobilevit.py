#!/usr/bin/env python
"""Profile benchmark (issue 14): where MobileViT v1's and v2's milliseconds go, side by side.

    python scripts/profile_mobilevit.py                       # mobilevit-xxs vs mobilevitv2-050, 1 thread
    python scripts/profile_mobilevit.py --threads 1,2 --rounds 50 --conditions "quiet machine"
    python scripts/profile_mobilevit.py --rounds 3 --warmup 1 --resolution 64    # a smoke run

Each model is exported at opset 17 (each model's own resolution, 256) into a temporary folder with
``mbbench.export_onnx`` and profiled with ``mbbench profile``'s library (:func:`mbbench.bench.profiling.profile_models`:
the rounds without the profiler first, then the profiled rounds). The profile folder (profile.csv, profile.md,
profile.png; the raw traces are left out, 1.5 MB each) goes to results/benchmarks/profile-mobilevit-<time>/, the
figures (date, machine, load, versions) to results/benchmarks/profile-mobilevit-<time>.json, and the two tables the
README quotes are printed as markdown:

- by role: the blocks of the command's own table (module paths at depth 3) summed by what they are in a MobileViT
  network (MobileNetV2 stages, local representation, unfold/fold, attention, feed-forward, ...);
- by op type: the command's own table, the largest op types.

It also checks the issue's done-when on the first model at the first thread count: blocks named by the model's own
module paths, the transformer stages visible (``layer_N.1/global_rep``), the shares adding up to 100%, and node time
covering at least 90% of the end-to-end time (else the reasons the summary gives).
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import mbbench
from mbbench.bench.formatting import format_ms, threads_label
from mbbench.bench.modelfile import inspect_model
from mbbench.bench.attribution import LAYOUT_OPS, block_name
from mbbench.bench.profiling import BETWEEN_OPS, profile_models
from mbbench.report.profile import coverage_notes, prepare_folder, write_profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import RESULTS, Record  # noqa: E402  (a sibling module of this script, not a package)

#: What each block of a MobileViT network is, by its module path (depth 3, the first level keeps its index). The
#: first pattern that matches the whole block name wins.
ROLES = (
    ("stem and MobileNetV2 stages (conv_1, layer_1, layer_2)", r"(conv_1|layer_[12]\.\d+)(/.*)?"),
    ("MobileNetV2 down-sampling blocks (layer_3.0, layer_4.0, layer_5.0)", r"layer_[345]\.0(/.*)?"),
    ("local representation (local_rep: 3x3 and 1x1 conv)", r"layer_[345]\.1/local_rep(/.*)?"),
    ("attention (pre_norm_mha / pre_norm_attn, with its norm)", r"layer_[345]\.1/global_rep/pre_norm_(mha|attn)"),
    ("feed-forward (pre_norm_ffn, with its norm)", r"layer_[345]\.1/global_rep/pre_norm_ffn"),
    ("rest of the transformer (final norm, residual adds)", r"layer_[345]\.1/global_rep(/.*)?"),
    ("unfold / fold (reshapes, transposes in layer_N.1)", r"layer_[345]\.1"),
    ("projection and fusion (conv_proj, fusion)", r"layer_[345]\.1/(conv_proj|fusion)(/.*)?"),
    ("head (conv_1x1_exp, classifier)", r"(conv_1x1_exp|classifier)([./].*)?"),
)
OTHER = "other"


def role(block: str) -> str:
    return next((name for name, pattern in ROLES if re.fullmatch(pattern, block)), OTHER)


def by_role(profile) -> dict[str, float]:
    out: dict[str, float] = {}
    for group in profile.by_block(depth=3):
        key = role(group.name)
        out[key] = out.get(key, 0.0) + group.mean_ms
    return out


def ops_by_role(profile) -> dict[str, dict[str, float]]:
    """Per role, ms per kernel op type (what attention is made of in each model)."""
    out: dict[str, dict[str, float]] = {}
    for node in profile.nodes:
        ops = out.setdefault(role(block_name(tuple(node.path.split("/")) if node.path else (), 3)), {})
        ops[node.op_type] = ops.get(node.op_type, 0.0) + node.mean_ms
    return {name: dict(sorted(ops.items(), key=lambda item: -item[1])) for name, ops in out.items()}


def layout_conversions(profile) -> dict:
    """ORT's NCHWc layout conversions (ReorderInput/ReorderOutput): ms, share, calls, and ms per block."""
    nodes = [n for n in profile.nodes if n.op_type in LAYOUT_OPS]
    blocks: dict[str, float] = {}
    for n in nodes:
        blocks[n.block] = blocks.get(n.block, 0.0) + n.mean_ms
    ms = sum(n.mean_ms for n in nodes)
    return {"ms": ms, "share": ms / profile.end_to_end_ms, "calls": sum(n.calls for n in nodes), "by_block_ms": blocks}


def markdown_tables(profiles, top_ops: int) -> str:
    heads = [f"{p.model}, {threads_label(p.threads)}" for p in profiles]
    lines = ["| where | " + " | ".join(f"{h}: ms | share" for h in heads) + " |",
             "| :--- |" + " ---: | ---: |" * len(profiles)]
    roles = [by_role(p) for p in profiles]
    for name in [n for n, _ in ROLES] + [OTHER]:
        if any(name in r for r in roles):
            cells = [f"{format_ms(r[name])} | {r[name] / p.end_to_end_ms:.1%}" if name in r else "- | -"
                     for r, p in zip(roles, profiles)]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(f"| {BETWEEN_OPS} | " + " | ".join(f"{format_ms(p.between_ops_ms)} | {p.between_ops_share:.1%}"
                                                    for p in profiles) + " |")
    lines.append("| **end to end** (profiled) | " + " | ".join(f"**{format_ms(p.end_to_end_ms)}** | 100%"
                                                              for p in profiles) + " |")
    lines.append("| without the profiler | " + " | ".join(f"{format_ms(p.plain_ms_mean)} |" for p in profiles) + " |")
    ops = {}
    for p in profiles:
        for g in p.by_op():
            ops[g.name] = max(ops.get(g.name, 0.0), g.share)
    names = sorted(ops, key=lambda n: -ops[n])[:top_ops]
    per = [{g.name: g for g in p.by_op()} for p in profiles]
    lines += ["", "| op type (kernel) | covers | " + " | ".join(f"{h}: ms | share | calls" for h in heads) + " |",
              "| :--- | :--- |" + " ---: | ---: | ---: |" * len(profiles)]
    for name in names:
        covers = ", ".join(dict.fromkeys(c for groups in per if name in groups for c in groups[name].covers))
        cells = [f"{format_ms(g[name].mean_ms)} | {g[name].share:.1%} | {g[name].calls:g}" if name in g else "- | - | -"
                 for g in per]
        lines.append(f"| {name} | {covers} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def done_when(p) -> dict:
    blocks = [g.name for g in p.by_block()]
    transformer = [b for b in blocks if b.endswith("/global_rep")]
    shares = sum(n.share for n in p.nodes) + p.between_ops_share
    return {
        "model": p.model, "threads": p.threads,
        "blocks_by_module_path": all(b.split("/")[0].split(".")[0] in ("conv_1", "layer_1", "layer_2", "layer_3",
                                                                      "layer_4", "layer_5", "conv_1x1_exp",
                                                                      "classifier")
                                     or b == "(root)" for b in blocks),
        "transformer_blocks": transformer,
        "shares_sum": shares,
        "coverage": p.coverage,
        "coverage_at_least_90": p.coverage >= 0.90,
        "why_not": coverage_notes(p),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobilevit-xxs,mobilevitv2-050")
    parser.add_argument("--threads", default="1", help="comma list of thread counts")
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--resolution", type=int, default=None, help="default: each model's own (256)")
    parser.add_argument("--top-ops", type=int, default=16, help="op types in the printed op table")
    parser.add_argument("--output-dir", type=Path, default=RESULTS, help="where the profile folder and figures go")
    parser.add_argument("--conditions", default="", help="e.g. 'quiet machine, nothing else running'")
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.output_dir.mkdir(parents=True, exist_ok=True)
    record = Record("profile-mobilevit", args.output_dir)
    folder = prepare_folder(args.output_dir / f"profile-mobilevit-{record.started.strftime('%Y%m%d-%H%M%S')}")

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name in models:
            exported = mbbench.export_onnx(name, opset=17, resolution=args.resolution, output_dir=tmp)
            files.append(inspect_model(exported.path))
        profiles = profile_models(files, threads=args.threads, rounds=args.rounds, warmup=args.warmup,
                                  depth=args.depth, note=print,
                                  done=lambda p: print(f"{p.model} @ {threads_label(p.threads)}: "
                                                       f"{format_ms(p.end_to_end_ms)} ms, node time {p.coverage:.1%}"))
    written = write_profile(profiles, folder, traces=False)
    tables = markdown_tables(profiles, args.top_ops)
    print()
    print(tables)
    check = done_when(profiles[0])
    print(f"done-when on {check['model']} at {threads_label(check['threads'])}: blocks by module path "
          f"{check['blocks_by_module_path']}, transformer blocks {check['transformer_blocks']}, shares add up to "
          f"{check['shares_sum']:.6f}, node time covers {check['coverage']:.1%} (>= 90%: "
          f"{check['coverage_at_least_90']})")
    for why in check["why_not"]:
        print(f"  why: {why}")
    for p in profiles:
        roles = ops_by_role(p)
        for name in [n for n, _ in ROLES if n.startswith(("attention", "feed-forward"))]:
            ops = ", ".join(f"{op} {format_ms(ms)}" for op, ms in roles.get(name, {}).items())
            print(f"{p.model}: {name.split(' (')[0]}: {ops}")
        layout = layout_conversions(p)
        print(f"{p.model}: layout conversions {format_ms(layout['ms'])} ms ({layout['share']:.1%}, "
              f"{layout['calls']:g} calls)")
    print(f"profile folder: {folder} ({', '.join(p.name for p in written)})")
    figures = {
        "profiles": [
            {"model": p.model, "threads": p.threads, "rounds": p.rounds, "warmup": p.warmup, "depth": p.depth,
             "end_to_end_ms": p.end_to_end_ms, "end_to_end_std_ms": p.stats.std_ms, "plain_ms": p.plain_ms_mean,
             "node_ms": p.node_ms, "coverage": p.coverage, "between_ops_ms": p.between_ops_ms,
             "outside_executor_ms": p.outside_executor_ms, "kernels_per_run": p.kernels_per_run,
             "others_cpu_pct": p.others_cpu_pct, "contended": p.contended, "oversubscribed": p.oversubscribed,
             "by_role_ms": by_role(p), "ops_by_role_ms": ops_by_role(p),
             "layout_conversions": layout_conversions(p), "by_op": [g.__dict__ for g in p.by_op()],
             "by_block": [g.__dict__ for g in p.by_block()], "notes": list(p.notes)}
            for p in profiles
        ],
        "done_when": check,
        "tables_markdown": tables,
        "profile_folder": str(folder),
        "opset": 17,
        "random_init": True,
    }  # fmt: skip
    record.save(figures, args.conditions)


if __name__ == "__main__":
    main()
