"""``run_pipeline``: registry models -> verified ONNX files -> one bench sweep -> report, in one call.

The everyday one-liner (``mbbench run``) and the original study (``mbbench study reproduce``) are both this
function. Every run writes into one folder (:class:`RunFolder`), which the studies in :mod:`mbbench.studies`
share: ``<stem>.csv`` (the bench CSV), ``<stem>.samples.csv`` (raw rounds), ``<stem>.md`` (the report) and
``<stem>.png`` (a plot). Registry models are exported into ``models_dir`` (``models/`` by default, shared with
``mbbench export`` and ``mbbench bench``), so an export made earlier with the same name, opset and resolution
is reused instead of redone (``force=True`` redoes it).

Heavy modules (torch, pandas, matplotlib) are imported inside the calls: importing this module is cheap.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbbench._paths import DEFAULT_RESULTS_DIR, default_results_folder
from mbbench.errors import MbbenchError, UserInputError
# the original study's opsets per family, part of the study preset below (re-exported for the studies)
from mbbench.models.facts import STUDY_OPSETS  # noqa: F401

if TYPE_CHECKING:
    import pandas as pd

    from mbbench.bench.options import BenchConfig
    from mbbench.bench.runner import SweepObserver, SweepResult
    from mbbench.export import ExportResult
    from mbbench.remote import RemoteRun

#: What ``mbbench run`` measures when no model is named: one model of each of the study's families, the smallest.
DEFAULT_MODELS = ("mobileone-s0", "mobilevit-xxs", "mobilevitv2-050")
#: ``mbbench run --preset NAME``: which models a run measures when none is named. ``study`` is the original
#: study's three families; ``pareto`` takes a small and a mid size of every family in the zoo, to set latency
#: against MACs and parameters across all six on the machine (or target) at hand.
PRESETS: dict[str, tuple[str, ...]] = {
    "study": DEFAULT_MODELS,
    "pareto": (
        "mobilenetv3-small", "mobilenetv3-large",
        "mobileone-s0", "mobileone-s2",
        "fastvit-t8", "fastvit-sa12",
        "mobilevit-xxs", "mobilevit-xs",
        "mobilevitv2-050", "mobilevitv2-100",
        "mobileformer-96m", "mobileformer-294m",
    ),
}  # fmt: skip
#: The original study measured every model at 224x224 (MobileViT's own default is 256). Together with
#: STUDY_OPSETS this is the "study preset" that ``mbbench run`` uses, where ``mbbench export`` defaults to opset
#: 17 at each model's own resolution: run reproduces the study's numbers, export makes a deployable file.
DEFAULT_RESOLUTION = 224

Event = Callable[[str], None]


# --- the run folder ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFolder:
    """The folder one run writes into, and the names of its files (all written atomically)."""

    directory: Path
    stem: str

    @property
    def csv(self) -> Path:
        return self.directory / f"{self.stem}.csv"

    @property
    def samples(self) -> Path:
        return self.directory / f"{self.stem}.samples.csv"

    @property
    def summary(self) -> Path:
        return self.directory / f"{self.stem}.md"

    @property
    def plot(self) -> Path:
        return self.directory / f"{self.stem}.png"

    @property
    def models(self) -> Path:
        """Where a study exports its own networks (registry models go to ``models_dir`` instead)."""
        return self.directory / "models"

    @classmethod
    def create(cls, output: str | os.PathLike | None, stem: str) -> "RunFolder":
        """Create ``output`` (default: a new ``results/<stem>-<host>-<time>/``) and check it can take the files.

        An existing folder is fine unless it already holds this run's CSV, summary or plot: results are never
        overwritten (choose another ``output`` or delete them).
        """
        directory = Path(output) if output is not None else default_folder(stem)
        if directory.exists() and not directory.is_dir():
            raise UserInputError(f"output '{directory}' is a file: pass a folder with --output")
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UserInputError(
                f"cannot create output folder '{directory}' ({reason}): choose another with --output"
            ) from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise UserInputError(f"output folder '{directory}' is not writable: choose another with --output")
        folder = cls(directory, stem)
        taken = [p for p in (folder.csv, folder.summary, folder.plot) if p.exists()]
        if taken:
            raise UserInputError(
                f"'{taken[0]}' already exists: choose another --output folder or delete the old results"
            )
        return folder


def default_folder(stem: str, parent: str | os.PathLike = DEFAULT_RESULTS_DIR) -> Path:
    """``results/<stem>-<host>-<local time>`` (:func:`mbbench._paths.default_results_folder`)."""
    return default_results_folder(stem, parent)


# --- the pipeline --------------------------------------------------------------------------------------------


@dataclass
class PipelineResult:
    """What one pipeline run produced. ``results`` is the bench CSV as :func:`mbbench.report.load` reads it."""

    models: list[str]
    exports: list["ExportResult"]
    results: "pd.DataFrame"
    correlations: "pd.DataFrame"
    folder: RunFolder
    layout: str
    seconds: float
    #: the statistic the report's tables use
    metric: str = "p50"
    #: (model, one-line reason) for each model that failed to export or to run; the others are reported
    failures: list[tuple[str, str]] = field(default_factory=list)

    @property
    def csv(self) -> Path:
        return self.folder.csv

    @property
    def summary(self) -> Path:
        return self.folder.summary

    @property
    def plot(self) -> Path:
        return self.folder.plot


@dataclass(frozen=True)
class ExportTarget:
    """One registry model as a run exports it."""

    model: str
    opset: int
    resolution: int


@dataclass(frozen=True)
class RunPlan:
    """Everything a run will do, decided and validated before anything is exported or measured."""

    name: str
    targets: tuple[ExportTarget, ...]
    config: "BenchConfig"
    layout: str
    metric: str = "p50"


def resolve_opsets(names: Iterable[str], opsets: int | Mapping[str, int] | None = None) -> dict[str, int]:
    """The opset for each canonical registry name.

    ``opsets`` is one opset for every model, a mapping from family or model name to opset (a model name wins
    over its family; unlisted families keep the study's), or None for the study's :data:`STUDY_OPSETS`.
    """
    from mbbench.export.opset import check_opset_request
    from mbbench.models import model_info, resolve_name

    chosen = {}
    overrides: dict[str, int] = {}
    if isinstance(opsets, Mapping):
        for key, value in opsets.items():
            overrides[key if key in STUDY_OPSETS else resolve_name(key)] = value
    for name in names:
        family = model_info(name).family
        if isinstance(opsets, int) and not isinstance(opsets, bool):
            opset = opsets
        elif opsets is None or isinstance(opsets, Mapping):
            opset = overrides.get(name, overrides.get(family, STUDY_OPSETS.get(family, 17)))
        else:
            raise UserInputError(f"opsets must be an int or a mapping of family/model to opset, not {opsets!r}")
        chosen[name] = check_opset_request(opset)
    return chosen


def plan_run(
    models: Iterable[str] | None = None,
    threads: str | int | Iterable[int] = (1, 2),
    rounds: int = 30,
    *,
    opsets: int | Mapping[str, int] | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    layout: str = "wide",
    warmup: int = 5,
    isolate: bool = True,
    seed: int = 0,
    name: str = "run",
    preset: str = "study",
    metric: str = "p50",
    **bench: Any,
) -> RunPlan:
    """What :func:`run_pipeline` will export and how it will measure, without doing either.

    ``models`` default to the ``preset``'s (:data:`PRESETS`); ``opsets`` see :func:`resolve_opsets`; ``bench`` takes
    every other :class:`~mbbench.bench.options.BenchConfig` option (min_time, graph_opt, cpus, ...). Every bad
    input (an unknown model, preset, opset, layout or bench option) raises :class:`UserInputError` here.
    """
    from mbbench.bench.options import BenchConfig
    from mbbench.models import resolve_name
    from mbbench.report import LAYOUTS

    if preset not in PRESETS:
        raise UserInputError(f"unknown preset '{preset}': choose one of {', '.join(PRESETS)}")
    names = list(dict.fromkeys(resolve_name(m) for m in (models or PRESETS[preset])))
    if not names:
        raise UserInputError("no model to run: name registry models (see 'mbbench list')")
    opset_of = resolve_opsets(names, opsets)
    if layout not in LAYOUTS:
        raise UserInputError(f"unknown layout '{layout}': choose wide or long")
    from mbbench.report.load import metric_column

    metric_column(metric)
    config = BenchConfig(threads=threads, rounds=rounds, warmup=warmup, seed=seed, isolate=isolate, **bench)
    if not isinstance(resolution, int) or isinstance(resolution, bool):
        raise UserInputError(f"resolution must be a whole number of pixels, not {resolution!r}")
    targets = tuple(ExportTarget(n, opset_of[n], resolution) for n in names)
    return RunPlan(name, targets, config, layout, metric)


def run_pipeline(
    models: Iterable[str] | None = None,
    threads: str | int | Iterable[int] = (1, 2),
    rounds: int = 30,
    *,
    opsets: int | Mapping[str, int] | None = None,
    resolution: int = DEFAULT_RESOLUTION,
    output_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike = "models",
    layout: str = "wide",
    warmup: int = 5,
    isolate: bool = True,
    force: bool = False,
    seed: int = 0,
    name: str = "run",
    extra_columns: Callable[["ExportResult"], Mapping[str, Any]] | None = None,
    on_event: Event | None = None,
    observer: "SweepObserver | None" = None,
    remote: "RemoteRun | None" = None,
    preset: str = "study",
    metric: str = "p50",
    **bench: Any,
) -> PipelineResult:
    """Export ``models`` (registry names), measure them in one bench sweep, and write the report and a plot.

    The defaults are the original study's preset, not ``mbbench export``'s: ``models`` default to the
    ``preset``'s (:data:`PRESETS`: ``study``, the study's three families, or ``pareto``, two sizes of every
    family), every model at ``resolution`` 224 and ``opsets`` (see :func:`resolve_opsets`) the
    study's per family, MobileOne 12, MobileViT 17, MobileViT v2 18. Exports go to ``models_dir`` and are
    reused when a file of the same name exists (``force`` re-exports). Bench options mean what ``mbbench
    bench``'s do. The run folder (``output_dir``, default ``results/<name>-<host>-<time>/``) receives
    ``<name>.csv`` and its ``.samples.csv``, ``<name>.md`` (the report in ``layout``, with the latency-vs-MACs
    correlations) and ``<name>.png`` (the overview plot). ``extra_columns(export)`` adds columns to that
    model's rows.

    A model that fails to export or run is listed in ``failures`` and the others are still reported; if none
    is left, the first failure is raised. With ``remote`` (:class:`mbbench.remote.RemoteRun`) the exports are
    measured on its targets over SSH, into the same CSV, and the report has one section per device.
    """
    plan = plan_run(models, threads, rounds, opsets=opsets, resolution=resolution, layout=layout, warmup=warmup,
                    isolate=isolate, seed=seed, name=name, preset=preset, metric=metric, **bench)  # fmt: skip
    return execute_plan(plan, output_dir=output_dir, models_dir=models_dir, force=force,
                        extra_columns=extra_columns, on_event=on_event, observer=observer, remote=remote)  # fmt: skip


def execute_plan(
    plan: RunPlan,
    *,
    output_dir: str | os.PathLike | None = None,
    models_dir: str | os.PathLike = "models",
    force: bool = False,
    extra_columns: Callable[["ExportResult"], Mapping[str, Any]] | None = None,
    on_event: Event | None = None,
    observer: "SweepObserver | None" = None,
    remote: "RemoteRun | None" = None,
) -> PipelineResult:
    """Carry out ``plan`` (see :func:`run_pipeline` for what is written where)."""
    from mbbench.export import export_onnx

    started = time.perf_counter()
    emit = on_event or (lambda _message: None)
    folder = RunFolder.create(output_dir, plan.name)
    exports, failures = [], []
    for index, target in enumerate(plan.targets, start=1):
        model = target.model
        size = f"{target.resolution}x{target.resolution}"
        prefix = f"[{index}/{len(plan.targets)}] {model} (opset {target.opset}, {size})"
        emit(f"{prefix}: exporting")
        try:
            result = export_onnx(model, opset=target.opset, resolution=target.resolution, output_dir=models_dir,
                                 force=force, seed=plan.config.seed)  # fmt: skip
        except MbbenchError as exc:
            failures.append((model, str(exc)))
            emit(f"{prefix}: export failed: {exc}")
            continue
        exports.append(result)
        how = "reused the existing export" if result.skipped else f"exported in {result.export_seconds:.1f} s"
        fold = f", fold {result.fold}" if result.fold else ""
        emit(f"{prefix}: {how} ({Path(result.path).name}{fold})")
    if not exports:
        raise MbbenchError(f"no model could be exported, first {failures[0][0]}: {failures[0][1]}")

    extras = {r.path: dict(extra_columns(r)) for r in exports} if extra_columns else None
    sweep = measure_into(folder, [r.path for r in exports], plan.config, extras, observer, remote)
    failures += [(f.model, f.message) for f in sweep.failures] + [(f.target, f.message) for f in sweep.target_failures]
    if not sweep.rows:
        raise MbbenchError(f"no model could be measured, first {failures[0][0]}: {failures[0][1]}")

    results, correlations = _write_report(folder, plan.layout, plan.metric)
    return PipelineResult(
        models=[t.model for t in plan.targets],
        exports=exports,
        results=results,
        correlations=correlations,
        folder=folder,
        layout=plan.layout,
        metric=plan.metric,
        seconds=time.perf_counter() - started,
        failures=failures,
    )


def measure_into(folder: RunFolder, paths, config: "BenchConfig", extra_columns=None,
                 observer: "SweepObserver | None" = None, remote: "RemoteRun | None" = None) -> "SweepResult":  # fmt: skip
    """The one bench sweep of a run: every file at every thread count of ``config``, each row appended to
    ``folder.csv`` as its configuration ends (raw rounds to ``folder.samples``). With ``remote``, the sweep runs
    on its targets (:func:`mbbench.remote.bench_targets`): exported here, measured there.

    A model that fails to load or run is in the result's ``failures``, a target that failed in its
    ``target_failures``. Ctrl-C
    keeps what was saved and re-raises :class:`KeyboardInterrupt`.
    """
    from mbbench.measure import resolve, sweep as measure

    observer = observer or _warning_observer()
    files = resolve([Path(p) for p in paths], note=observer.note)
    sweep = measure(files, config, remote=remote, output=folder.csv, extra_columns=extra_columns, observer=observer)
    if sweep.interrupted:
        raise KeyboardInterrupt(f"{len(sweep.rows)} of {sweep.total} configurations were measured")
    return sweep


def _warning_observer():
    from mbbench.bench.runner import SweepObserver

    class WarningObserver(SweepObserver):
        """Without a front end, what bench would tell the user (oversubscription) becomes a warning."""

        def note(self, message: str) -> None:
            warnings.warn(message, RuntimeWarning, stacklevel=2)

    return WarningObserver()


def _write_report(folder: RunFolder, layout: str, metric: str = "p50") -> tuple["pd.DataFrame", "pd.DataFrame"]:
    from mbbench import report

    results = report.load([folder.csv])
    report.write_text(folder.summary, report.render(results, "markdown", metric, layout=layout))
    report.save_figure(report.plot_overview(results, metric), folder.plot)
    return results, report.correlations(results)
