"""``mbbench run``: export -> bench -> report in one command (:func:`mbbench.pipeline.run_pipeline`)."""

from __future__ import annotations

from pathlib import Path

import click

from mbbench.cli._common import MbbenchCommand
from mbbench.cli.study import Progress, bench_options, print_pipeline


@click.command("run", cls=MbbenchCommand)
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option("--opset", type=int, default=None,
              help="One opset for every model [default: the study's: MobileOne 12, MobileViT 17, MobileViT v2 18].")
@click.option("--resolution", type=int, default=224, show_default=True, help="Square input size of every model.")
@click.option("--layout", type=click.Choice(["wide", "long"]), default="wide", show_default=True,
              help="wide: models x thread counts; long: | model | rounds | num_threads | mean (ms) | std (ms) |.")
@click.option("--models-dir", type=click.Path(path_type=Path), default=Path("models"), show_default=True,
              help="Where the ONNX files go; existing exports of the same name are reused.")
@click.option("--force", is_flag=True, help="Re-export models that already have a file in --models-dir.")
@bench_options()
def run_cmd(models, opset, resolution, layout, models_dir, force, threads, rounds, warmup, isolate, seed, output):
    """Export, measure and report registry models in one go.

    With no MODEL: mobileone-s0, mobilevit-xxs and mobilevitv2-050, one of each family. Writes run.csv (and
    its .samples.csv), run.md (the report) and run.png (the overview plot) into --output.

    \b
    Examples:
      mbbench run
      mbbench run mobileone-s1 mobilevit-xs --threads 1-2 --rounds 50
      mbbench run mobilevitv2-100 --opset 17 --layout long
    """  # fmt: skip
    from mbbench.pipeline import DEFAULT_MODELS, run_pipeline

    progress = Progress()
    result = run_pipeline(
        list(models) or DEFAULT_MODELS, threads, rounds, opsets=opset, resolution=resolution, output_dir=output,
        models_dir=models_dir, layout=layout, warmup=warmup, isolate=isolate, force=force, seed=seed,
        on_event=progress.event, observer=progress.observer,
    )  # fmt: skip
    print_pipeline(result)
