"""``mbbench export``: registry models to verified ONNX files in ``models/``.

Choices and ranges come from :mod:`mbbench.export.options` (no torch import until the export starts).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from mbbench.cli._common import MbbenchCommand, console, progress_bar
from mbbench.cli.options import models_dir_option
from mbbench.errors import UserInputError
from mbbench.export import options as opts
from mbbench.export.batch import check_jobs


def _library_check(check):
    """A click callback running the library's own range check, so the CLI and the API refuse alike."""

    def callback(ctx, param, value):
        if value is None:
            return None
        try:
            return check(value)
        except UserInputError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


@click.command("export", cls=MbbenchCommand)
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option("--model", "-m", "names", multiple=True, metavar="NAME", help="Registry model (repeatable; the same as MODEL).")
@click.option("--all", "all_models", is_flag=True, help="Every registry model.")
@click.option("--opset", type=int, default=opts.DEFAULT_OPSET, show_default=True, callback=_library_check(opts.check_opset),
              help=f"ai.onnx opset written into the file ({opts.MIN_OPSET}-{opts.MAX_OPSET}).")
@click.option("--resolution", type=int, default=None, callback=_library_check(opts.check_resolution),
              help=f"Square input size, {opts.MIN_RESOLUTION}-{opts.MAX_RESOLUTION} [default: per model, 224 or 256].")
@click.option("--batch", type=int, default=1, show_default=True, callback=_library_check(opts.check_batch),
              help=f"Batch size of the example input ({opts.MIN_BATCH}-{opts.MAX_BATCH}).")
@click.option("--dynamic-batch", is_flag=True, help="Make the batch dimension dynamic.")
@click.option("--weights", type=click.Path(dir_okay=False), default=None, help="Local checkpoint (.pth/.pth.tar/.pt).")
@click.option("--no-reparam", is_flag=True, help="Export MobileOne's multi-branch training form.")
@click.option(
    "--fold",
    type=click.Choice(opts.FOLDS),
    default="auto",
    show_default=True,
    help="MobileViT v2 patch unfold/fold, named by the graph it gives: col2im (one-hot Conv, then Col2Im; opset >= 18), "
    "unfold (ml-cvnets' F.unfold/F.fold: Gather, then Col2Im; opset >= 18), pixel (Conv, then DepthToSpace) or "
    "reshape (6-D Transpose), all exactly equal; auto: col2im where it exports, else pixel (the fastest measured).",
)
@click.option(
    "--no-fuse-norms",
    is_flag=True,
    help="MobileViT v2: keep GroupNorm scale/shift as separate ops instead of folding them into the next conv.",
)
@click.option(
    "--exporter",
    type=click.Choice(opts.EXPORTER_CHOICES),
    default="auto",
    show_default=True,
    help="auto: TorchScript below opset 18, dynamo from 18, each falling back to the other.",
)
@click.option("--no-simplify", is_flag=True, help="Skip onnxsim.")
@click.option("--tolerance", type=float, default=1e-4, show_default=True, callback=_library_check(opts.check_tolerance),
              help="Parity tolerance (relative; finite, above 0).")
@models_dir_option("Where the exported files go (and where every other command finds them).")
@click.option("--force", is_flag=True, help="Overwrite existing files (default: skip them).")
@click.option("--seed", type=int, default=0, show_default=True, callback=_library_check(opts.check_seed),
              help=f"Seed of the random init and parity input (0-{opts.MAX_SEED}).")
@click.option("--precision", "precisions", multiple=True, metavar="LIST",
              callback=lambda ctx, param, value: _library_check(opts.check_precisions)(ctx, param, value or None),
              help=f"{', '.join(opts.PRECISIONS)}: repeatable or a comma list, each its own file [default: fp32].")
@click.option("--calibration", default="random", show_default=True, metavar="random|DIR",
              help="INT8 calibration inputs: seeded random tensors, or a folder of images (prepared as the family "
                   "was trained); fidelity is measured on other inputs from the same source.")
@click.option("--calibration-size", type=int, default=opts.DEFAULT_CALIBRATION_SIZE, show_default=True,
              callback=_library_check(opts.check_calibration_size), help="INT8 calibration inputs.")
@click.option("--calibration-method", type=click.Choice(opts.CALIBRATION_METHODS), default="minmax", show_default=True,
              help="How INT8 activation ranges are chosen from the calibration inputs.")
@click.option("--keep-float", metavar="OP[,OP]", callback=_library_check(opts.check_keep_float),
              help="ONNX op types INT8 leaves in float (e.g. Softmax,MatMul).")
@click.option("--fidelity-inputs", type=int, default=opts.DEFAULT_FIDELITY_INPUTS, show_default=True,
              callback=_library_check(opts.check_fidelity_inputs),
              help="Held-out inputs the FP16/INT8 fidelity (cosine, SQNR, top-1/top-5) is measured on.")
@click.option("--min-cosine", type=float, default=None, callback=_library_check(opts.check_min_cosine),
              help="Refuse (and write nothing for the model) when a variant's fidelity cosine is below this.")
@click.option("-j", "--jobs", type=int, default=None, metavar="N", callback=_library_check(check_jobs),
              help="Models exported at once, each in a worker process of its own [default: one per CPU, at most "
                   "one per model]; 1 exports them one after the other in this process.")
def export_cmd(
    models, names, all_models, opset, resolution, batch, dynamic_batch, weights, no_reparam, fold, no_fuse_norms,
    exporter, no_simplify, tolerance, models_dir, force, seed, precisions, calibration, calibration_size,
    calibration_method, keep_float, fidelity_inputs, min_cosine, jobs,
) -> None:  # fmt: skip
    """Export registry models to ONNX at the asked opset, simplified and checked against PyTorch.

    Writes models/<name>-<resolution>-opset<N>[-unfused][-<fold>][-<precision>].onnx and a JSON manifest next
    to it. FP16 and INT8 files are judged by their fidelity to the FP32 graph (cosine, SQNR, top-1/top-5
    agreement on held-out inputs), recorded in the manifest and shown in the summary.

    \b
    Examples:
      mbbench export mobileone-s2 --opset 12
      mbbench export mobilevitv2-100 mobilevit-xs --resolution 224
      mbbench export mobileone-s0 --precision fp32,int8 --calibration ~/images
      mbbench export --all
    """  # fmt: skip
    from mbbench.models import list_models, resolve_name

    names = (*models, *names)
    if all_models and names:
        raise click.UsageError("give MODEL ... or --all, not both")
    if not all_models and not names:
        raise click.UsageError("name a model (mbbench export MODEL ...) or use --all; see 'mbbench list'")
    targets = list_models() if all_models else list(dict.fromkeys(resolve_name(n) for n in names))
    if weights and len(targets) > 1:
        raise click.UsageError("--weights loads one checkpoint: use it with a single MODEL")

    from mbbench.export.batch import export_many

    progress = _Progress(len(targets))
    try:
        results, failures = export_many(
            targets, precisions or ("fp32",), jobs=jobs, on_event=progress, opset=opset, resolution=resolution,
            batch=batch, dynamic_batch=dynamic_batch, weights=weights, reparam=not no_reparam, fold=fold,
            fuse_norms=not no_fuse_norms, exporter=exporter, simplify=not no_simplify, tolerance=tolerance,
            output_dir=models_dir, force=force, seed=seed, calibration=calibration,
            calibration_size=calibration_size, calibration_method=calibration_method, keep_float=keep_float,
            fidelity_inputs=fidelity_inputs, min_cosine=min_cosine,
        )  # fmt: skip
    finally:
        progress.close()
    _print_results(results, opset)
    if failures and len(targets) == 1:
        raise click.ClickException(failures[0][1])
    if failures:
        for name, message in failures:
            click.echo(f"Error: {message}", err=True)
        raise click.ClickException(f"{len(failures)} of {len(targets)} exports failed")


class _Progress:
    """The events of :func:`~mbbench.export.batch.export_many`, shown. On a terminal: a bar (models done of n,
    elapsed, ETA) whose text names each model being exported now and its stage, with one line per finished model
    above it; elsewhere (CI logs, pipes) only those lines."""

    def __init__(self, total: int):
        self.total, self.finished = total, 0
        self.running: dict[str, str] = {}
        err = console(stderr=True)
        self.live = err.is_terminal
        self.progress = progress_bar(err, spinner=True, transient=True, disable=not self.live)
        self.task = self.progress.add_task("starting", total=total)
        if self.live:
            self.progress.start()

    def __call__(self, kind: str, name: str, detail) -> None:
        if kind in ("started", "stage"):
            if kind == "started" or name in self.running:
                self.running[name] = detail or "starting"
        else:
            self.running.pop(name, None)
            self.finished += 1
            self.progress.advance(self.task)
            text = f"[{self.finished}/{self.total}] {name}: {self._outcome(kind, detail)}"
            if self.live:
                self.progress.console.print(escape(text), soft_wrap=True, highlight=False)
            else:
                click.echo(text)
                sys.stdout.flush()
        self.progress.update(self.task, description=escape(" | ".join(f"{n}: {s}" for n, s in self.running.items())))

    def close(self) -> None:
        if self.live:
            self.progress.stop()

    @staticmethod
    def _outcome(kind: str, done) -> str:
        if kind == "failed":
            return "failed"
        if all(r.skipped for r in done):
            return "skipped (exists; --force to redo)"
        state = f"exported in {max(r.export_seconds for r in done if not r.skipped):.1f} s"
        remade = next((r.remade for r in done if r.remade), None)
        if remade:
            state = f"re-{state} (the existing file was {remade})"
        return f"{state} -> {', '.join(r.path for r in done)}" + _fidelity_note(done)


def _low_fidelity(result) -> bool:
    return result.fidelity_cosine is not None and not result.fidelity_cosine >= opts.LOW_FIDELITY_COSINE


def _fidelity_cell(result) -> str:
    """``cos 0.9954, top-1 91%`` for a variant; ``-`` for FP32 (its check is parity)."""
    if result.fidelity_cosine is None:
        return "-"
    flag = " !" if _low_fidelity(result) else ""
    return f"cos {result.fidelity_cosine:.4f}, top-1 {result.fidelity_top1:.0%}{flag}"


def _fidelity_note(results) -> str:
    cells = [f"{r.precision} {_fidelity_cell(r)}" for r in results if r.fidelity_cosine is not None]
    return f" ({'; '.join(cells)})" if cells else ""


def _print_results(results, opset) -> None:
    if not results:
        return
    out = console()
    variants = any(r.precision != "fp32" for r in results)
    table = Table(title=f"ONNX export (opset {opset})")
    columns = ["model", "opset", "exporter", "fold", "nodes", "parity (rel)",
               *(["precision", "fidelity"] if variants else []), "seconds", "file"]  # fmt: skip
    widest = max(len(r.model) for r in results)
    for column in columns:
        # a name is never cut: the model column keeps its width, a long file name folds onto a second line
        table.add_column(column, justify="right" if column in ("opset", "nodes", "seconds") else "left",
                         no_wrap=column == "model", min_width=widest if column == "model" else None,
                         overflow="fold")
    for r in results:
        table.add_row(
            escape(r.model),
            str(r.opset),
            escape(r.exporter),
            escape(r.fold or "-"),
            f"{r.nodes_before}->{r.nodes_after}",
            f"{r.parity_max_rel:.1e}",
            *([r.precision, _fidelity_cell(r)] if variants else []),
            "skipped" if r.skipped else f"{r.export_seconds:.1f}",
            escape(Path(r.path).name),
        )
    out.print(table)
    out.print(f"files in {escape(str(Path(results[0].path).parent))}/ (each with a .json manifest)")
    if variants:
        out.print("fidelity: the variant against the FP32 graph on held-out inputs (mean cosine of the outputs, "
                  "top-1 agreement); parity is the FP32 graph's against PyTorch")  # fmt: skip
    for r in results:
        if r.simplify_error:
            out.print(f"[yellow]{escape(r.model)}: kept the unsimplified graph ({escape(r.simplify_error)})[/yellow]")
    for r in results:
        if _low_fidelity(r):
            out.print(
                f"[yellow]! {escape(r.model)} {r.precision}: low fidelity, cosine {r.fidelity_cosine:.4f} < "
                f"{opts.LOW_FIDELITY_COSINE} (SQNR {r.fidelity_sqnr_db:.1f} dB, top-1 {r.fidelity_top1:.0%}, "
                f"top-5 {r.fidelity_top5:.0%} over {r.fidelity_inputs} {escape(r.fidelity_source or '')} inputs); "
                "try --calibration DIR, --keep-float OP or `mbbench study precision`; --min-cosine makes it an error"
                "[/yellow]",
                soft_wrap=True,
            )
