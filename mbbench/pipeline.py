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
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mbbench.errors import MbbenchError, UserInputError

if TYPE_CHECKING:
    import pandas as pd

    from mbbench.bench.runner import SweepObserver
    from mbbench.export import ExportResult

#: What ``mbbench run`` measures when no model is named: one model of each family, the smallest.
DEFAULT_MODELS = ("mobileone-s0", "mobilevit-xxs", "mobilevitv2-050")
#: The opsets of the original study, per family. MobileViT v2 failed to export at 18 there (Col2Im); mbbench
#: exports it through Col2Im where the exporter manages, else through the exactly equal reshape fold.
STUDY_OPSETS = {"mobileone": 12, "mobilevit": 17, "mobilevitv2": 18}
#: The original study measured every model at 224x224 (MobileViT's own default is 256).
DEFAULT_RESOLUTION = 224
DEFAULT_RESULTS_DIR = Path("results")

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
    """``results/<stem>-<host>-<local time>``, with a counter if a run in the same second took that name."""
    host = re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "host"
    base = f"{stem}-{host}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    path, n = Path(parent) / base, 1
    while path.exists():
        n += 1
        path = Path(parent) / f"{base}-{n}"
    return path


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


def run_pipeline(
    models: Iterable[str] | None = DEFAULT_MODELS,
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
) -> PipelineResult:
    """Export ``models`` (registry names), measure them in one bench sweep, and write the report and a plot.

    ``opsets``: see :func:`resolve_opsets` (default: the study's, MobileOne 12, MobileViT 17, MobileViT v2 18).
    ``resolution`` applies to every model. Exports go to ``models_dir`` and are reused when a file of the same
    name exists (``force`` re-exports). Bench options mean what ``mbbench bench``'s do. The run folder
    (``output_dir``, default ``results/<name>-<host>-<time>/``) receives ``<name>.csv`` and its
    ``.samples.csv``, ``<name>.md`` (the report in ``layout``, with the latency-vs-MACs correlations) and
    ``<name>.png`` (the overview plot). ``extra_columns(export)`` adds columns to that model's rows.

    A model that fails to export or run is listed in ``failures`` and the others are still reported; if none
    is left, the first failure is raised.
    """
    from mbbench.bench.options import BenchConfig
    from mbbench.models import resolve_name
    from mbbench.report import LAYOUTS

    started = time.perf_counter()
    emit = on_event or (lambda _message: None)
    names = list(dict.fromkeys(resolve_name(m) for m in (models or DEFAULT_MODELS)))
    if not names:
        raise UserInputError("no model to run: name registry models (see 'mbbench list')")
    opset_of = resolve_opsets(names, opsets)
    if layout not in LAYOUTS:
        raise UserInputError(f"unknown layout '{layout}': choose wide or long")
    config = BenchConfig(threads=threads, rounds=rounds, warmup=warmup, seed=seed, isolate=isolate)
    if not isinstance(resolution, int) or isinstance(resolution, bool):
        raise UserInputError(f"resolution must be a whole number of pixels, not {resolution!r}")
    folder = RunFolder.create(output_dir, name)

    from mbbench.export import export_onnx

    exports, failures = [], []
    for index, model in enumerate(names, start=1):
        prefix = f"[{index}/{len(names)}] {model} (opset {opset_of[model]}, {resolution}x{resolution})"
        emit(f"{prefix}: exporting")
        try:
            result = export_onnx(
                model, opset=opset_of[model], resolution=resolution, output_dir=models_dir, force=force, seed=seed,
            )
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
    frame = benchmark_into(folder, [r.path for r in exports], config, extras, observer)
    failures += [(f["model"], f["message"]) for f in frame.attrs.get("failures", [])]
    if frame.empty:
        raise MbbenchError(f"no model could be measured, first {failures[0][0]}: {failures[0][1]}")

    results, correlations = _write_report(folder, layout)
    return PipelineResult(
        models=names,
        exports=exports,
        results=results,
        correlations=correlations,
        folder=folder,
        layout=layout,
        seconds=time.perf_counter() - started,
        failures=failures,
    )


def benchmark_into(folder: RunFolder, paths, config, extra_columns=None, observer=None,
                   on_error: str = "ignore") -> "pd.DataFrame":  # fmt: skip
    """The one bench call of a run: every file in one :func:`mbbench.benchmark` sweep with ``config``'s options,
    each row appended to ``folder.csv`` as its configuration ends (raw rounds to ``folder.samples``)."""
    import mbbench

    return mbbench.benchmark(
        paths, threads=config.threads, rounds=config.rounds, warmup=config.warmup, seed=config.seed,
        isolate=config.isolate, output=folder.csv, extra_columns=extra_columns, on_error=on_error, observer=observer,
    )  # fmt: skip


def _write_report(folder: RunFolder, layout: str) -> tuple["pd.DataFrame", "pd.DataFrame"]:
    from mbbench import report

    results = report.load([folder.csv])
    report.write_text(folder.summary, report.render(results, "markdown", layout=layout))
    report.save_figure(report.plot_overview(results), folder.plot)
    return results, report.correlations(results)
