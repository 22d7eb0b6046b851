"""The attention study: multi-head self-attention (MobileViT v1) against separable self-attention (MobileViT v2).

Both are the zoo's own modules, measured as standalone graphs at ``k`` tokens of ``dim`` features:
:class:`~mbbench.models.mobilevit.MultiHeadAttention` (4 heads, one fused qkv projection, explicit
``softmax(q k^T) v``: 4 k dim^2 + 2 k^2 dim MACs, so O(k^2) once k > 2 dim) on ``(1, k, dim)``, and
:class:`~mbbench.models.mobilevitv2.LinearSelfAttention` (a 1x1 projection to one query channel plus keys and
values, a softmax over the k tokens, one weighted key sum: about 3 k dim^2 MACs, O(k)) on ``(1, dim, 1, k)``.

:func:`mbbench.export_onnx` traces every module on an image-shaped ``(1, 3, R, R)`` input, so each graph opens
with a patch embedding (a p x p, stride-p conv from 3 to ``dim`` channels giving a g x g grid, g = ceil(sqrt k),
R = g p >= 32) whose first k tokens enter the attention, and closes with the mean over tokens, so the output
does not grow with k. The embedding touches every input pixel once: R^2 * 3 * dim MACs, 0.8 M at dim 256 for
every k up to 1024 (R = 32), under 1% of either attention from k = 256 on.

Analysis: latency per k, the least-squares slope of log latency against log k for each kind over all the k
measured (MHA tends to 2 and separable attention to 1 as k grows; fixed costs flatten both at small k), the
slope between the two largest k, the same slopes of the MACs for reference, and the k where the two latency
curves cross (interpolated linearly in log-log between the measured k around a sign change).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from mbbench.bench.formatting import threads_label
from mbbench.errors import UserInputError
from mbbench.models.init import initialize
from mbbench.models.mobileformer import FormerToMobile, MobileToFormer
from mbbench.models.mobilevit import NUM_HEADS, MultiHeadAttention
from mbbench.models.mobilevitv2 import LinearSelfAttention
from mbbench.pipeline import RunFolder
from mbbench.studies._core import (
    DEFAULT_METRIC,
    StudyResult,
    StudySettings,
    Variant,
    check_metric,
    check_positive,
    run_study,
)
from mbbench.studies._plots import error_bars, error_bars_label
from mbbench.studies._summary import (
    FLAG_COLUMNS,
    flag_notes,
    latency_cell,
    metric_header,
    metric_name,
    ratio_cell,
    study_document,
)
from mbbench.studies.choices import ATTENTION_KINDS

STUDY = "attention"
KINDS = ATTENTION_KINDS
#: Mobile-Former's bridge: a handful of global tokens, here 6 as in its larger models (the paper's 151M and up)
CROSS_TOKENS = 6
_COLOURS = {"mha": "C0", "separable": "C1", "cross": "C2"}
DEFAULT_TOKENS = (64, 256, 1024, 4096)
DEFAULT_DIM = 256
#: MHA holds heads * k^2 float32 attention weights (twice, around the softmax): 0.5 GiB at 8192 tokens.
MAX_TOKENS = 8192
MAX_DIM = 2048
_MIN_IMAGE = 32  # export_onnx's smallest input (mbbench.export.api.MIN_RESOLUTION)


class TokenAttention(nn.Module):
    """Patch embedding -> the first ``tokens`` tokens -> one attention module -> mean over tokens.

    ``kind`` is ``"mha"`` (MobileViT v1's :class:`MultiHeadAttention` on (1, k, dim)), ``"separable"``
    (MobileViT v2's :class:`LinearSelfAttention` on (1, dim, 1, k)) or ``"cross"`` (Mobile-Former's two-way
    bridge: :class:`MobileToFormer` lets 6 learned tokens attend to the k positions, :class:`FormerToMobile` lets
    the k positions attend to the tokens; 4 k 6 dim MACs in the attention, linear in k, with no k x k map).
    :attr:`resolution` is the square image size the graph takes.
    """

    def __init__(self, kind: str, tokens: int, dim: int = DEFAULT_DIM, heads: int = NUM_HEADS) -> None:
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"attention kind must be one of {', '.join(KINDS)}, not {kind!r}")
        self.kind, self.tokens = kind, tokens
        self.resolution = self.image_size(tokens)
        patch = self.resolution // math.ceil(math.sqrt(tokens))
        self.embed = nn.Conv2d(3, dim, patch, stride=patch)
        if kind == "mha":
            self.attention = MultiHeadAttention(dim, heads)
        elif kind == "separable":
            self.attention = LinearSelfAttention(dim)
        else:
            self.global_tokens = nn.Parameter(torch.randn(1, CROSS_TOKENS, dim) * 0.1)
            self.mobile_to_former = MobileToFormer(dim, dim)
            self.former_to_mobile = FormerToMobile(dim, dim)

    @staticmethod
    def image_size(tokens: int) -> int:
        """R = g * p: a g x g grid (g = ceil(sqrt(tokens))) of p x p patches, the smallest with R >= 32."""
        grid = math.ceil(math.sqrt(tokens))
        return grid * max(1, math.ceil(_MIN_IMAGE / grid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2)[:, :, : self.tokens]  # (1, dim, k)
        if self.kind == "mha":
            return self.attention(tokens.transpose(1, 2)).mean(dim=1)
        if self.kind == "separable":
            return self.attention(tokens.unsqueeze(2)).mean(dim=(2, 3))
        grid = tokens.unsqueeze(2)  # (1, dim, 1, k): the feature map the bridge reads and writes
        z = self.mobile_to_former(grid, self.global_tokens)
        return self.former_to_mobile(grid, z).mean(dim=(2, 3)) + z.mean(dim=1)


def build_network(kind: str, tokens: int, dim: int = DEFAULT_DIM, seed: int = 0) -> TokenAttention:
    """The seeded graph in eval mode."""
    module = TokenAttention(kind, tokens, dim)
    return initialize(module, seed=seed, calibration_size=module.resolution)


def parse_tokens(spec: str | int | Iterable[int]) -> list[int]:
    """Token counts from ``"64,256,1024"`` (or ints), ascending, without repeats; each in 1..MAX_TOKENS."""
    if isinstance(spec, bool):
        raise UserInputError(f"invalid token counts {spec!r}: give a comma-separated list such as 64,256,1024")
    if isinstance(spec, int):
        items: list = [spec]
    elif isinstance(spec, str):
        items = [part.strip() for part in spec.split(",") if part.strip()]
    else:
        items = list(spec)
    counts = []
    for item in items:
        try:
            count = int(item) if not isinstance(item, float) or item.is_integer() else None
        except (TypeError, ValueError):
            count = None
        if count is None or isinstance(item, bool):
            raise UserInputError(f"token count {item!r} is not a whole number: give a list such as 64,256,1024")
        if not 1 <= count <= MAX_TOKENS:
            raise UserInputError(
                f"token count {count} is outside 1-{MAX_TOKENS}: multi-head attention holds heads x k^2 weights, "
                "so keep k at most 8192"
            )
        counts.append(count)
    if not counts:
        raise UserInputError("no token count given: pass a list such as --tokens 64,256,1024")
    return sorted(set(counts))


def study_variants(kinds: Sequence[str], tokens: Sequence[int], dim: int, seed: int) -> list[Variant]:
    return [
        Variant(f"attn-{kind}-k{k}", kind, str(k), lambda kind=kind, k=k: build_network(kind, k, dim, seed),
                TokenAttention.image_size(k))  # fmt: skip
        for kind in kinds
        for k in tokens
    ]


# --- analysis -------------------------------------------------------------------------------------------------


def loglog_slope(k: Sequence[float], y: Sequence[float]) -> float:
    """Least-squares slope of log(y) against log(k); NaN with fewer than two distinct positive points."""
    k, y = np.asarray(k, dtype=float), np.asarray(y, dtype=float)
    keep = (k > 0) & (y > 0) & np.isfinite(y)
    if len(np.unique(k[keep])) < 2:
        return float("nan")
    return float(np.polyfit(np.log(k[keep]), np.log(y[keep]), 1)[0])


def crossover(k: Sequence[float], first: Sequence[float], second: Sequence[float]) -> float | None:
    """The k where ``first`` and ``second`` (latencies at the same ascending k) last cross, or None if they don't.

    Linear interpolation of log(first / second) against log(k) between the two measured k around the last sign
    change (noise can make the curves touch at small k; the crossing that matters is the one after which the
    order holds); a tie at a measured k is a crossing at that k.
    """
    k = np.asarray(k, dtype=float)
    diff = np.log(np.asarray(first, dtype=float)) - np.log(np.asarray(second, dtype=float))
    for i in range(len(k) - 1, -1, -1):
        if diff[i] == 0:
            return float(k[i])
        if i > 0 and diff[i - 1] * diff[i] < 0:
            lo, hi = math.log(k[i - 1]), math.log(k[i])
            return float(math.exp(lo + (hi - lo) * diff[i - 1] / (diff[i - 1] - diff[i])))
    return None


def analyse(results, metric: str = DEFAULT_METRIC) -> tuple["object", dict]:
    """The per-k table and, per thread count, the slopes and the crossover, all of the latency ``metric``.

    Table columns: model, kind, threads, latency_ms (the ``metric``), mean_ms, std_ms, min_ms, p90_ms, macs,
    the flags (oversubscribed, unstable, contended), k.
    """
    from mbbench.report.load import metric_column

    table = results[["model", "factor", "value", "threads"]].rename(columns={"factor": "kind"})
    table["latency_ms"] = results[metric_column(check_metric(metric))]
    for column in ("mean_ms", "std_ms", "min_ms", "p90_ms", "macs"):
        table[column] = results[column]
    for flag in FLAG_COLUMNS:
        table[flag] = results[flag] if flag in results else False
    table["k"] = table.pop("value").astype(int)
    table = table.sort_values(["threads", "kind", "k"], kind="stable").reset_index(drop=True)
    facts: dict = {"slopes": [], "crossovers": []}
    for threads, part in table.groupby("threads", sort=True):
        for kind, rows in part.groupby("kind", sort=False):
            ks, ms = rows["k"].to_numpy(), rows["latency_ms"].to_numpy()
            facts["slopes"].append({
                "threads": int(threads),
                "kind": kind,
                "slope": loglog_slope(ks, ms),
                "tail_slope": loglog_slope(ks[-2:], ms[-2:]) if len(ks) >= 2 else float("nan"),
                "macs_slope": loglog_slope(ks, rows["macs"].to_numpy()),
            })  # fmt: skip
        by_kind = {kind: rows.set_index("k")["latency_ms"] for kind, rows in part.groupby("kind")}
        if {"mha", "separable"} <= set(by_kind):
            common = sorted(set(by_kind["mha"].index) & set(by_kind["separable"].index))
            mha = by_kind["mha"].loc[common].to_numpy()
            sep = by_kind["separable"].loc[common].to_numpy()
            k_cross = crossover(common, mha, sep) if common else None
            if k_cross is not None:
                above = "separable" if sep[-1] < mha[-1] else "MHA"
                below = "MHA" if above == "separable" else "separable"
                verdict = f"{below} is faster below k ~ {k_cross:.0f}, {above} above (up to k={common[-1]})"
            elif common:
                faster = "separable" if (sep < mha).all() else "MHA"
                verdict = f"no crossing between k={common[0]} and k={common[-1]}: {faster} is faster at every k"
            else:
                verdict = "no k measured for both kinds"
            facts["crossovers"].append({"threads": int(threads), "k": k_cross, "verdict": verdict})
    return table, facts


# --- summary and plot -----------------------------------------------------------------------------------------


def _document(table, facts, results, folder: RunFolder, dim: int, opset: int, rounds: int, metric: str):
    from mbbench.report.document import Table

    kinds = list(dict.fromkeys(table["kind"]))
    paired = {"mha", "separable"} <= set(kinds)
    headers = ["threads", "k", *(f"{kind} (ms)" for kind in kinds), *(["mha / separable"] if paired else [])]
    align = ["right"] * len(headers)
    rows = []
    for (count, k), group in table.groupby(["threads", "k"], sort=True):
        by_kind = group.set_index("kind")
        row = [str(count), str(k)]
        for kind in kinds:
            if kind not in by_kind.index:
                row.append("-")
                continue
            row.append(latency_cell(by_kind.loc[kind], metric))
        if paired:
            both = {"mha", "separable"} <= set(by_kind.index)
            ratio = by_kind.at["mha", "latency_ms"] / by_kind.at["separable", "latency_ms"] if both else float("nan")
            row.append(ratio_cell(ratio))
        rows.append(row)
    latency = Table(f"Latency per token count ({metric_header(metric)})", headers, rows, align, flag_notes(results))

    slope_rows = [
        [str(s["threads"]), s["kind"], _num(s["slope"]), _num(s["tail_slope"]), _num(s["macs_slope"])]
        for s in facts["slopes"]
    ]
    slopes = Table(
        f"Scaling with k: slope of log {metric_name(metric)} latency against log k",
        ["threads", "attention", "slope (all k)", "slope (two largest k)", "MACs slope"],
        slope_rows,
        ["right", "left", "right", "right", "right"],
        [
            "A slope of 1 is linear in k, 2 quadratic. Fixed costs (session overhead, projections that are linear "
            "in k) pull the slope below its asymptote at small k: MHA approaches 2 and separable attention 1 once "
            f"k is well above 2 x dim = {2 * dim}; Mobile-Former's cross attention is linear in k too (its 6 "
            "tokens never form a k x k map)."
        ],
    )
    cross_rows = [[str(c["threads"]), "-" if c["k"] is None else f"{c['k']:.0f}", c["verdict"]]
                  for c in facts["crossovers"]]  # fmt: skip
    sections = [latency, slopes]
    if cross_rows:
        sections.append(Table("Where MHA and separable attention cross", ["threads", "k", "verdict"], cross_rows,
                              ["right", "right", "left"]))  # fmt: skip
    setup = [
        f"Standalone attention graphs at embedding size {dim}: multi-head self-attention ({NUM_HEADS} heads, "
        "MobileViT v1) on (1, k, dim), separable self-attention (MobileViT v2) on (1, dim, 1, k) and, where "
        f"measured, Mobile-Former's two-way cross attention between {CROSS_TOKENS} tokens and k positions, each behind "
        f"a patch embedding and followed by a mean over tokens; exported at opset {opset} and measured with ONNX "
        f"Runtime, {rounds} rounds per thread count.",
    ]
    return study_document("mbbench study: attention", setup, sections, results, folder)


def _num(value: float) -> str:
    return "-" if value != value else f"{value:.2f}"


def _plot(table, facts, dim: int, metric: str):
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    fig = Figure(figsize=(8.5, 5.5), layout="constrained")
    ax = fig.subplots()
    styles = ["-", "--", ":", "-."]
    slopes = {(s["threads"], s["kind"]): s["slope"] for s in facts["slopes"]}
    for i, (threads, part) in enumerate(table.groupby("threads", sort=True)):
        for kind, rows in part.groupby("kind", sort=False):
            colour = _COLOURS.get(kind, "C3")
            slope = slopes.get((int(threads), kind), float("nan"))
            ax.errorbar(rows["k"], rows["latency_ms"], yerr=error_bars(rows, metric), color=colour,
                        marker="o", capsize=3,
                        linestyle=styles[i % len(styles)],
                        label=f"{KINDS[kind]}, {threads_label(threads)} (slope {_num(slope)})")  # fmt: skip
    for i, cross in enumerate(facts["crossovers"]):
        if cross["k"] is not None:
            ax.axvline(cross["k"], color="grey", linestyle=styles[i % len(styles)], linewidth=1,
                       label=f"crossover, {threads_label(cross['threads'])}: k ~ {cross['k']:.0f}")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(sorted(table["k"].unique())))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set_yscale("log")
    ax.set_xlabel("tokens k (log scale)")
    ax.set_ylabel(f"{metric_name(metric)} latency (ms, log scale)\n{error_bars_label(metric)}")
    ax.set_title(f"Attention study: {metric_name(metric)} latency vs token count k at dim {dim}\n"
                 "(slope of log latency vs log k in the legend)")  # fmt: skip
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    return fig


# --- the study ------------------------------------------------------------------------------------------------


def attention_study(
    tokens: str | Iterable[int] = DEFAULT_TOKENS,
    threads="1,2",
    rounds: int = 30,
    *,
    dim: int = DEFAULT_DIM,
    kinds: Sequence[str] = tuple(KINDS),
    **settings: Any,
) -> StudyResult:
    """Export and measure MHA and separable attention at each token count; fit the slopes, find the crossover.

    ``tokens``: a list or ``"64,256,1024,4096"``. ``dim`` must split into MobileViT's 4 heads. The slopes and the
    crossover are those of the latency ``metric`` (``"p50"`` or ``"mean"``). ``facts`` holds
    ``slopes`` (per thread count and kind: ``slope`` over all k, ``tail_slope`` over the two largest,
    ``macs_slope``) and ``crossovers`` (per thread count: ``k`` or None, and a ``verdict`` sentence). Writes
    ``attention.csv`` (+ ``.samples.csv``), ``attention.md`` and ``attention.png`` into ``output`` (default
    ``results/attention-<host>-<time>/``); the exported graphs go to its ``models/``.
    The other keyword arguments are the :class:`~mbbench.studies.StudySettings` every study takes.
    """
    counts = parse_tokens(tokens)
    check_positive("dim", dim, NUM_HEADS, MAX_DIM)
    if dim % NUM_HEADS:
        raise UserInputError(f"dim {dim} does not split into {NUM_HEADS} heads: choose a multiple of {NUM_HEADS}")
    kinds = [k for k in dict.fromkeys(kinds)]
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise UserInputError(f"unknown attention kind '{unknown[0] if unknown else ''}': choose from "
                             f"{', '.join(KINDS)}")
    run = StudySettings.of(threads, rounds, settings)
    metric = run.metric

    def present(table, facts, results, _exports, folder):
        document = _document(table, facts, results, folder, dim, run.opset, run.rounds, metric)
        return document, _plot(table, facts, dim, metric)

    return run_study(
        STUDY, study_variants(kinds, counts, dim, run.seed), run, lambda results: analyse(results, metric), present
    )
