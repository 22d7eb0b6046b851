"""``mbbench report``: bench CSVs -> tables, comparison, analysis and plots (rendering only; see mbbench.report)."""

from __future__ import annotations

import math

import click

from mbbench.cli._common import MbbenchCommand, console
from mbbench.cli.options import compare_option, format_option, metric_option, output_file_option

# The library (pandas, scipy, matplotlib) is imported inside the command so that `mbbench --help` and the
# other commands do not pay for it.


@click.command("report", cls=MbbenchCommand)
@click.argument("csvs", nargs=-1, required=True, metavar="CSV...")
@metric_option("The statistic the cells use (mean cells also show the std).")
@format_option()
@output_file_option("Write the report to FILE instead of standard output.")
@click.option("--plot", type=click.Path(dir_okay=False), metavar="FILE.png", help="Write one overview figure.")
@click.option("--plots-dir", type=click.Path(file_okay=False), metavar="DIR", help="Write each plot as a PNG in DIR.")
@compare_option("An earlier run's bench CSV to compare with: the ratio new/base and, with the samples sidecars, "
                "a Mann-Whitney U test.")
@click.option(
    "--layout", type=click.Choice(["wide", "long"]), default="wide", show_default=True,
    help="wide: models x thread counts; long: | model | rounds | num_threads | mean (ms) | std (ms) |.",
)
@click.option("--combine", is_flag=True, help="Pool rows repeated across runs (same model, threads, host).")
@click.option("--model", "models", multiple=True, metavar="GLOB", help="Only these models (repeatable).")
@click.option("--threads", metavar="SPEC", help="Only these thread counts: a count (2), a range (1-4) or a list (1,2,4).")
@click.option("--host", "hosts", multiple=True, metavar="GLOB", help="Only these hosts (repeatable).")
@click.option(
    "--alpha", type=float, default=0.05, show_default=True, callback=lambda ctx, param, value: _alpha(value),
    help="Significance level of --compare, between 0 and 1.",
)
def report_cmd(csvs, metric, fmt, output, plot, plots_dir, base, layout, combine, models, threads, hosts, alpha):
    """Turn bench CSVs into tables, a run-to-run comparison, a latency-vs-MACs analysis and plots.

    Results from different machines are never averaged together: each gets its own tables.

    \b
    Examples:
      mbbench report results/*.csv
      mbbench report results/new.csv --compare results/base.csv --format markdown
      mbbench report results/run.csv --threads 1-2 --plot overview.png
    """
    from mbbench import report as lib

    if plot and plots_dir:
        raise click.UsageError("--plot and --plots-dir both given; use --plot for one figure or --plots-dir for each.")
    # Refuse unusable destinations before any work, so a bad --plot never follows a printed report, and never
    # write over an input or its samples sidecar (the measurements would be gone).
    inputs = [p for csv in (*csvs, *([base] if base else [])) for p in (csv, lib.samples_path(csv))]
    if output:
        lib.check_destination(output, inputs=inputs)
    if plot:
        lib.check_destination(plot, ".png", inputs=inputs)
    if plots_dir:
        lib.check_plots_dir(plots_dir, inputs=inputs)
    results = lib.load(csvs, samples=True)
    for note in results.attrs.get("notes", []):
        click.echo(note, err=True)
    from mbbench.bench.options import parse_threads

    wanted = parse_threads(threads) if threads else ()
    results = lib.filter_results(results, models, wanted, hosts)
    if combine:
        results = lib.combine(results)
    comparison = None
    if base is not None:
        base_results = lib.filter_results(lib.load([base], samples=True), models, wanted, hosts)
        comparison = lib.compare(results, base_results, metric, alpha)

    base_label = str(base) if base else "base"
    if fmt == "table" and output is None:
        out = console()
        for renderable in lib.to_rich(lib.build_document(results, metric, layout, comparison, base_label, alpha)):
            out.print(renderable)
    else:
        text = lib.render(results, fmt, metric, layout, comparison, base_label, alpha)
        if output is None:
            click.echo(text, nl=False)
        else:
            lib.write_text(output, text, inputs=inputs)
            click.echo(f"Wrote {output}", err=True)

    if plot:
        click.echo(f"Wrote {lib.save_figure(lib.plot_overview(results, metric), plot, inputs=inputs)}", err=True)
    if plots_dir:
        written = lib.write_plots(results, plots_dir, metric, inputs=inputs)
        for path in written:
            click.echo(f"Wrote {path}", err=True)
        if "latency_vs_macs.png" not in {p.name for p in written}:
            click.echo("No model has known MACs, so latency_vs_macs.png was not written.", err=True)


def _alpha(value: float) -> float:
    if not (math.isfinite(value) and 0 < value < 1):
        raise click.BadParameter(f"{value} is not a significance level; give a number between 0 and 1, e.g. 0.05.")
    return value
