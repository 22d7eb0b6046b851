"""``mbbench bench``: parse options, run :func:`mbbench.measure.sweep` (here or on ``--target`` devices), show
progress and the summary."""

from __future__ import annotations


import click
from rich.markup import escape
from rich.table import Table

from mbbench.bench._runner import SweepObserver, default_output
from mbbench.bench.formatting import flag_marks, format_latency, threads_label
from mbbench.bench.options import BenchConfig
from mbbench.bench.summary import footer_lines, summary_grid
from mbbench.cli._common import MbbenchCommand, console, progress_bar
from mbbench.cli.options import (
    measurement_options,
    models_dir_option,
    output_file_option,
    selection,
    selection_options,
    target_options,
)


def _name(label: str, runtime: str | None) -> str:
    return label if runtime in (None, "onnxruntime") else f"{label} [{runtime}]"


class _RichObserver(SweepObserver):
    """A progress bar (configuration k of N, ETA) on stderr, one line per finished configuration above it."""

    def __init__(self, out):
        self.out = out
        self.progress = progress_bar(out)
        self.task = None

    def note(self, message: str) -> None:
        self.out.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

    def info(self, message: str) -> None:
        self.out.print(f"[dim]{escape(message)}[/]", soft_wrap=True)

    def configuration_refused(self, model, threads, reason) -> None:
        self.out.print(escape(f"{_name(model.label, model.runtime)} @ {threads_label(threads)}: not supported "
                              f"({reason})"), soft_wrap=True)
        self.progress.advance(self.task)

    def sweep_started(self, total: int) -> None:
        self.task = self.progress.add_task("starting", total=total)
        self.progress.start()

    def configuration_started(self, index, total, model, threads) -> None:
        self.progress.update(self.task, description=escape(f"{_name(model.label, model.runtime)} @ {threads}t"))

    def configuration_finished(self, row, stats, measurement) -> None:
        self.out.print(
            escape(f"{_name(row['model'], row.get('runtime'))} @ {threads_label(row['threads'])}"
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
@measurement_options()
@target_options()
@output_file_option("Results CSV [default: results/<host>-<timestamp>.csv]; raw samples go to <stem>.samples.csv.")
@click.option("--append", is_flag=True, help="Add rows to an existing --output of the same schema.")
@models_dir_option("Where registry names and a bare 'mbbench bench' find exported models.")
@selection_options()
def bench_cmd(models, bench, runtimes, remote, output, append, models_dir, precision, opset, resolution):
    """Measure the latency of each MODEL at each thread count, here or on devices (--target).

    A MODEL is an .onnx file, a folder of them, or a registry name such as mobileone-s0: its fp32 export at
    the model's default resolution and the default opset in --models-dir (--precision, --opset and
    --resolution choose another). With no MODEL, every .onnx in --models-dir. Each row is saved the moment its
    configuration ends; oversubscribed (†), unstable (!) and contended (‡, the machine was busy) numbers are
    flagged.

    \b
    Examples:
      mbbench bench mobileone-s0 --threads 1,2 --rounds 50
      mbbench bench models/ --threads 1-4 --min-time 5 --output results/ci.csv
      mbbench bench mobileone-s0 --target ssh://phone --target ssh://pi@board --cpus 4-7 --cool-to 40
    """
    from mbbench.measure import resolve, sweep

    err = console(stderr=True)
    config = BenchConfig(**bench)
    observer = _RichObserver(err)
    files = resolve(models, models_dir, selection(precision, opset, resolution), note=observer.note)
    try:
        result = sweep(files, config, remote=remote, output=output or default_output(), append=append,
                       observer=observer, runtimes=runtimes)
    finally:
        observer.stop()

    if result.rows:
        _print_summary(result.rows)
    saved = (
        f"{len(result.rows)} of {result.total} configurations saved to {result.output} "
        f"(raw samples: {result.samples_output})"
        if result.rows else "nothing was saved"
    )
    err.print(f"{escape(saved)}.", soft_wrap=True)
    if result.interrupted:
        # re-raised so the command ends the one way every command does (130 for Ctrl-C, 143 for SIGTERM)
        raise result.interruption or KeyboardInterrupt()
    if result.skipped:
        err.print(f"--resume: {result.skipped} configurations were already in {escape(str(result.output))}.",
                  soft_wrap=True)
    if result.target_failures:
        raise click.ClickException(
            f"{len(result.target_failures)} of {len(remote.targets)} target(s) failed: "
            + "; ".join(f.message for f in result.target_failures)
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
