"""``mbbench export``: registry models to verified ONNX files in ``models/``."""

from __future__ import annotations

from pathlib import Path

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from mbbench.cli._common import MbbenchCommand, console
from mbbench.errors import MbbenchError


@click.command("export", cls=MbbenchCommand)
@click.option("--model", "-m", "names", multiple=True, metavar="NAME", help="Registry model (repeatable).")
@click.option("--all", "all_models", is_flag=True, help="Every registry model.")
@click.option("--opset", type=int, default=17, show_default=True, help="ai.onnx opset written into the file (11-23).")
@click.option("--resolution", type=int, default=None, help="Square input size [default: per model, 224 or 256].")
@click.option("--batch", type=int, default=1, show_default=True, help="Batch size of the example input.")
@click.option("--dynamic-batch", is_flag=True, help="Make the batch dimension dynamic.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Local checkpoint (.pth/.pth.tar/.pt).")
@click.option("--no-reparam", is_flag=True, help="Export MobileOne's multi-branch training form.")
@click.option(
    "--fold",
    type=click.Choice(["auto", "col2im", "reshape"]),
    default="auto",
    show_default=True,
    help="MobileViT v2 fold: Col2Im (opset >= 18) or the exactly equal reshape form.",
)
@click.option(
    "--no-fuse-norms",
    is_flag=True,
    help="MobileViT v2: keep GroupNorm scale/shift as separate ops instead of folding them into the next conv.",
)
@click.option(
    "--exporter",
    type=click.Choice(["auto", "torchscript", "dynamo"]),
    default="auto",
    show_default=True,
    help="auto: TorchScript below opset 18, dynamo from 18, each falling back to the other.",
)
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim.")
@click.option("--tolerance", type=float, default=1e-4, show_default=True, help="Parity tolerance (relative).")
@click.option(
    "--output-dir", type=click.Path(file_okay=False), default="models", show_default=True, help="Where files go."
)
@click.option("--force", is_flag=True, help="Overwrite existing files (default: skip them).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random init and parity input.")
def export_cmd(
    names, all_models, opset, resolution, batch, dynamic_batch, weights, no_reparam, fold, no_fuse_norms, exporter,
    no_simplify, tolerance, output_dir, force, seed,
) -> None:  # fmt: skip
    """Export registry models to ONNX at the asked opset, simplified and checked against PyTorch.

    Writes models/<name>-<resolution>-opset<N>[-unfused][-<fold>].onnx and a JSON manifest next to it.
    """
    from mbbench.export import export_onnx
    from mbbench.export.opset import check_opset_request
    from mbbench.models import list_models, resolve_name

    if all_models and names:
        raise click.UsageError("give --model NAME ... or --all, not both")
    if not all_models and not names:
        raise click.UsageError("name a model with --model NAME (repeatable) or use --all; see 'mbbench list'")
    check_opset_request(opset)
    targets = list_models() if all_models else list(dict.fromkeys(resolve_name(n) for n in names))
    if weights and len(targets) > 1:
        raise click.UsageError("--weights loads one checkpoint: use it with a single --model")

    out = console()
    results, failures = [], []
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console(stderr=True), transient=True
    ) as progress:
        overall = progress.add_task(f"exporting {len(targets)} model(s)", total=len(targets))
        for name in targets:
            task = progress.add_task(f"{name}: starting", total=None)

            def on_stage(stage: str, task=task, name=name) -> None:
                progress.update(task, description=f"{name}: {stage}")

            try:
                result = export_onnx(
                    name, opset=opset, resolution=resolution, batch=batch, dynamic_batch=dynamic_batch,
                    weights=weights, reparam=not no_reparam, fold=fold, fuse_norms=not no_fuse_norms, exporter=exporter,
                    simplify=not no_simplify, tolerance=tolerance, output_dir=output_dir, force=force,
                    seed=seed, on_stage=on_stage,
                )  # fmt: skip
                results.append(result)
                state = "skipped (exists; --force to redo)" if result.skipped else "done"
                progress.update(task, description=f"{name}: {state}")
            except MbbenchError as exc:
                failures.append((name, str(exc)))
                progress.update(task, description=f"{name}: failed")
            progress.remove_task(task)
            progress.advance(overall)

    if results:
        table = Table(title=f"ONNX export (opset {opset})")
        for column in ("model", "opset", "exporter", "fold", "nodes", "parity (rel)", "seconds", "file"):
            table.add_column(column, justify="right" if column in ("opset", "nodes", "seconds") else "left")
        for r in results:
            table.add_row(
                r.model,
                str(r.opset),
                r.exporter,
                r.fold or "-",
                f"{r.nodes_before}->{r.nodes_after}",
                f"{r.parity_max_rel:.1e}",
                "skipped" if r.skipped else f"{r.export_seconds:.1f}",
                Path(r.path).name,
            )
        out.print(table)
        out.print(f"files in {Path(results[0].path).parent}/ (each with a .json manifest)")
        for r in results:
            if r.simplify_error:
                out.print(f"[yellow]{r.model}: kept the unsimplified graph ({r.simplify_error})[/yellow]")
    if failures and len(targets) == 1:
        raise click.ClickException(failures[0][1])
    if failures:
        for name, message in failures:
            click.echo(f"Error: {message}", err=True)
        raise click.ClickException(f"{len(failures)} of {len(targets)} exports failed")
