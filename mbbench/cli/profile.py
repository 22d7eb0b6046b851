"""``mbbench profile``: parse options, profile each model here or on ``--target`` devices
(:func:`mbbench.measure.profile`), write the folder and show the side-by-side tables (:mod:`mbbench.report.profile`)."""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
from rich.markup import escape

from mbbench.bench.attribution import DEFAULT_DEPTH
from mbbench.bench.formatting import flag_marks, format_ms, threads_label
from mbbench.bench.options import BenchConfig
from mbbench.bench.profiling import BY, MAX_DEPTH, check_depth, check_top
from mbbench.cli._common import MbbenchCommand, console
from mbbench.cli.options import (
    compare_option,
    format_option,
    measurement_options,
    models_dir_option,
    output_dir_option,
    selection,
    selection_options,
    target_options,
)


@click.command("profile", cls=MbbenchCommand)
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@measurement_options(threads="1")
@click.option("--by", type=click.Choice(BY), default="block", show_default=True,
              help="What the printed table and the plot group by: op type, block (module path), or node (the "
                   "--top slowest kernels). profile.md holds all three.")
@click.option("--top", type=int, default=10, show_default=True, help="How many of the slowest kernels to list.")
@click.option("--depth", type=int, default=DEFAULT_DEPTH, show_default=True,
              help=f"Module-path levels a block keeps (1 to {MAX_DEPTH}): 1 is layer_3.1, 2 layer_3.1/global_rep.")
@click.option("--reference/--no-reference", default=True, show_default=True,
              help="Also time the rounds without the profiler, to show what the profiler itself costs.")
@target_options(resume=False)
@output_dir_option("profile")
@format_option()
@compare_option("An earlier profile to diff with, op type by op type: its profile.csv or its folder.")
@models_dir_option("Where registry names and a bare 'mbbench profile' find exported models.")
@selection_options()
def profile_cmd(models, bench, runtimes, by, top, depth, reference, remote, output, fmt, base, models_dir, precision,
                opset, resolution):
    """Where each MODEL's milliseconds go, by op type, by block and by node, side by side.

    A MODEL is what 'mbbench bench' takes: an .onnx file, a folder of them, or a registry name such as
    mobilevit-xxs (its fp32 export at the default resolution and opset in --models-dir; --precision, --opset,
    --resolution choose another). ONNX Runtime's own profiler times every kernel; each kernel is counted once,
    under the op type ORT ran (fused kernels with the ops they cover), and in the block named by the module path
    the exporter wrote into the node names. What falls between kernels is shown as "between ops".
    Oversubscribed (†), unstable (!) and contended (‡) runs are flagged.

    \b
    Examples:
      mbbench profile mobilevit-xxs mobilevitv2-050
      mbbench profile models/net.onnx --threads 1,2 --by op --top 20 --output-dir results/net-profile
      mbbench profile mobilevit-xxs --compare results/profile-before --format markdown
    """
    from mbbench.measure import profile, resolve
    from mbbench.report import profile as report

    err = console(stderr=True)
    if runtimes != ("onnxruntime",):
        raise click.UsageError("profile reads ONNX Runtime's own profiler: --runtime onnxruntime only")

    def note(message: str) -> None:
        err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)

    def info(message: str) -> None:
        err.print(f"[dim]{escape(message)}[/]", soft_wrap=True)

    # every option is checked before any model is loaded or any folder made
    BenchConfig(**bench)
    depth, top = check_depth(depth), check_top(top)
    files = resolve(models, models_dir, selection(precision, opset, resolution), note=note)
    base_rows = report.read_profile_csv(base) if base is not None else None
    existed = output is not None and Path(output).is_dir()
    folder = report.prepare_folder(output)

    def done(p) -> None:
        flags = flag_marks({"oversubscribed": p.oversubscribed, "unstable": p.stats.unstable,
                            "contended": p.contended})
        err.print(escape(f"{p.label} @ {threads_label(p.threads)}: {format_ms(p.end_to_end_ms)} ms end to end, "
                         f"node time {p.coverage:.1%}, between ops {format_ms(p.between_ops_ms)} ms{flags}"),
                  soft_wrap=True)

    try:
        profiles = profile(files, remote=remote, note=note, info=info, done=done, depth=depth, reference=reference, **bench)
        comparisons = report.compare_ops(profiles, base_rows) if base_rows is not None else []
        base_label = str(base) if base is not None else "base"
        written = report.write_profile(profiles, folder, by, top, comparisons, base_label)
    except BaseException:
        if not existed:
            with contextlib.suppress(OSError):
                folder.rmdir()  # only when empty: the folder this run made and nothing went into
        raise

    document = report.build_document(profiles, by, top, comparisons, base_label)
    if fmt == "table":
        from mbbench.report.document import to_rich

        out = console()
        for renderable in to_rich(document):
            out.print(renderable)
    elif fmt == "markdown":
        from mbbench.report.document import to_markdown

        click.echo(to_markdown(document), nl=False)
    elif fmt == "html":
        from mbbench.report.document import to_html

        click.echo(to_html(document), nl=False)
    elif fmt == "csv":
        click.echo(report.to_csv(profiles), nl=False)
    else:
        click.echo(report.to_json(profiles), nl=False)
    traces = len(written) - len(report.PROFILE_FILES)
    err.print(escape(f"Wrote {folder}/: {', '.join(report.PROFILE_FILES)} and {traces} ORT trace"
                     f"{'s' if traces != 1 else ''}."), soft_wrap=True)
