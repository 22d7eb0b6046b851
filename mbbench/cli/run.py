"""``mbbench run``: export -> bench -> report in one command (:func:`mbbench.pipeline.run_pipeline`)."""

from __future__ import annotations


import click

from mbbench.cli._common import MbbenchCommand
from mbbench.cli.options import (
    measurement_options,
    metric_option,
    models_dir_option,
    output_dir_option,
    target_options,
)
from mbbench.cli.study import Progress, print_pipeline
from mbbench.pipeline import PRESETS


@click.command("run", cls=MbbenchCommand)
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option("--opset", type=int, default=None,
              help="One opset for every model [default: the study preset: MobileOne 12, MobileViT 17, "
                   "MobileViT v2 18].")
@click.option("--resolution", type=int, default=224, show_default=True,
              help="Square input size of every model (the study preset; 'mbbench export' uses each model's own).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default="study", show_default=True,
              help="The models measured when none is named: study (mobileone-s0, mobilevit-xxs, mobilevitv2-050) or "
                   "pareto (a small and a mid size of all six families: latency against MACs and parameters).")
@click.option("--force", is_flag=True, help="Re-export models that already have a file in --models-dir.")
@measurement_options()
@target_options(resume=False)
@metric_option()
@click.option("--layout", type=click.Choice(["wide", "long"]), default="wide", show_default=True,
              help="wide: models x thread counts; long: | model | rounds | num_threads | mean (ms) | std (ms) |.")
@output_dir_option("run")
@models_dir_option("Where the ONNX files go; an existing export of the same model and inputs is reused.")
def run_cmd(models, opset, resolution, preset, force, bench, runtimes, remote, metric, layout, output, models_dir):
    """Export, measure and report registry models in one go.

    With no MODEL: mobileone-s0, mobilevit-xxs and mobilevitv2-050, one of each family. Exports use the
    original study's preset, not the defaults of 'mbbench export' (opset 17, each model's own resolution):
    every model at 224x224, at opset 12 (MobileOne), 17 (MobileViT) or 18 (MobileViT v2); --opset and --resolution
    change it. Writes run.csv (and its .samples.csv), run.md (the report) and run.png (the overview plot) into
    --output-dir.

    \b
    Examples:
      mbbench run
      mbbench run mobileone-s1 mobilevit-xs --threads 1,2 --rounds 50
      mbbench run mobilevitv2-100 --opset 17 --layout long
      mbbench run --preset pareto --threads 1
      mbbench run --target ssh://phone --target ssh://pi@board   # export here, measure there
    """  # fmt: skip
    from mbbench.pipeline import run_pipeline

    if runtimes != ("onnxruntime",):
        raise click.UsageError("run measures its exports in ONNX Runtime; for other runtimes use 'mbbench bench "
                               "--runtime'")
    progress = Progress()
    bench = dict(bench)
    threads, rounds = bench.pop("threads"), bench.pop("rounds")
    result = run_pipeline(
        list(models) or None, threads, rounds, opsets=opset, resolution=resolution, output_dir=output,
        models_dir=models_dir, layout=layout, force=force, on_event=progress.event, observer=progress.observer,
        remote=remote, preset=preset, metric=metric, **bench,
    )  # fmt: skip
    print_pipeline(result)
