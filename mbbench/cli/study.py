"""``mbbench study``: the studies behind the numbers, one subcommand each (see :mod:`mbbench.studies`).

Each subcommand parses options, calls one library function, prints its summary and says where the files are.
Progress (exports, then one line per measured configuration) goes to stderr, the summary to stdout. Every bad
input, including an unknown study name or option, ends in one ``Error:`` line and a non-zero exit status.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click
from rich.markup import escape

from mbbench.cli._common import MbbenchGroup, console
from mbbench.cli.options import (
    measurement_options,
    metric_option,
    models_dir_option,
    output_dir_option,
    target_options,
)
from mbbench.studies.choices import ATTENTION_KINDS

# The library (torch, pandas, matplotlib) is imported inside the commands so that `mbbench --help` stays fast.


class _StudyGroup(MbbenchGroup):
    noun = "study"


class Progress:
    """Progress lines on stderr: the library's events and, as a bench observer, each measured configuration."""

    def __init__(self):
        from mbbench.bench.runner import SweepObserver

        out = console(stderr=True)

        class Observer(SweepObserver):
            def note(self, message: str) -> None:
                out.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

            def configuration_finished(self, row, stats, measurement) -> None:
                from mbbench.bench.formatting import flag_marks, format_latency, format_ms, threads_label

                marks = flag_marks(row)
                out.print(f"{escape(str(row['model']))} @ {threads_label(row['threads'])}: median "
                          f"{format_ms(stats.p50_ms)} ms, mean {format_latency(stats.mean_ms, stats.std_ms)} ms"
                          + (f"[yellow]{escape(marks)}[/]" if marks else ""), soft_wrap=True)  # fmt: skip

            def configuration_failed(self, model, threads, message) -> None:
                from mbbench.bench.formatting import threads_label

                out.print(f"[red]failed:[/] {escape(model.label)} @ {threads_label(threads)}: {escape(message)}",
                          soft_wrap=True)  # fmt: skip

        self.out = out
        self.observer = Observer()

    def event(self, message: str) -> None:
        self.out.print(escape(message), soft_wrap=True)

    def hooks(self) -> dict:
        """The progress keyword arguments of a study (``on_event``, ``observer``)."""
        return {"on_event": self.event, "observer": self.observer}


def study_options(what: str = "<study>", targets: bool = True):
    """Every option of :class:`mbbench.studies.StudySettings`: --opset (of the study's networks), --metric, every
    measurement option, --output-dir, --models-dir and, with ``targets``, --target and its options. The command
    receives them as one ``settings`` dict."""

    def decorate(function):
        @functools.wraps(function)
        def command(*args, bench, runtimes, **kwargs):
            if runtimes != ("onnxruntime",):
                raise click.UsageError("the studies measure their networks in ONNX Runtime: --runtime onnxruntime")
            names = ("opset", "metric", "output", "remote", "models_dir")
            settings = {name: kwargs.pop(name) for name in names if name in kwargs}
            return function(*args, settings={**settings, **bench}, **kwargs)

        inner = target_options(resume=False)(command) if targets else command
        inner = models_dir_option("Where the study's networks are exported [default: the output folder's models/].",
                                  default=None)(inner)
        inner = output_dir_option(what)(metric_option("The statistic the ratios, slopes and crossovers use.")(inner))
        inner = measurement_options()(inner)
        return click.option("--opset", type=int, default=17, show_default=True,
                            help="ai.onnx opset of the exported networks.")(inner)

    return decorate


def print_study(result) -> None:
    """The summary on stdout, then where the files went on stderr."""
    from mbbench.report import to_rich

    out = console()
    for renderable in to_rich(result.document):
        out.print(renderable)
    files = [result.csv, result.summary, result.plot]
    click.echo(f"Wrote {', '.join(map(str, files))} in {result.seconds:.0f} s", err=True)


def print_pipeline(result) -> None:
    """The report on stdout, where the files went on stderr, and a one-line error if some models failed."""
    from mbbench.report import build_document, to_rich

    out = console()
    for renderable in to_rich(build_document(result.results, result.metric, layout=result.layout)):
        out.print(renderable)
    reused = sum(1 for e in result.exports if e.skipped)
    if reused:
        click.echo(f"Reused {reused} existing export(s) from {Path(result.exports[0].path).parent}/ "
                   "(--force re-exports them).", err=True)  # fmt: skip
    click.echo(f"Wrote {result.csv}, {result.summary}, {result.plot} in {result.seconds:.0f} s", err=True)
    if result.failures:
        for model, message in result.failures:
            click.echo(f"failed: {model}: {message}", err=True)
        names = ", ".join(dict.fromkeys(model for model, _ in result.failures))
        raise click.ClickException(f"{len(result.failures)} model(s) failed and are not in the report: {names}")


@click.group("study", cls=_StudyGroup)
def study_group() -> None:
    """The studies behind the numbers: why are some mobile models fast?

    Each study exports its networks (verified against PyTorch), measures them in one bench sweep and writes
    the bench CSV (with study, factor, value columns), a markdown summary and a PNG plot into one folder.
    """


@study_group.command("activations")
@click.option("--activations", "names", metavar="LIST",
              help="Comma-separated subset [default: all]: relu, gelu, se-relu, selu, hardswish, silu, arelu, "
                   "dyrelu-a, dyrelu-b, dyshiftmax, relu6, mish. ReLU, the baseline, is always measured.")
@click.option("--depth", type=int, default=30, show_default=True, help="Conv + BN + activation layers.")
@click.option("--width", type=int, default=16, show_default=True, help="Channels of the first stage (x2, x4 after).")
@click.option("--resolution", type=int, default=64, show_default=True, help="Square input size.")
@study_options()
def activations_cmd(names, depth, width, resolution, settings):
    """A 30-layer plain CNN, identical except for its activation: latency and ratio to ReLU.

    \b
    Examples:
      mbbench study activations
      mbbench study activations --activations gelu,dyrelu-b --threads 1 --rounds 50
    """  # fmt: skip
    from mbbench.studies import activation_study

    progress = Progress()
    result = activation_study(names, depth=depth, width=width, resolution=resolution, **settings, **progress.hooks())
    print_study(result)


@study_group.command("blocks")
@click.option("--variants", "names", metavar="LIST",
              help="Comma-separated subset [default: all]: plain, se, skip, se-skip, branches-k1, branches-k4. "
                   "plain, the baseline, is always measured.")
@click.option("--width", type=int, default=32, show_default=True, help="Channels of the first stage (x2, x4 after).")
@click.option("--pairs", type=int, default=4, show_default=True,
              help="(depthwise, pointwise) block pairs per stage (3 stages).")
@click.option("--resolution", type=int, default=224, show_default=True, help="Square input size.")
@study_options()
def blocks_cmd(names, width, pairs, resolution, settings):
    """A MobileOne-style stack with/without SE, skip connections and branches: latency and ratio to plain.

    \b
    Examples:
      mbbench study blocks
      mbbench study blocks --variants se,branches-k4 --threads 1-2
    """  # fmt: skip
    from mbbench.studies import block_study

    progress = Progress()
    result = block_study(names, width=width, pairs=pairs, resolution=resolution, **settings, **progress.hooks())
    print_study(result)


@study_group.command("attention")
@click.option("--tokens", default="64,256,1024,4096", show_default=True, metavar="LIST",
              help="Token counts k, comma-separated (each 1-8192).")
@click.option("--dim", type=int, default=256, show_default=True, help="Embedding size (a multiple of the 4 heads).")
@click.option("--kinds", default=",".join(ATTENTION_KINDS), show_default=True, metavar="LIST",
              help="Attention kinds, comma-separated: " + ", ".join(f"{k} ({v})" for k, v in ATTENTION_KINDS.items()))
@study_options()
def attention_cmd(tokens, dim, kinds, settings):
    """Multi-head (MobileViT v1) vs separable (MobileViT v2) attention, and Mobile-Former's cross attention over
    6 tokens: latency per k, log-log slopes, the MHA/separable crossover.

    \b
    Examples:
      mbbench study attention
      mbbench study attention --tokens 16,64,256 --dim 128 --threads 1 --kinds mha,cross
    """  # fmt: skip
    from mbbench.studies import attention_study

    progress = Progress()
    kinds = [k.strip() for k in kinds.split(",") if k.strip()]
    result = attention_study(tokens, dim=dim, kinds=kinds, **settings, **progress.hooks())
    print_study(result)


@study_group.command("reproduce")
@click.option("--quick", is_flag=True,
              help="mobileone-s0, mobilevit-xxs, mobilevitv2-050 at threads 1,2 x 10 rounds (a couple of minutes).")
@click.option("--model", "-m", "models", multiple=True, metavar="NAME",
              help="Only these models (repeatable), each at its family's study opset [default: every zoo model, "
                   "or one per family with --quick].")
@click.option("--force", is_flag=True, help="Re-export models that already have a file in --models-dir.")
@measurement_options(threads=None, rounds=None,
                     defaults_note=" [default: 1-4, or 1,2 with --quick; 3 and 4 oversubscribe a 2-core machine]")
@metric_option()
@output_dir_option("reproduce")
@models_dir_option("Where the ONNX files go; an existing export of the same model and inputs is reused.")
@target_options(resume=False)
def reproduce_cmd(quick, models, force, bench, runtimes, metric, output, models_dir, remote):
    """The original study end to end: every zoo model, its study opset, 224x224, threads 1-4 x 30 rounds.

    MobileOne s0-s4 re-parameterized at opset 12, MobileViT v1 at 17, MobileViT v2 at 18; the report in the
    study's long layout with the latency-vs-MACs correlations, and the overview plot. --rounds defaults to 30
    (10 with --quick).

    \b
    Examples:
      mbbench study reproduce --quick
      mbbench study reproduce --threads 1,2 --rounds 50
    """  # fmt: skip
    from mbbench.studies import reproduce_study

    if runtimes != ("onnxruntime",):
        raise click.UsageError("the study measured ONNX Runtime: --runtime onnxruntime")
    progress = Progress()
    bench = dict(bench)
    threads, rounds = bench.pop("threads", None), bench.pop("rounds", None)
    result = reproduce_study(
        quick, threads, rounds, models=list(models) or None, output=output, models_dir=models_dir, force=force,
        on_event=progress.event, observer=progress.observer, remote=remote, metric=metric, **bench,
    )  # fmt: skip
    print_pipeline(result)


@study_group.command("precision")
@click.option("--model", "-m", "models", multiple=True, metavar="NAME",
              help="Models to study (repeatable) [default: mobileone-s0, mobilevit-xxs, mobilevitv2-050].")
@click.option("--precision", "precisions", default="fp32,fp16,int8,int8-dynamic", show_default=True, metavar="LIST",
              help="Precisions to measure (fp32, the reference, always).")
@click.option("--sensitivity", "by", default="op", show_default=True, metavar="op|block|op,block",
              help="Which sensitivity analyses: int8 with one op type, or one block (from the node names' module "
                   "paths), at a time kept in float.")
@click.option("--goal-cosine", type=float, default=0.99, show_default=True,
              help="Fidelity goal: the summary names the cheapest choices whose cosine reaches it.")
@click.option("--calibration", default="random", show_default=True, metavar="random|DIR",
              help="INT8 calibration and fidelity inputs: random tensors, or a folder of images.")
@click.option("--calibration-size", type=int, default=32, show_default=True, help="INT8 calibration inputs.")
@click.option("--calibration-method", type=click.Choice(["minmax", "entropy", "percentile"]), default="minmax",
              show_default=True, help="How INT8 activation ranges are chosen.")
@click.option("--fidelity-inputs", type=int, default=64, show_default=True, help="Held-out inputs for the fidelity.")
@click.option("--resolution", type=int, default=None, help="Square input size [default: per model, 224 or 256].")
@study_options("precision")
def precision_cmd(models, precisions, by, goal_cosine, calibration, calibration_size, calibration_method,
                  fidelity_inputs, resolution, settings):  # fmt: skip
    """FP16 and INT8 against FP32: latency and fidelity, and which op types (or blocks) must stay in float.

    \b
    Examples:
      mbbench study precision
      mbbench study precision --model mobilevitv2-050 --sensitivity op,block --goal-cosine 0.98
    """  # fmt: skip
    from mbbench.studies import precision_study

    progress = Progress()
    result = precision_study(
        list(models) or None, precisions=precisions, by=by, goal_cosine=goal_cosine, calibration=calibration,
        calibration_size=calibration_size, calibration_method=calibration_method, fidelity_inputs=fidelity_inputs,
        resolution=resolution, **settings, **progress.hooks(),
    )  # fmt: skip
    print_study(result)
