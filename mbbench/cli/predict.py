"""``mbbench predict``: ``predict build`` measures a device's kernels once into a predictor file
(:func:`mbbench.predict.build.build_predictor`); ``predict MODEL...`` predicts each model's latency from it
(:func:`mbbench.predict.build.predict_models`) without running the model."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape

from mbbench.cli._common import MbbenchCommand, MbbenchGroup, console
from mbbench.cli.options import format_option, models_dir_option, selection, selection_options, target_options

DEFAULT_DIR = Path("results") / "predictors"


class _PredictGroup(MbbenchGroup):
    """``predict build ...`` is the sub-command; anything else (``predict MODEL ...``) is the prediction."""

    def resolve_command(self, ctx, args):
        if args and args[0] in self.commands:
            return super().resolve_command(ctx, args)
        return "models", self.commands["models"], args

    def parse_args(self, ctx, args):
        if not args:
            raise click.UsageError("name the models to predict and --predictor FILE, or 'build' to make a predictor")
        return super().parse_args(ctx, args)

    def format_usage(self, ctx, formatter):
        formatter.write_usage("mbbench predict", "[build] ... | MODEL... --predictor FILE")


@click.group("predict", cls=_PredictGroup,
             context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
def predict_group() -> None:
    """A model's latency on a device, predicted from kernels measured once on that device.

    'mbbench predict build' measures (here, or on a --target device) the kernels ONNX Runtime runs, in random
    variants of MobileOne, MobileNetV3 and MobileViT (never the zoo's own models), and saves the measurements as
    a predictor file. 'mbbench predict MODEL... --predictor FILE' then predicts each model's latency, with its
    uncertainty and a breakdown by kernel, without running it.

    \b
    Examples:
      mbbench predict build --budget 15
      mbbench predict build --target ssh://phone --threads 2 --budget 30 -o results/predictors/phone.json
      mbbench predict mobileone-s0 mobilevit-xxs --predictor results/predictors/amd-epyc-onnxruntime-1.32.0-1t.json
    """


@predict_group.command("build", cls=MbbenchCommand)
@click.option("--runtime", default="onnxruntime", show_default=True, metavar="NAME",
              help="The runtime to predict for (ONNX Runtime: its profiler shows the kernels it runs).")
@click.option("--threads", type=int, default=1, show_default=True, help="Intra-op threads the predictor is for.")
@click.option("--budget", type=float, default=15.0, show_default=True, metavar="MINUTES",
              help="Time spent measuring; more gives a surer predictor.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the generated variants.")
@click.option("--rounds", type=click.IntRange(1, 10_000), default=10, show_default=True,
              help="Profiled rounds per variant.")
@click.option("--warmup", type=click.IntRange(0, 10_000), default=3, show_default=True)
@target_options(resume=False)
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
              help=f"The predictor file [default: {DEFAULT_DIR}/<cpu>-<runtime>-<version>-<threads>t.json].")
def build_cmd(runtime, threads, budget, seed, rounds, warmup, remote, output) -> None:
    """Measure a device's kernels into a predictor file (a few hundred kernels a minute on a 2-core machine)."""
    from mbbench.predict.build import build_predictor, check_budget

    check_budget(budget)
    err = console(stderr=True)
    report = build_predictor(budget_minutes=budget, threads=threads, runtime=runtime, remote=remote, seed=seed,
                             rounds=rounds, warmup=warmup,
                             note=lambda message: err.print(f"[dim]{escape(message)}[/]", soft_wrap=True))
    predictor = report.predictor
    path = predictor.save(output or DEFAULT_DIR / f"{predictor.name}.json")
    click.echo(f"Wrote {path}: {len(predictor.samples)} kernels from {len(report.profiled)} variants in "
               f"{report.seconds / 60:.1f} min ({predictor.device.get('cpu_model')}, {runtime} "
               f"{predictor.runtime.get('version')}, {threads} thread{'s' if threads != 1 else ''})")


@predict_group.command("models", cls=MbbenchCommand, hidden=True)
@click.argument("models", nargs=-1, required=True, metavar="MODEL...")
@click.option("--predictor", "predictor_file", type=click.Path(path_type=Path, dir_okay=False), required=True,
              metavar="FILE", help="A predictor file from 'mbbench predict build'.")
@format_option()
@click.option("--breakdown/--no-breakdown", default=True, show_default=True,
              help="The predicted time of each kind of kernel (tables: the three largest).")
@models_dir_option("Where registry names find their exports.")
@selection_options()
def models_cmd(models, predictor_file, fmt, breakdown, models_dir, precision, opset, resolution) -> None:
    """Predicted latency of each MODEL (an .onnx file, a folder of them, or a registry name's export)."""
    from mbbench.measure import resolve
    from mbbench.predict.build import predict_models
    from mbbench.predict.model import Predictor

    predictor = Predictor.load(predictor_file)
    files = resolve(models, models_dir, selection(precision, opset, resolution))
    predictions = predict_models([f.path for f in files], predictor, [f.label for f in files])
    if fmt == "json":
        click.echo(json.dumps([p.to_dict(breakdown) for p in predictions], indent=1))
    elif fmt == "csv":
        import pandas as pd

        from mbbench.report.document import defuse_formulas

        frame = pd.DataFrame([{**p.to_dict(breakdown=False), "gmacs": p.macs / 1e9, "kernels": len(p.kernels)}
                              for p in predictions])
        click.echo(defuse_formulas(frame).to_csv(index=False, lineterminator="\n"), nl=False)
    else:
        from mbbench.report.document import to_html, to_markdown, to_rich

        document = _document(predictions, predictor, predictor_file, breakdown)
        if fmt == "table":
            out = console()
            for renderable in to_rich(document):
                out.print(renderable)
        else:
            click.echo((to_markdown if fmt == "markdown" else to_html)(document), nl=False)


def _document(predictions, predictor, predictor_file, breakdown: bool):
    """The predictions as the report's text tables (rendered like every other command's tables)."""
    from mbbench.report.document import Document, Section, Table

    threads = f"{predictor.threads} thread{'s' if predictor.threads != 1 else ''}"
    where = f"{predictor.device.get('cpu_model')}, {predictor.runtime.get('name')} {predictor.runtime.get('version')}"
    headers = ["model", "predicted ms", "10-90% of the trees", "GMACs", "kernels"]
    rows = [[p.model, f"{p.predicted_ms:.2f}", f"{p.low_ms:.2f}-{p.high_ms:.2f}", f"{p.macs / 1e9:.3f}",
             str(len(p.kernels))] for p in predictions]
    if breakdown:
        headers.append("largest kernels")
        for row, p in zip(rows, predictions):
            row.append(", ".join(f"{pattern} {ms:.2f}" for pattern, ms, _ in p.by_pattern()[:3]))
    table = Table(f"predicted latency on {where}, {threads}", headers, rows,
                  ["left", "right", "right", "right", "right", *(["left"] if breakdown else [])],
                  [f"predictor: {predictor_file} ({len(predictor.samples)} kernels from {len(predictor.models)} "
                   "variants); predicted, not measured: 'mbbench bench' measures"])
    return Document(f"Predicted latency on {where}, {threads}", [], [Section("mbbench predict", [table])])
