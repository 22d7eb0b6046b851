"""``mbbench bench``: parse options, run :func:`mbbench.bench.runner.run_sweep`, show progress and the summary."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mbbench.bench.modelfile import resolve_models
from mbbench.bench.options import GRAPH_OPT_LEVELS, BenchConfig
from mbbench.bench.runner import SweepObserver, default_output, run_sweep
from mbbench.bench.summary import (
    OVERSUBSCRIBED_MARK,
    UNSTABLE_HINT,
    UNSTABLE_MARK,
    format_latency,
    oversubscribed_threads,
    summary_grid,
    unstable_notes,
)
from mbbench.cli._common import MbbenchCommand, console


class _RichObserver(SweepObserver):
    """A progress bar (configuration k of N, ETA) on stderr, one line per finished configuration above it."""

    def __init__(self, out):
        self.out = out
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=out,
        )
        self.task = None

    def note(self, message: str) -> None:
        self.out.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

    def sweep_started(self, total: int) -> None:
        self.task = self.progress.add_task("starting", total=total)
        self.progress.start()

    def configuration_started(self, index, total, model, threads) -> None:
        self.progress.update(self.task, description=escape(f"{model.label} @ {threads}t"))

    def configuration_finished(self, row, stats, measurement) -> None:
        flag = f" [yellow]{UNSTABLE_MARK} unstable[/]" if stats.unstable else ""
        self.out.print(
            f"{escape(str(row['model']))} @ {_threads(row['threads'])}: "
            f"{format_latency(stats.mean_ms, stats.std_ms)} ms{flag}"
        )
        self.progress.advance(self.task)

    def configuration_failed(self, model, threads, message) -> None:
        self.out.print(f"[red]failed:[/] {escape(model.label)} @ {_threads(threads)}: {escape(message)}")
        self.progress.advance(self.task)

    def configuration_skipped(self, model, threads) -> None:
        self.progress.advance(self.task)

    def stop(self) -> None:
        self.progress.stop()


@click.command("bench", cls=MbbenchCommand)
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option("--threads", default="1,2", show_default=True,
              help="Intra-op thread counts: a count (2), a range (1-4) or a list (1,2,4).")
@click.option("--rounds", type=int, default=30, show_default=True, help="Timed runs per configuration (at least 2).")
@click.option("--warmup", type=int, default=5, show_default=True, help="Untimed runs after the first (cold) one.")
@click.option("--min-time", type=float, default=0.0, metavar="S",
              help="Keep timing until both --rounds and S seconds are reached.")
@click.option("--graph-opt", type=click.Choice(GRAPH_OPT_LEVELS), default="all", show_default=True,
              help="ORT graph optimisation level.")
@click.option("--spin/--no-spin", "spinning", default=None,
              help="ORT intra-op thread spinning (default: ORT's own, which spins).")
@click.option("--inter-threads", type=int, default=1, show_default=True,
              help="ORT inter-op threads; above 1 switches ORT to its parallel executor.")
@click.option("--provider", default="CPUExecutionProvider", show_default=True, help="ORT execution provider.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="SPEC",
              help="Sizes for dynamic inputs: 1x3x224x224 (any input of that rank), NAME:1x3x224x224, or "
                   "DIM=8 (a symbolic dimension). Repeatable; unspecified dynamic dimensions are 1.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the inputs and for --shuffle.")
@click.option("--isolate/--no-isolate", default=True, show_default=True,
              help="Run each (model, threads) configuration in a fresh subprocess.")
@click.option("--shuffle", is_flag=True, help="Run the configurations in a (seeded) random order.")
@click.option("--cooldown", type=float, default=0.0, metavar="S", help="Pause S seconds between configurations.")
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Results CSV [default: results/<host>-<timestamp>.csv]; raw samples go to <stem>.samples.csv.")
@click.option("--append", is_flag=True, help="Add rows to an existing --output of the same schema.")
@click.option("--models-dir", type=click.Path(path_type=Path), default=Path("models"), show_default=True,
              help="Where registry names and a bare 'mbbench bench' look for exported models.")
def bench_cmd(models, threads, rounds, warmup, min_time, graph_opt, spinning, inter_threads, provider,
              input_shapes, seed, isolate, shuffle, cooldown, output, append, models_dir):
    """Measure ONNX Runtime latency of each MODEL at each thread count.

    A MODEL is an .onnx file, a folder of them, or a registry name such as mobileone-s0 (its newest export
    in --models-dir). With no MODEL, every .onnx in --models-dir. Each row is saved the moment its
    configuration ends; unstable or oversubscribed numbers are flagged.

    \b
    Examples:
      mbbench bench mobileone-s0 --threads 1-2 --rounds 50
      mbbench bench models/ --threads 1,2,4 --min-time 5 --output results/ci.csv
    """
    err = console(stderr=True)
    config = BenchConfig(
        threads=threads, rounds=rounds, warmup=warmup, min_time=min_time, graph_opt=graph_opt, spinning=spinning,
        inter_threads=inter_threads, provider=provider, input_shapes=tuple(input_shapes), seed=seed,
        isolate=isolate, shuffle=shuffle, cooldown=cooldown,
    )
    observer = _RichObserver(err)
    files = resolve_models(models, models_dir, note=observer.note)
    try:
        result = run_sweep(files, config, output=output or default_output(), append=append, observer=observer)
    finally:
        observer.stop()

    if result.rows:
        _print_summary(result.rows)
    saved = (
        f"{len(result.rows)} of {result.total} configurations saved to {result.output} "
        f"(raw samples: {result.samples_output})"
        if result.rows else "nothing was saved"
    )
    if result.interrupted:
        err.print(f"Interrupted: {escape(saved)}.", soft_wrap=True)
        raise SystemExit(130)
    err.print(f"{escape(saved)}.", soft_wrap=True)
    if result.failures:
        names = ", ".join(dict.fromkeys(f.model for f in result.failures))
        raise click.ClickException(f"{len(set(f.file for f in result.failures))} model(s) failed: {names}")


def _threads(count: int) -> str:
    return f"{count} thread{'s' if int(count) != 1 else ''}"


def _print_summary(rows) -> None:
    out = console()
    threads, lines = summary_grid(rows)
    table = Table(title="Latency (ms, mean ± std)", title_justify="left")
    table.add_column("model")
    for t in threads:
        table.add_column(_threads(t), justify="right")
    for model, cells in lines:
        table.add_row(escape(model), *(escape(c) if c else "[dim]-[/]" for c in cells))
    out.print(table)
    notes = unstable_notes(rows)
    if notes:
        out.print(f"[yellow]{UNSTABLE_MARK} unstable[/] ({len(notes)} of {len(rows)} rows); {UNSTABLE_HINT}:",
                  soft_wrap=True)
        for note in notes:
            out.print(f"  {escape(note)}", soft_wrap=True)
    over = oversubscribed_threads(rows)
    if over:
        out.print(
            f"{OVERSUBSCRIBED_MARK} oversubscribed: more threads ({', '.join(map(str, over))}) than this machine "
            "has cores; those numbers measure contention, not the model.",
            soft_wrap=True,
        )
