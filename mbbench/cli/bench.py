"""``mbbench bench``: parse options, run :func:`mbbench.bench.runner.run_sweep` (or, with ``--target``,
:func:`mbbench.remote.bench_targets`), show progress and the summary."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from mbbench.bench._runner import SweepObserver, default_output, run_sweep
from mbbench.bench.api import registry_resolve
from mbbench.bench.formatting import flag_marks, format_latency, threads_label
from mbbench.bench.modelfile import resolve_models
from mbbench.bench.options import GRAPH_OPT_LEVELS, MAX_SECONDS, MAX_THREADS, BenchConfig
from mbbench.bench.summary import footer_lines, summary_grid
from mbbench.cli._common import MbbenchCommand, console
from mbbench.cli.options import bench_options, device_options, selection, selection_options, target_options


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
        self.out.print(
            escape(f"{row['model']} @ {threads_label(row['threads'])}"
                   + (f" on {row['target']}" if row.get("target") else "")
                   + f": {format_latency(stats.mean_ms, stats.std_ms)} ms{flag_marks(row)}")
        )
        self.progress.advance(self.task)

    def configuration_failed(self, model, threads, message) -> None:
        self.out.print(f"[red]failed:[/] {escape(model.label)} @ {threads_label(threads)}: {escape(message)}")
        self.progress.advance(self.task)

    def configuration_skipped(self, model, threads) -> None:
        self.progress.advance(self.task)

    def stop(self) -> None:
        self.progress.stop()


@click.command("bench", cls=MbbenchCommand)
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@bench_options()
@click.option("--min-time", type=float, default=0.0, metavar="S",
              help=f"Keep timing until both --rounds and S seconds are reached (0 to {MAX_SECONDS:g}).")
@click.option("--graph-opt", type=click.Choice(GRAPH_OPT_LEVELS), default="all", show_default=True,
              help="ORT graph optimisation level.")
@click.option("--spin/--no-spin", "spinning", default=None,
              help="ORT intra-op thread spinning (default: ORT's own, which spins).")
@click.option("--inter-threads", type=int, default=1, show_default=True,
              help=f"ORT inter-op threads (1 to {MAX_THREADS}); above 1 switches ORT to its parallel executor.")
@click.option("--provider", default="CPUExecutionProvider", show_default=True, help="ORT execution provider.")
@click.option("--input-shape", "input_shapes", multiple=True, metavar="SPEC",
              help="Sizes for dynamic inputs: 1x3x224x224 (any input of that rank), NAME:1x3x224x224, or "
                   "DIM=8 (a symbolic dimension). Repeatable; unspecified dynamic dimensions are 1; at most "
                   "2**31 elements per input.")
@click.option("--shuffle", is_flag=True, help="Run the configurations in a (seeded) random order.")
@click.option("--cooldown", type=float, default=0.0, metavar="S",
              help=f"Pause S seconds between configurations (0 to {MAX_SECONDS:g}).")
@device_options()
@target_options()
@click.option("--output", "-o", type=click.Path(path_type=Path),
              help="Results CSV [default: results/<host>-<timestamp>.csv]; raw samples go to <stem>.samples.csv.")
@click.option("--append", is_flag=True, help="Add rows to an existing --output of the same schema.")
@click.option("--models-dir", type=click.Path(path_type=Path), default=Path("models"), show_default=True,
              help="Where registry names and a bare 'mbbench bench' look for exported models.")
@selection_options()
def bench_cmd(models, threads, rounds, warmup, isolate, seed, min_time, graph_opt, spinning, inter_threads,
              provider, input_shapes, shuffle, cooldown, cpus, cool_to, cool_timeout, remote, output, append,
              models_dir, precision, opset, resolution):
    """Measure ONNX Runtime latency of each MODEL at each thread count, here or on devices (--target).

    A MODEL is an .onnx file, a folder of them, or a registry name such as mobileone-s0: its fp32 export at
    the model's default resolution and the default opset in --models-dir (--precision, --opset and
    --resolution choose another). With no MODEL, every .onnx in --models-dir. Each row is saved the moment its
    configuration ends; oversubscribed (†), unstable (!) and contended (‡, the machine was busy) numbers are
    flagged.

    \b
    Examples:
      mbbench bench mobileone-s0 --threads 1-2 --rounds 50
      mbbench bench models/ --threads 1,2,4 --min-time 5 --output results/ci.csv
      mbbench bench mobileone-s0 --target ssh://phone --target ssh://pi@board --cpus 4-7 --cool-to 40
    """
    err = console(stderr=True)
    config = BenchConfig(
        threads=threads, rounds=rounds, warmup=warmup, min_time=min_time, graph_opt=graph_opt, spinning=spinning,
        inter_threads=inter_threads, provider=provider, input_shapes=tuple(input_shapes), seed=seed,
        isolate=isolate, shuffle=shuffle, cooldown=cooldown, cpus=cpus, cool_to=cool_to, cool_timeout=cool_timeout,
    )
    observer = _RichObserver(err)
    files = resolve_models(models, models_dir, note=observer.note, resolve=registry_resolve,
                           select=selection(precision, opset, resolution))
    try:
        destination = output if output is not None else default_output()
        if remote is None:
            result = run_sweep(files, config, output=destination, append=append, observer=observer)
        else:
            from mbbench.remote import bench_targets

            result = bench_targets(files, config, remote.targets, output=destination, append=append,
                                   resume=remote.resume, settings=remote.settings, observer=observer)
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
        err.print(f"{escape(saved)}.", soft_wrap=True)
        # re-raised so the command ends the one way every command does (130 for Ctrl-C, 143 for SIGTERM)
        raise result.interruption or KeyboardInterrupt()
    err.print(f"{escape(saved)}.", soft_wrap=True)
    skipped = getattr(result, "skipped", 0)
    if skipped:
        err.print(f"--resume: {skipped} configurations were already in {escape(str(result.output))}.", soft_wrap=True)
    target_failures = getattr(result, "target_failures", [])
    if target_failures:
        raise click.ClickException(
            f"{len(target_failures)} of {len(remote.targets)} target(s) failed: "
            + "; ".join(f.message for f in target_failures)
        )
    if result.failures:
        names = ", ".join(dict.fromkeys(f.model for f in result.failures))
        raise click.ClickException(f"{len(set(f.file for f in result.failures))} model(s) failed: {names}")


def _print_summary(rows) -> None:
    out = console()
    threads, lines = summary_grid(rows)
    table = Table(title="Latency (ms, mean ± std)", title_justify="left")
    table.add_column("model")
    for t in threads:
        table.add_column(threads_label(t), justify="right")
    for model, cells in lines:
        table.add_row(escape(model), *(escape(c) if c else "[dim]-[/]" for c in cells))
    out.print(table)
    for line in footer_lines(rows):
        out.print(escape(line), soft_wrap=True)
