"""What every study shares: variants as data, one verified export each, ONE bench sweep, one skeleton.

A study is a list of :class:`Variant` (a readable name such as ``act-relu``, the factor it varies and that
factor's value, and a function that builds the seeded module). :func:`measure_variants` exports each variant
with :func:`mbbench.export_onnx` (opset check, onnxsim, ONNX Runtime vs PyTorch parity) into the run folder's
``models/`` as ``<name>.onnx``, so bench labels its rows ``<name>``, then measures every file in one bench sweep
(:func:`mbbench.pipeline.measure_into`) whose extra columns add ``study``, ``factor`` and ``value``. There is no
other timing loop.

:func:`run_study` is the skeleton every study runs (run folder, measure, analyse, summary, plot, result) and
:func:`ratio_study` the one of the studies that compare each variant with a baseline. How the numbers are shown
lives in :mod:`mbbench.studies._summary` and :mod:`mbbench.studies._plots`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbbench.bench.schema import DEFAULT_METRIC, METRIC_COLUMNS
from mbbench.errors import UserInputError
from mbbench.pipeline import Event, RunFolder

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure
    from torch import nn

    from mbbench.bench.options import BenchConfig
    from mbbench.bench.runner import SweepResult
    from mbbench.bench.runner import SweepObserver
    from mbbench.export import ExportResult
    from mbbench.remote import RemoteRun
    from mbbench.report.document import Document

#: Columns a study adds to the bench CSV schema (in this order, after the bench's own).
STUDY_COLUMNS = ("study", "factor", "value")
#: Opset of the study networks: what ``mbbench export`` writes by default, through the TorchScript exporter.
#: Every activation here exists at 17 as an ONNX op or as its exact decomposition (GELU as Erf, Mish as
#: x * tanh(softplus(x))), which is the graph a deployment at that opset runs.
DEFAULT_OPSET = 17
#: Latency statistics a study's analysis can use. The median is the default: ratios, slopes and crossovers
#: of medians are not thrown by the occasional preempted round on a shared machine (one 50 ms round moves a
#: 0.1 ms mean by 1.7 ms over 30 rounds, and the median not at all).
METRICS = tuple(METRIC_COLUMNS)
#: The most a single variant list may hold: a typo in a list option should not start an hour-long run.
MAX_VARIANTS = 64


@dataclass(frozen=True)
class Variant:
    """One network of a study: ``name`` is its ``model`` label and file stem; ``build`` returns it seeded."""

    name: str
    factor: str
    value: str
    build: Callable[[], "nn.Module"]
    resolution: int
    #: False keeps a multi-branch module as it is (export_onnx folds branches by default)
    reparam: bool = True


@dataclass
class StudyResult:
    """What a study produced.

    ``results`` is the bench CSV as :func:`mbbench.report.load` reads it (bench columns plus ``study``,
    ``factor``, ``value``); ``table`` the study's analysis, one row per (variant, thread count); ``facts``
    study-specific numbers (the attention slopes and crossovers); ``document`` what the summary says (render it
    with :func:`mbbench.report.to_markdown` or :func:`mbbench.report.to_rich`).
    """

    study: str
    results: "pd.DataFrame"
    table: "pd.DataFrame"
    document: "Document"
    folder: RunFolder
    exports: list["ExportResult"]
    seconds: float
    facts: dict[str, Any] = field(default_factory=dict)

    @property
    def csv(self):
        return self.folder.csv

    @property
    def summary(self):
        return self.folder.summary

    @property
    def plot(self):
        return self.folder.plot


@dataclass(frozen=True)
class StudySettings:
    """The options every study takes besides its own, as keyword arguments (``activation_study(opset=12)``).

    How the networks are exported (``opset``, ``seed``) and measured (``threads``, ``rounds``, ``warmup``,
    ``isolate``, on this machine or on ``remote`` targets), which statistic the analysis compares (``metric``:
    ``"p50"`` or ``"mean"``), where the files go (``output``, default ``results/<study>-<host>-<time>/``) and who
    hears about progress (``on_event`` for export lines, ``observer`` for each measured configuration). Every
    value is checked when the settings are made, before anything is built.
    """

    threads: Any = "1,2"
    rounds: int = 30
    warmup: int = 5
    isolate: bool = True
    seed: int = 0
    opset: int = DEFAULT_OPSET
    metric: str = DEFAULT_METRIC
    output: Any = None
    on_event: Event | None = None
    observer: "SweepObserver | None" = None
    remote: "RemoteRun | None" = None
    #: where the study's networks are exported (default: the run folder's ``models/``)
    models_dir: Any = None
    #: every other :class:`~mbbench.bench.options.BenchConfig` option (min_time, graph_opt, cpus, ...)
    bench: Any = None
    #: the bench options the sweep runs with (from threads, rounds, warmup, seed, isolate)
    config: "BenchConfig" = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from mbbench.export.opset import check_opset_request

        check_metric(self.metric)
        check_opset_request(self.opset)
        object.__setattr__(self, "config", self._config())

    @classmethod
    def of(cls, threads, rounds, options: dict[str, Any]) -> "StudySettings":
        """The settings from a study's ``threads``, ``rounds`` and its other keyword arguments."""
        from mbbench.bench.options import BenchConfig

        known = {f.name for f in fields(cls) if f.init} - {"bench"}
        bench_fields = {f.name for f in fields(BenchConfig)} - known - {"threads", "rounds"}
        bench = {k: options.pop(k) for k in list(options) if k in bench_fields}
        options = {**options, "bench": {**(options.get("bench") or {}), **bench}}
        unknown = sorted(set(options) - known - {"bench"})
        if unknown:
            raise TypeError(f"unexpected keyword argument '{unknown[0]}' (a study takes its own options and "
                            f"{', '.join(sorted(known))})")  # fmt: skip
        return cls(threads=threads, rounds=rounds, **options)

    def _config(self) -> "BenchConfig":
        """The bench options, validated before anything is built (a bad ``--threads`` fails in one line, at once)."""
        from mbbench.bench.options import BenchConfig

        return BenchConfig(threads=self.threads, rounds=self.rounds, warmup=self.warmup, seed=self.seed,
                           isolate=self.isolate, **(self.bench or {}))  # fmt: skip

    def models_folder(self, folder: RunFolder) -> Path:
        """Where the study's networks are exported: ``models_dir``, or the run folder's ``models/`` (created)."""
        models = Path(self.models_dir) if self.models_dir is not None else folder.models
        models.mkdir(parents=True, exist_ok=True)
        return models

    def emit(self, message: str) -> None:
        if self.on_event is not None:
            self.on_event(message)


def check_positive(name: str, value: int, low: int = 1, high: int | None = None, why: str = "") -> int:
    """``value`` as an int within [low, high], or a one-sentence :class:`UserInputError`."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
        bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
        raise UserInputError(f"{name} must be a whole number {bounds}, not {value!r}{why}")
    return value


def parse_names(spec: str | Sequence[str] | None, known: Sequence[str], what: str) -> list[str]:
    """Names from ``"a,b"`` or a sequence, each one of ``known``, in the order given, without repeats."""
    if spec is None:
        return list(known)
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names = [str(item).strip().lower() for item in items if str(item).strip()]
    if not names:
        raise UserInputError(f"no {what} given: choose from {', '.join(known)}")
    for name in names:
        if name not in known:
            from difflib import get_close_matches

            close = get_close_matches(name, known, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            raise UserInputError(f"unknown {what} '{name}': {hint}choose from {', '.join(known)}")
    return list(dict.fromkeys(names))


def check_complete(sweep: "SweepResult") -> None:
    """A study's analysis needs every variant measured: a failed variant or device ends it in one line (what was
    measured before stays in the CSV)."""
    from mbbench.bench.session import ModelRunError

    if sweep.failures:
        first = sweep.failures[0]
        raise ModelRunError(f"{len(sweep.failures)} variant(s) failed, first {first.model}: {first.message}")
    if sweep.target_failures:
        raise ModelRunError(f"the target failed: {sweep.target_failures[0].message}")


def measure_variants(
    study: str, variants: Sequence[Variant], folder: RunFolder, run: StudySettings
) -> tuple["pd.DataFrame", list["ExportResult"]]:
    """Export every variant into ``folder.models`` and measure them all in one bench sweep into ``folder.csv``.

    Returns the CSV as :func:`mbbench.report.load` reads it, and the export results. A variant that fails to
    export or run ends the study (its analysis would be incomplete) with the exporter's or bench's one-line
    error; what was measured before stays in the CSV.
    """
    from mbbench import report
    from mbbench.export import export_onnx
    from mbbench.pipeline import measure_into
    from mbbench.studies._summary import format_macs

    emit = run.emit
    if len(variants) > MAX_VARIANTS:
        raise UserInputError(f"{len(variants)} variants is more than {MAX_VARIANTS}: shorten the list")
    models = run.models_folder(folder)
    exports = []
    for index, variant in enumerate(variants, start=1):
        started = time.perf_counter()
        module = variant.build()
        result = export_onnx(
            module, models / f"{variant.name}.onnx", name=variant.name, opset=run.opset,
            resolution=variant.resolution, reparam=variant.reparam, seed=run.seed, force=True,
        )  # fmt: skip
        exports.append(result)
        emit(
            f"[{index}/{len(variants)}] {variant.name}: exported ({result.nodes_after} nodes, "
            f"{format_macs(result.macs)}, parity {result.parity_max_rel:.0e}) in {time.perf_counter() - started:.1f} s"
        )
    extras = {r.path: dict(zip(STUDY_COLUMNS, (study, v.factor, v.value))) for r, v in zip(exports, variants)}
    check_complete(measure_into(folder, [r.path for r in exports], run.config, extras, run.observer, run.remote))
    results = report.load([folder.csv])
    order = {v.name: i for i, v in enumerate(variants)}
    results = results.assign(_order=results["model"].map(order)).sort_values(["_order", "threads"], kind="stable")
    return results.drop(columns="_order").reset_index(drop=True), exports


# --- analysis ------------------------------------------------------------------------------------------------


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise UserInputError(f"unknown metric '{metric}': choose one of {', '.join(METRICS)}")
    return metric


def ratio_table(results: "pd.DataFrame", baseline: str, metric: str = DEFAULT_METRIC) -> "pd.DataFrame":
    """Each variant's latency ``metric`` and its ratio to ``baseline``'s at the same thread count.

    Columns: model, factor, value, threads, latency_ms (the ``metric``), ratio, mean_ms, std_ms, min_ms,
    p90_ms, macs, params, then the flags (oversubscribed, unstable, contended; False where the CSV has no such
    column). ``ratio`` = latency(variant) / latency(baseline); NaN where the baseline has no row at that
    thread count.
    """
    from mbbench.report.load import metric_column
    from mbbench.studies._summary import FLAG_COLUMNS

    column = metric_column(check_metric(metric))
    table = results[["model", "factor", "value", "threads"]].copy()
    table["latency_ms"] = results[column]
    base = results[results["model"] == baseline].set_index("threads")[column]
    table["ratio"] = table["latency_ms"] / table["threads"].map(base)
    for extra in ("mean_ms", "std_ms", "min_ms", "p90_ms", "macs", "params"):
        table[extra] = results[extra]
    for flag in FLAG_COLUMNS:
        table[flag] = results[flag] if flag in results else False
    return table.reset_index(drop=True)


# --- the skeleton --------------------------------------------------------------------------------------------

#: ``analyse(results) -> (table, facts)``: a study's numbers from its measured rows.
Analyse = Callable[["pd.DataFrame"], "tuple[pd.DataFrame, dict[str, Any]]"]
#: ``present(table, facts, results, exports, folder) -> (summary document, figure)``.
Present = Callable[..., "tuple[Document, Figure]"]


def run_study(
    study: str, variants: Sequence[Variant], run: StudySettings, analyse: Analyse, present: Present
) -> StudyResult:
    """The tail every study shares, once its own options and its ``run`` settings are validated.

    Creates the run folder (``run.output``, default ``results/<study>-<host>-<time>/``), exports and measures the
    ``variants`` (:func:`measure_variants`), analyses the rows, writes ``<study>.md`` and ``<study>.png``.
    """
    from mbbench.report import save_figure, to_markdown, write_text

    started = time.perf_counter()
    folder = RunFolder.create(run.output, study)
    results, exports = measure_variants(study, variants, folder, run)
    table, facts = analyse(results)
    document, figure = present(table, facts, results, exports, folder)
    write_text(folder.summary, to_markdown(document))
    save_figure(figure, folder.plot)
    return StudyResult(study, results, table, document, folder, exports, time.perf_counter() - started, facts)


def ratio_study(
    study: str,
    variants: Sequence[Variant],
    baseline: str,
    run: StudySettings,
    *,
    title: str,
    column: str,
    describe: dict[str, str],
    setup: Callable[[list["ExportResult"]], list[str]],
    plot_title: str,
    baseline_label: str,
) -> StudyResult:
    """A study that compares every variant with ``baseline`` (a variant's name): :func:`ratio_table`, a
    latency-and-ratio summary titled ``title`` (``column`` heads the ``describe`` column, ``setup(exports)``
    says what was measured) and bars titled ``plot_title`` with the ratios to ``baseline_label``."""
    from mbbench.studies._plots import ratio_plot
    from mbbench.studies._summary import ratio_document

    metric = run.metric

    def analyse(results):
        return ratio_table(results, baseline, metric), {}

    def present(table, _facts, results, exports, folder):
        document = ratio_document(title, setup(exports), table, column, describe, baseline, results, folder, metric)
        return document, ratio_plot(table, plot_title, baseline_label, describe, metric)

    return run_study(study, variants, run, analyse, present)
