"""``mbbench report``: bench CSVs -> tables, comparison, analysis and plots (rendering only; see mbbench.report)."""

from __future__ import annotations

import click

from mbbench.cli._common import MbbenchCommand, console

# The library (pandas, scipy, matplotlib) is imported inside the command so that `mbbench --help` and the
# other commands do not pay for it.


@click.command("report", cls=MbbenchCommand)
@click.argument("csvs", nargs=-1, required=True, metavar="CSV...")
@click.option(
    "--metric", type=click.Choice(["mean", "p50", "p90"]), default="mean", show_default=True,
    help="Latency statistic in the cells (mean cells also show the std).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "markdown", "csv", "json", "html"]), default="table",
    show_default=True, help="table: terminal tables; markdown: GitHub tables; csv/json: data; html: a page.",
)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the report to FILE instead of stdout.")
@click.option("--plot", type=click.Path(dir_okay=False), metavar="FILE.png", help="Write one overview figure.")
@click.option("--plots-dir", type=click.Path(file_okay=False), metavar="DIR", help="Write each plot as a PNG in DIR.")
@click.option(
    "--compare", "base", type=click.Path(dir_okay=False), metavar="BASE.csv",
    help="Compare with a base run: ratio new/base and Mann-Whitney U significance (needs the samples sidecars).",
)
@click.option(
    "--layout", type=click.Choice(["wide", "long"]), default="wide", show_default=True,
    help="wide: models x thread counts; long: | model | rounds | num_threads | mean (ms) | std (ms) |.",
)
@click.option("--combine", is_flag=True, help="Pool rows repeated across runs (same model, threads, host).")
@click.option("--model", "models", multiple=True, metavar="GLOB", help="Only these models (repeatable).")
@click.option("--threads", multiple=True, type=int, help="Only these thread counts (repeatable).")
@click.option("--host", "hosts", multiple=True, metavar="GLOB", help="Only these hosts (repeatable).")
@click.option(
    "--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True), default=0.05, show_default=True,
    help="Significance level of --compare.",
)
def report_cmd(csvs, metric, fmt, output, plot, plots_dir, base, layout, combine, models, threads, hosts, alpha):
    """Turn bench CSVs into tables, a run-to-run comparison, a latency-vs-MACs analysis and plots.

    Results from different machines are never averaged together: each gets its own tables.
    """
    from mbbench import report as lib

    if plot and plots_dir:
        raise click.UsageError("--plot and --plots-dir both given; use --plot for one figure or --plots-dir for each.")
    # Refuse unusable destinations before any work, so a bad --plot never follows a printed report.
    if output:
        lib.check_destination(output)
    if plot:
        lib.check_destination(plot, ".png")
    if plots_dir:
        lib.check_plots_dir(plots_dir)
    results = lib.load(csvs, samples=combine or base is not None)
    results = lib.filter_results(results, models, threads, hosts)
    if combine:
        results = lib.combine(results)
    comparison = None
    if base is not None:
        base_results = lib.filter_results(lib.load([base], samples=True), models, threads, hosts)
        comparison = lib.compare(results, base_results, metric, alpha)

    base_label = base or "base"
    if fmt == "table" and output is None:
        out = console()
        for renderable in lib.to_rich(lib.build_document(results, metric, layout, comparison, base_label, alpha)):
            out.print(renderable)
    else:
        text = lib.render(results, fmt, metric, layout, comparison, base_label, alpha)
        if output is None:
            click.echo(text, nl=False)
        else:
            lib.write_text(output, text)
            click.echo(f"Wrote {output}", err=True)

    if plot:
        click.echo(f"Wrote {lib.save_figure(lib.plot_overview(results, metric), plot)}", err=True)
    if plots_dir:
        written = lib.write_plots(results, plots_dir, metric)
        for path in written:
            click.echo(f"Wrote {path}", err=True)
        if len(written) < len(lib.PLOT_FILES):
            click.echo("No model has known MACs, so latency_vs_macs.png was not written.", err=True)
