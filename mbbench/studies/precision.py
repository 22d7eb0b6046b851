"""The precision study: what FP16 and INT8 buy in latency, what they cost in fidelity, and which layers must stay
in float.

For each model (default: one small model per family) the study exports the verified FP32 graph, derives each
precision from it (:mod:`mbbench.export.precision`: onnxruntime's quantizer, onnxconverter-common's FP16
converter) and then runs the sensitivity analysis: INT8 with everything quantized except one op type
(``--sensitivity op``), or except one block (``--sensitivity block``; blocks are read from the module paths the exporter writes
into node names, see :func:`mbbench.export.precision.node_block`). Every variant's fidelity to the FP32 graph is
measured on held-out inputs and all variants are timed in ONE bench sweep. For each choice the table gives the
fidelity regained over plain INT8 against the latency given up; the summary names the cheapest choices that reach
``goal_cosine``; the plot shows latency against fidelity with the Pareto front.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbbench.errors import UserInputError
from mbbench.pipeline import DEFAULT_MODELS, Event, RunFolder
from mbbench.studies._core import (
    MAX_VARIANTS,
    STUDY_COLUMNS,
    StudyResult,
    StudySettings,
    check_complete,
    check_metric,
    parse_names,
)

if TYPE_CHECKING:
    import pandas as pd
    from torch import nn

    from mbbench.export import ExportResult

STUDY = "precision"
#: ``op``: keep one op type in float at a time; ``block``: keep one block (module path) in float at a time.
BY = ("op", "block")
DEFAULT_GOAL = 0.99
#: The sensitivity variants of one model at most (a model with more blocks is refused with this number).
MAX_CHOICES = 3 * MAX_VARIANTS
FACTORS = {"precision": "precision", "op": "keep-float-op", "block": "keep-float-block"}


@dataclass
class Choice:
    """One network of the study: a precision of a model, or INT8 with one op type or block kept in float."""

    label: str
    model: str
    factor: str
    value: str
    result: "ExportResult"


def _slug(text: str) -> str:
    """A file-name-safe, manifest-valid piece of a label (``layer_3.1`` -> ``layer-3.1``)."""
    return re.sub(r"[^A-Za-z0-9.+-]+", "-", text).strip("-.").lower() or "x"


def _models(models) -> list[tuple[str, Any]]:
    """``(label, registry name or module)`` for each model: a name, or a ``(label, nn.Module)`` pair."""
    from mbbench.models import resolve_name

    chosen = []
    for item in models if models is not None else DEFAULT_MODELS:
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            chosen.append((_slug(item[0]), item[1]))
        elif isinstance(item, str):
            name = resolve_name(item)
            chosen.append((name, name))
        else:
            raise UserInputError(f"a model is a registry name or a (label, module) pair, not {item!r}")
    labels = [label for label, _ in chosen]
    if len(set(labels)) != len(labels):
        raise UserInputError("a model is named twice: name each once")
    return chosen


# --- making the variants -------------------------------------------------------------------------------------


def make_choices(
    label: str, model, models: Path, *, precisions: Sequence[str], by: Sequence[str], opset: int,
    resolution: int | None, calibration, calibration_size: int, calibration_method: str, fidelity_inputs: int,
    seed: int, emit: Event,
) -> list[Choice]:  # fmt: skip
    """Export ``model`` once, then write each precision and each sensitivity variant (with its manifest)."""
    import onnx

    from mbbench._io import sha256_bytes
    from mbbench.export import export_onnx
    from mbbench.export import precision as prec
    from mbbench.export.api import calibration_label, write_export
    from mbbench.export.calibration import make_inputs

    started = time.perf_counter()
    fp32 = export_onnx(model, models / f"{label}.onnx", name=label, opset=opset, resolution=resolution,
                       seed=seed, force=True)  # fmt: skip
    data = Path(fp32.path).read_bytes()
    inputs = make_inputs(calibration, family=fp32.family, resolution=fp32.resolution, batch=1,
                         calibration_size=calibration_size, fidelity_inputs=fidelity_inputs, seed=seed)  # fmt: skip
    reference = prec.outputs(data, inputs.fidelity)
    prepared = prec.preprocess(data)
    pre_model = onnx.load_from_string(prepared)
    plan: list[tuple[str, str, dict]] = [(FACTORS["precision"], p, {}) for p in precisions if p != "fp32"]
    if "op" in by:
        plan += [(FACTORS["op"], op, {"keep_float": [op]}) for op in prec.quantizable_op_types(pre_model)]
    if "block" in by:
        plan += [(FACTORS["block"], block, {"exclude_nodes": nodes}) for block, nodes in prec.blocks(pre_model).items()]
    if len(plan) > MAX_CHOICES:
        raise UserInputError(f"{label} gives {len(plan)} variants, more than {MAX_CHOICES}: measure fewer precisions "
                             "or use --sensitivity op")  # fmt: skip
    choices = [Choice(label, label, FACTORS["precision"], "fp32", fp32)]
    emit(f"{label}: exported fp32 ({fp32.nodes_after} nodes) in {time.perf_counter() - started:.1f} s; making "
         f"{len(plan)} variant(s)")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="mbbench-calibration-") as tmp:
        cache = Path(tmp) / "ranges.json"  # one calibration per model: every INT8 variant reuses its ranges
        for factor, value, extra in plan:
            precision = value if factor == FACTORS["precision"] else "int8"
            name = f"{label}-{value}" if factor == FACTORS["precision"] else f"{label}-int8-float-{_slug(value)}"
            variant = prec.convert(
                precision, data, label=name, opset=opset, calibration=inputs.calibration, method=calibration_method,
                prepared=prepared, cache=cache if precision == "int8" else None, **extra,
            )  # fmt: skip
            fid = prec.fidelity(reference, prec.outputs(variant, inputs.fidelity))
            static = precision == "int8"
            result = replace(
                fp32, model=name, path=str(models / f"{name}.onnx"), precision=precision,
                nodes_after=len(onnx.load_from_string(variant).graph.node), sha256=sha256_bytes(variant),
                calibration=calibration_label(calibration) if static else None,
                calibration_method=calibration_method if static else None,
                calibration_size=calibration_size if static else None,
                keep_float=list(extra.get("keep_float", [])), fidelity_cosine=fid.cosine,
                fidelity_sqnr_db=fid.sqnr_db, fidelity_max_abs=fid.max_abs, fidelity_top1=fid.top1,
                fidelity_top5=fid.top5, fidelity_inputs=fid.inputs, fidelity_source=inputs.source,
            )  # fmt: skip
            write_export(Path(result.path), variant, result.to_json())
            choices.append(Choice(name, label, factor, value, result))
            emit(f"  {name}: cosine {fid.cosine:.4f}, top-1 {fid.top1:.0%} ({result.nodes_after} nodes)")
    return choices


# --- analysis ------------------------------------------------------------------------------------------------


def analyse(results: "pd.DataFrame", choices: Sequence[Choice], goal: float, metric: str):
    """One row per (choice, thread count): latency, ratio to the model's FP32, fidelity, and against plain INT8
    the cosine regained and the milliseconds given up. ``facts["cheapest"]``: per model, the choices that reach
    ``goal`` from the fastest at the fewest threads measured (FP32 reaches it by definition)."""
    import pandas as pd

    from mbbench.report.load import metric_column
    from mbbench.studies._summary import FLAG_COLUMNS

    column = metric_column(check_metric(metric))
    by_label = {c.label: c for c in choices}
    rows = []
    for record in results.to_dict("records"):
        choice = by_label.get(record["model"])
        if choice is None:
            continue
        r = choice.result
        rows.append({
            "model": choice.model, "choice": choice.label, "factor": choice.factor, "value": choice.value,
            "precision": r.precision, "threads": int(record["threads"]), "latency_ms": record[column],
            "mean_ms": record["mean_ms"], "std_ms": record["std_ms"], "min_ms": record["min_ms"],
            "p90_ms": record["p90_ms"],
            "cosine": 1.0 if r.fidelity_cosine is None else r.fidelity_cosine,
            "sqnr_db": r.fidelity_sqnr_db, "top1": 1.0 if r.fidelity_top1 is None else r.fidelity_top1,
            "top5": 1.0 if r.fidelity_top5 is None else r.fidelity_top5,
            **{flag: bool(record.get(flag, False)) for flag in FLAG_COLUMNS},
        })  # fmt: skip
    table = pd.DataFrame(rows)
    key = ["model", "threads"]
    fp32 = table[table["precision"].eq("fp32") & table["factor"].eq(FACTORS["precision"])]
    int8 = table[table["value"].eq("int8") & table["factor"].eq(FACTORS["precision"])]
    table = table.merge(fp32[key + ["latency_ms"]].rename(columns={"latency_ms": "_fp32"}), on=key, how="left")
    table = table.merge(int8[key + ["latency_ms", "cosine"]].rename(columns={"latency_ms": "_int8", "cosine": "_cos8"}),
                        on=key, how="left")  # fmt: skip
    table["ratio"] = table["latency_ms"] / table["_fp32"]
    sensitivity = table["factor"].ne(FACTORS["precision"])
    table["cosine_regained"] = (table["cosine"] - table["_cos8"]).where(sensitivity)
    table["ms_given_up"] = (table["latency_ms"] - table["_int8"]).where(sensitivity)
    table = table.drop(columns=["_fp32", "_int8", "_cos8"])
    fewest = int(table["threads"].min())
    cheapest = {}
    for model, part in table[table["threads"] == fewest].groupby("model", sort=False):
        reaching = part[part["cosine"] >= goal].sort_values("latency_ms", kind="stable")
        cheapest[model] = reaching.head(3).to_dict("records")
    return table, {"goal_cosine": goal, "threads": fewest, "cheapest": cheapest}


def pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats (lower latency and higher-or-equal fidelity), by latency."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], float("-inf")
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


# --- summary and plot ----------------------------------------------------------------------------------------


def _document(table, facts, results, folder: RunFolder, setup: list[str], metric: str):
    from mbbench.bench.formatting import threads_label
    from mbbench.report.document import Table
    from mbbench.studies._summary import (
        flag_notes,
        latency_cell,
        metric_header,
        metric_name,
        ratio_cell,
        study_document,
        threads_cells,
    )

    threads = sorted(table["threads"].unique())
    fewest = facts["threads"]
    headers = ["model", "choice", "cosine", "top-1", "top-5", "SQNR (dB)"]
    for count in threads:
        headers += [f"{threads_label(count)} (ms)", "vs fp32"]
    headers += ["cosine regained", f"ms given up ({threads_label(fewest)})"]
    rows = []
    for (model, choice), group in table.groupby(["model", "choice"], sort=False):
        by_threads = group.set_index("threads")
        first = group.iloc[0]
        row = [model, _describe(first), f"{first['cosine']:.4f}", f"{first['top1']:.0%}", f"{first['top5']:.0%}",
               _db(first["sqnr_db"]), *threads_cells(by_threads, threads, metric)]  # fmt: skip
        at_fewest = by_threads.loc[fewest] if fewest in by_threads.index else None
        regained = first["cosine_regained"]
        given = at_fewest["ms_given_up"] if at_fewest is not None else float("nan")
        row += ["-" if regained != regained else f"{regained:+.4f}", "-" if given != given else f"{given:+.3f}"]
        rows.append(row)
    notes = [
        "cosine, top-1, top-5, SQNR: the variant's outputs against the FP32 graph's on held-out inputs (mean cosine "
        "per input; share of inputs whose top class agrees; mean share of the FP32 top-5 kept; signal to "
        "quantization noise). fp32 is the reference.",
        f"vs fp32 = {metric_name(metric)} latency / the model's FP32 latency at the same thread count. Cosine "
        "regained and ms given up compare each keep-in-float choice with plain int8.",
        *flag_notes(results),
    ]
    align = ["left", "left"] + ["right"] * (len(headers) - 2)
    main = Table(f"Latency ({metric_header(metric)}) and fidelity per choice", headers, rows, align, notes)

    goal = facts["goal_cosine"]
    cheap_rows = []
    for model, reaching in facts["cheapest"].items():
        if not reaching:
            cheap_rows.append([model, "-", f"no choice reaches cosine {goal:g}", "-", "-", "-"])
            continue
        for rank, r in enumerate(reaching, start=1):
            cheap_rows.append([model, str(rank), _describe(r), f"{r['cosine']:.4f}", latency_cell(r, metric),
                               ratio_cell(r["ratio"])])  # fmt: skip
    cheapest = Table(
        f"Cheapest choices reaching cosine >= {goal:g} ({threads_label(fewest)})",
        ["model", "rank", "choice", "cosine", "latency (ms)", "vs fp32"], cheap_rows,
        ["left", "right", "left", "right", "right", "right"],
        ["fp32 always reaches the goal (it is the reference): when it ranks first, no cheaper choice keeps enough of "
         "the network's function."],
    )  # fmt: skip
    return study_document("mbbench study: precision", setup, [cheapest, main], results, folder)


def _describe(row) -> str:
    if row["factor"] == FACTORS["precision"]:
        return row["value"]
    return f"int8, {row['value']} in float"


def _db(value) -> str:
    if value is None or value != value:
        return "-"
    return "inf" if value == float("inf") else f"{value:.1f}"


def _plot(table, facts, metric: str):
    from matplotlib.figure import Figure

    from mbbench.bench.formatting import threads_label
    from mbbench.studies._summary import metric_name

    fewest = facts["threads"]
    part = table[table["threads"] == fewest]
    models = list(dict.fromkeys(part["model"]))
    fig = Figure(figsize=(max(9.0, 6.0 * len(models)), 5.8), layout="constrained")
    axes = fig.subplots(1, len(models), squeeze=False).ravel()
    markers = {FACTORS["precision"]: "o", FACTORS["op"]: "s", FACTORS["block"]: "^"}
    names = {FACTORS["precision"]: "precision", FACTORS["op"]: "int8, one op type in float",
             FACTORS["block"]: "int8, one block in float"}  # fmt: skip
    for ax, model in zip(axes, models):
        rows = part[part["model"] == model].reset_index(drop=True)
        x, y = rows["latency_ms"].to_numpy(float), rows["cosine"].to_numpy(float)
        for factor, marker in markers.items():
            chosen = rows["factor"] == factor
            if chosen.any():
                ax.scatter(x[chosen], y[chosen], marker=marker, s=40, label=names[factor], zorder=3)
        front = pareto(list(zip(x, y)))
        ax.step(x[front], y[front], where="post", color="black", linewidth=1, label="Pareto front", zorder=2)
        for i in front:
            ax.annotate(f" {_describe(rows.iloc[i])}", (x[i], y[i]), fontsize="x-small", rotation=20)
        ax.axhline(facts["goal_cosine"], color="grey", linestyle="--", linewidth=1,
                   label=f"goal cosine {facts['goal_cosine']:g}")  # fmt: skip
        ax.set_title(model)
        ax.set_xlabel(f"{metric_name(metric)} latency (ms), {threads_label(fewest)}")
        ax.set_ylabel("fidelity: cosine to the FP32 output")
        ax.grid(True, alpha=0.3)
        ax.margins(x=0.2, y=0.1)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(3, len(labels)), fontsize="small",
               frameon=False)  # fmt: skip
    fig.suptitle("Precision study: latency against fidelity, one point per choice\n(up and to the left is better; "
                 "the Pareto front joins the choices nothing beats)")
    return fig


# --- the study -----------------------------------------------------------------------------------------------


def precision_study(
    models: Sequence[str | tuple[str, "nn.Module"]] | None = None,
    threads="1,2",
    rounds: int = 30,
    *,
    precisions: str | Sequence[str] = ("fp32", "fp16", "int8", "int8-dynamic"),
    by: str | Sequence[str] = "op",
    goal_cosine: float = DEFAULT_GOAL,
    calibration: str | Path = "random",
    calibration_size: int = 32,
    calibration_method: str = "minmax",
    fidelity_inputs: int = 64,
    resolution: int | None = None,
    **settings: Any,
) -> StudyResult:
    """Each model at each precision, then INT8 with one op type (``by="op"``) or block (``by="block"``, or both:
    ``"op,block"``) at a time kept in float: latency (one bench sweep) and fidelity to the FP32 graph.

    ``models``: registry names (default one small model per family) or ``(label, nn.Module)`` pairs. ``facts``
    holds ``cheapest`` (per model, up to three choices reaching ``goal_cosine``, fastest first, at the fewest
    threads measured). Writes ``precision.csv`` (+ ``.samples.csv``), ``precision.md`` and ``precision.png`` into
    ``output`` (default ``results/precision-<host>-<time>/``); the variants and their manifests go to its
    ``models/``.
    The other keyword arguments are the :class:`~mbbench.studies.StudySettings` every study takes.
    """
    from mbbench.export import options as opts
    from mbbench.export.calibration import (
        RANDOM,
        check_calibration,
        check_enough_images,
    )
    from mbbench.export.precision import INT8_MIN_OPSET
    from mbbench.pipeline import measure_into
    from mbbench.report import load, save_figure, to_markdown, write_text

    started = time.perf_counter()
    chosen = _models(models)
    wanted = list(dict.fromkeys(("fp32", *opts.check_precisions(precisions))))
    ways = parse_names(by, BY, "--sensitivity choice") if by else []
    if ways and "int8" not in wanted:
        wanted.append("int8")  # the baseline of the sensitivity analysis, and the one calibration all variants share
    try:
        goal = opts.check_min_cosine(goal_cosine)
    except UserInputError:
        raise UserInputError(f"goal cosine must be a number from -1 to 1, not {goal_cosine!r}") from None
    run = StudySettings.of(threads, rounds, settings)
    opset, metric = run.opset, run.metric
    if opset < INT8_MIN_OPSET and ("int8" in wanted or ways):
        raise UserInputError(f"the precision study quantizes to int8, which needs opset {INT8_MIN_OPSET} or newer: "
                             f"use --opset {INT8_MIN_OPSET} or newer")  # fmt: skip
    if resolution is not None:
        opts.check_resolution(resolution)
    calibration = check_calibration(calibration)
    calibration_size = opts.check_calibration_size(calibration_size)
    if calibration != RANDOM:
        check_enough_images(calibration, calibration_size, 1)
    calibration_method = opts.check_calibration_method(calibration_method)
    fidelity_inputs = opts.check_fidelity_inputs(fidelity_inputs)
    emit = run.emit

    folder = RunFolder.create(run.output, STUDY)
    models = run.models_folder(folder)
    choices: list[Choice] = []
    for label, model in chosen:
        choices += make_choices(
            label, model, models, precisions=wanted, by=ways, opset=opset, resolution=resolution,
            calibration=calibration, calibration_size=calibration_size, calibration_method=calibration_method,
            fidelity_inputs=fidelity_inputs, seed=run.seed, emit=emit,
        )  # fmt: skip
    extras = {c.result.path: dict(zip(STUDY_COLUMNS, (STUDY, c.factor, c.value))) for c in choices}
    check_complete(measure_into(folder, [c.result.path for c in choices], run.config, extras, run.observer,
                                run.remote))
    results = load([folder.csv])
    order = {c.label: i for i, c in enumerate(choices)}
    results = results.assign(_order=results["model"].map(order)).sort_values(["_order", "threads"], kind="stable")
    results = results.drop(columns="_order").reset_index(drop=True)
    table, facts = analyse(results, choices, goal, metric)

    random_init = [label for label, model in chosen if isinstance(model, str)]
    kept = " / ".join({"op": "one op type", "block": "one block"}[w] for w in ways) or "nothing"
    setup = [
        f"{', '.join(label for label, _ in chosen)} exported at opset {opset} and derived in "
        f"{', '.join(wanted)}; INT8 is onnxruntime's static QDQ (per-channel QInt8 weights, QUInt8 activations, "
        f"{calibration_method} calibration on {calibration_size} {calibration_label_text(calibration)} inputs), "
        f"int8-dynamic its quantize_dynamic, FP16 onnxconverter-common's converter with FP32 inputs and outputs. "
        f"Sensitivity: int8 with {kept} at a time kept in float. Fidelity over {fidelity_inputs} held-out inputs; latency from ONE bench sweep, "
        f"{run.rounds} rounds per thread count.",
    ]
    if random_init:
        setup.append(f"{', '.join(random_init)}: random init, so the fidelity figures describe a random network. For "
                     "the real figure export your checkpoint with a folder of your images (mbbench export NAME "
                     "--weights FILE --precision int8 --calibration DIR).")  # fmt: skip
    document = _document(table, facts, results, folder, setup, metric)
    write_text(folder.summary, to_markdown(document))
    save_figure(_plot(table, facts, metric), folder.plot)
    return StudyResult(STUDY, results, table, document, folder, [c.result for c in choices],
                       time.perf_counter() - started, facts)  # fmt: skip


def calibration_label_text(calibration) -> str:
    from mbbench.export.calibration import RANDOM

    return "random" if calibration == RANDOM else f"image ('{calibration}')"
