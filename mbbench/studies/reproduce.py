"""The original study, end to end: every zoo model at the study's opsets and 224x224, threads 1-4 x 30 rounds.

MobileOne s0-s4 re-parameterized at opset 12, MobileViT v1 (xxs, xs, s) at 17, MobileViT v2 (0.5-2.0) at 18,
which failed to export in the original study (no ``Col2Im`` path then) and now goes through Col2Im or the
exactly equal reshape fold. The report is the study's long layout (``| model | rounds | num_threads | mean (ms)
| std (ms) |``) with the latency-vs-MACs correlations and the overview plot. ``quick`` measures one model per
family (mobileone-s0, mobilevit-xxs, mobilevitv2-050) at threads 1, 2 with 10 rounds: a couple of minutes.

This is :func:`mbbench.pipeline.run_pipeline` with the study's settings; threads 3 and 4 oversubscribe a 2-core
machine, which bench flags (those rows measure contention) and the report marks.
"""

from __future__ import annotations

from collections.abc import Iterable

from mbbench.pipeline import (
    DEFAULT_MODELS,
    DEFAULT_RESOLUTION,
    STUDY_OPSETS,
    Event,
    PipelineResult,
    RunPlan,
    execute_plan,
    plan_run,
)

STUDY = "reproduce"
THREADS = "1-4"
ROUNDS = 30
QUICK_MODELS = DEFAULT_MODELS
QUICK_THREADS = "1,2"
QUICK_ROUNDS = 10
LAYOUT = "long"


def study_models() -> list[str]:
    """The original study's 15 models: every MobileOne, MobileViT v1 and v2 (registry order).

    Families that joined the zoo later are not part of the study being reproduced.
    """
    from mbbench.models import list_models

    return [name for family in STUDY_OPSETS for name in list_models(family)]


def reproduce_plan(
    quick: bool = False,
    threads: str | int | Iterable[int] | None = None,
    rounds: int | None = None,
    *,
    models: Iterable[str] | None = None,
    warmup: int = 5,
    isolate: bool = True,
    seed: int = 0,
    metric: str = "p50",
    **bench,
) -> RunPlan:
    """What :func:`reproduce_study` exports and measures with these arguments, decided without doing it."""
    chosen = list(models) if models is not None else (list(QUICK_MODELS) if quick else study_models())
    return plan_run(
        chosen,
        threads if threads is not None else (QUICK_THREADS if quick else THREADS),
        rounds if rounds is not None else (QUICK_ROUNDS if quick else ROUNDS),
        opsets=dict(STUDY_OPSETS),
        resolution=DEFAULT_RESOLUTION,
        layout=LAYOUT,
        warmup=warmup,
        isolate=isolate,
        seed=seed,
        name=STUDY,
        metric=metric,
        **bench,
    )


def reproduce_study(
    quick: bool = False,
    threads: str | int | Iterable[int] | None = None,
    rounds: int | None = None,
    *,
    models: Iterable[str] | None = None,
    output: str | None = None,
    models_dir: str = "models",
    warmup: int = 5,
    isolate: bool = True,
    force: bool = False,
    seed: int = 0,
    on_event: Event | None = None,
    observer=None,
    remote=None,
    metric: str = "p50",
    **bench,
) -> PipelineResult:
    """Run the original study (or its ``quick`` version); ``threads``/``rounds``/``models`` override the study's.

    Rows get ``study=reproduce``, ``factor=family``, ``value=<family>``. Writes ``reproduce.csv`` (+
    ``.samples.csv``), ``reproduce.md`` and ``reproduce.png`` into ``output`` (default
    ``results/reproduce-<host>-<time>/``); the ONNX files go to ``models_dir`` and are reused when present.
    ``bench`` takes every other :class:`~mbbench.bench.options.BenchConfig` option.
    """
    plan = reproduce_plan(quick, threads, rounds, models=models, warmup=warmup, isolate=isolate, seed=seed,
                          metric=metric, **bench)
    return execute_plan(
        plan,
        output_dir=output,
        models_dir=models_dir,
        force=force,
        extra_columns=lambda export: {"study": STUDY, "factor": "family", "value": export.family},
        on_event=on_event,
        observer=observer, remote=remote,
    )
