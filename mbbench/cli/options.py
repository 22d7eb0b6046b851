"""Option groups shared by several commands, each declared once (sqlite-utils' ``output_options``).

One vocabulary: an option spelled the same means the same thing in every command that takes it.

- ``measurement_options``: how a configuration is measured (threads, rounds, warm-up, the runtime and its
  options, inputs, isolation, order, the device's CPUs and temperature); every command that measures takes all of
  them and receives them as one ``bench`` dict of :class:`mbbench.bench.options.BenchConfig` fields, plus
  ``runtimes``;
- ``target_options``: where it is measured (``--target`` and how to reach it), as one ``remote`` argument;
- ``selection_options`` and ``models_dir_option``: which file a model name stands for, and where exports live;
- ``output_file_option`` (``-o/--output FILE``: a file the command writes) and ``output_dir_option``
  (``--output-dir DIR``: the folder a run, a profile or a study writes);
- ``metric_option``, ``format_option``, ``compare_option``: how results are shown and compared.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click

from mbbench.bench.schema import DEFAULT_METRIC, METRIC_COLUMNS

#: What every command that shows results can print.
FORMATS = ("table", "markdown", "csv", "json", "html")

#: The statistic a table, a ratio or a plot uses.
METRICS = tuple(METRIC_COLUMNS)


def _apply(options):
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate


#: The BenchConfig fields measurement_options gives, in the order of --help.
MEASUREMENT_FIELDS = ("threads", "rounds", "warmup", "min_time", "seed", "isolate", "shuffle", "cooldown",
                      "graph_opt", "spinning", "inter_threads", "provider", "input_shapes", "runtime_options",
                      "min_cosine", "cpus", "cool_to", "cool_timeout")  # fmt: skip


def measurement_options(threads: str | None = "1,2", rounds: int | None = 30, defaults_note: str = ""):
    """Every option of how a configuration is measured; the command receives them as ``bench`` (a dict of
    BenchConfig fields; a ``None`` default for ``threads`` or ``rounds`` means the command decides, which
    ``defaults_note`` says in --threads' help) and ``runtimes`` (a tuple of runtime names)."""
    from mbbench.bench.options import GRAPH_OPT_LEVELS, MAX_ROUNDS, MAX_SECONDS, MAX_THREADS, MAX_WARMUP
    from mbbench.runtimes import DEFAULT_RUNTIME, RUNTIMES

    options = [
        click.option("--threads", default=threads, show_default=threads is not None, metavar="SPEC",
                     help=f"Thread counts (1 to {MAX_THREADS}): a count (2), a range (1-4) or a list (1,2,4)."
                          f"{defaults_note}"),
        click.option("--rounds", type=int, default=rounds, show_default=rounds is not None,
                     help=f"Timed runs per configuration (2 to {MAX_ROUNDS})."),
        click.option("--warmup", type=int, default=5, show_default=True,
                     help=f"Untimed runs after the first (cold) one (0 to {MAX_WARMUP})."),
        click.option("--min-time", type=float, default=0.0, metavar="S",
                     help=f"Keep timing until both --rounds and S seconds are reached (0 to {MAX_SECONDS:g})."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the inputs (and of random-init networks, --shuffle), 0 to 2**32-1."),
        click.option("--isolate/--no-isolate", default=True, show_default=True,
                     help="Run each (model, threads) configuration in a fresh subprocess."),
        click.option("--shuffle", is_flag=True, help="Run the configurations in a (seeded) random order."),
        click.option("--cooldown", type=float, default=0.0, metavar="S",
                     help=f"Pause S seconds between configurations (0 to {MAX_SECONDS:g})."),
        click.option("--runtime", "runtimes", default=DEFAULT_RUNTIME, show_default=True, metavar="NAME[,NAME]",
                     help=f"The runtimes that run the models: {', '.join(RUNTIMES)}; a list measures each."),
        click.option("--runtime-option", "runtime_options", multiple=True, metavar="[RUNTIME.]KEY=VALUE",
                     help="A runtime's own option (repeatable); 'mbbench list --runtimes' shows them."),
        click.option("--min-cosine", type=float, default=0.9999, show_default=True, metavar="X",
                     help="Refuse a runtime's artifact whose output's cosine similarity to the export's is below X."),
        click.option("--graph-opt", type=click.Choice(GRAPH_OPT_LEVELS), default="all", show_default=True,
                     help="ONNX Runtime's graph optimisation level."),
        click.option("--spin/--no-spin", "spinning", default=None,
                     help="ONNX Runtime's intra-op thread spinning (default: ORT's own, which spins)."),
        click.option("--inter-threads", type=int, default=1, show_default=True,
                     help=f"ONNX Runtime's inter-op threads (1 to {MAX_THREADS}); above 1 its parallel executor."),
        click.option("--provider", default="CPUExecutionProvider", show_default=True,
                     help="ONNX Runtime's execution provider."),
        click.option("--input-shape", "input_shapes", multiple=True, metavar="SPEC",
                     help="Sizes for dynamic inputs: 1x3x224x224 (any input of that rank), NAME:1x3x224x224, or "
                          "DIM=8 (a symbolic dimension). Repeatable; unspecified dynamic dimensions are 1."),
        click.option("--cpus", metavar="LIST",
                     help="Pin the measurement to these CPUs (4-7, 0,2): the same cores from run to run, e.g. a "
                          "phone's big cluster. Recorded per row."),
        click.option("--cool-to", type=float, metavar="C",
                     help="Before each configuration, wait until the hottest thermal zone is below C degrees "
                          "(20 to 110). Recorded per row."),
        click.option("--cool-timeout", type=float, default=300.0, show_default=True, metavar="S",
                     help="The longest --cool-to waits before measuring anyway."),
    ]  # fmt: skip

    def decorate(function):
        @functools.wraps(function)
        def command(*args, **kwargs):
            from mbbench.runtimes import parse_runtimes

            bench = {name: kwargs.pop(name) for name in MEASUREMENT_FIELDS}
            bench["input_shapes"] = tuple(bench["input_shapes"])
            bench["runtime_options"] = tuple(bench["runtime_options"])
            for name in ("threads", "rounds"):
                if bench[name] is None:
                    del bench[name]
            return function(*args, bench=bench, runtimes=parse_runtimes(kwargs.pop("runtimes")), **kwargs)

        return _apply(options)(command)

    return decorate


def target_options(resume: bool = True):
    """Measure on devices over SSH (``--target``, ``--ssh-config``, ``--remote-python``, ``--connect-timeout`` and,
    with ``resume``, ``--resume``); the command receives them as one ``remote`` argument: a
    :class:`mbbench.remote.RemoteRun`, or None without ``--target``. Commands that write a new run folder each
    time (``run``, ``profile``, the studies) have nothing to resume."""
    options = [
        click.option("--target", "targets", multiple=True, metavar="URL",
                     help="Measure on a device: ssh://[user@]host[:port][/workdir]. Repeat for a fleet (measured "
                          "at the same time, each device one configuration at a time)."),
        click.option("--ssh-config", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
                     help="The ssh config file (what 'ssh -F' takes) [default: your ~/.ssh/config]."),
        click.option("--remote-python", default="python3", show_default=True, metavar="CMD",
                     help="The Python command on the targets."),
        click.option("--connect-timeout", type=click.IntRange(1, 300), default=10, show_default=True, metavar="S",
                     help="Seconds to wait for a target's SSH connection."),
        click.option("--remote-timeout", type=click.FloatRange(1, 86400), default=None, metavar="S",
                     help="Call a target hung (and stop it) after S seconds without a word during a run [default: "
                          "120 + 10 s per warm-up and timed round + twice --min-time]."),
    ]  # fmt: skip
    if resume:
        options.append(click.option(
            "--resume", is_flag=True,
            help="Skip configurations already in the output CSV (same file sha256, threads, runtime and target)."))

    def decorate(function):
        @functools.wraps(function)
        def command(*args, targets, ssh_config, remote_python, connect_timeout, remote_timeout, resume=False,
                    **kwargs):
            return function(*args, remote=remote_run(targets, ssh_config, remote_python, connect_timeout, resume,
                                                     remote_timeout), **kwargs)

        return _apply(options)(command)

    return decorate


def remote_run(targets, ssh_config, remote_python="python3", connect_timeout=10, resume=False, remote_timeout=None):
    """The :class:`~mbbench.remote.RemoteRun` that :func:`target_options` describe, or None without targets."""
    if not targets:
        if resume:
            raise click.UsageError("--resume goes with --target (locally, use --append to add to a CSV)")
        return None
    from mbbench.remote import RemoteRun, RemoteSettings

    if ssh_config is not None and not ssh_config.is_file():
        what = "not a regular file" if ssh_config.exists() else "no such file"
        raise click.UsageError(f"--ssh-config {ssh_config}: {what}; give the ssh config file 'ssh -F' would take")
    settings = RemoteSettings(ssh_config=ssh_config, remote_python=remote_python, connect_timeout=connect_timeout,
                              remote_timeout=remote_timeout)
    return RemoteRun(tuple(targets), settings, resume)


def selection_options():
    """Which export a registry name stands for: ``precision``, ``opset``, ``resolution`` (None: the rule's default,
    fp32 at the model's default resolution and the default opset). Paths and folders are measured as they are."""
    from mbbench.export.options import DEFAULT_OPSET, PRECISIONS

    return _apply([
        click.option("--precision", type=click.Choice(PRECISIONS), default=None,
                     help="For a model name: measure its export in this precision [default: fp32]."),
        click.option("--opset", type=int, default=None, metavar="N",
                     help=f"For a model name: measure its export at this opset [default: {DEFAULT_OPSET}]."),
        click.option("--resolution", type=int, default=None, metavar="N",
                     help="For a model name: measure its export at this input size [default: the model's own]."),
    ])  # fmt: skip


def selection(precision, opset, resolution):
    """The :class:`~mbbench.bench.modelfile.ExportSelection` that :func:`selection_options` describe."""
    from mbbench.bench.modelfile import ExportSelection

    return ExportSelection(precision, opset, resolution)


def models_dir_option(what: str = "Where exported models are read from and written to.", default="models"):
    """``--models-dir DIR``: where ``mbbench export`` writes and every other command finds exported models
    (``default`` None: the command decides, which ``what`` says)."""
    return _apply([
        click.option("--models-dir", type=click.Path(path_type=Path), default=Path(default) if default else None,
                     show_default=default is not None, help=what),
    ])  # fmt: skip


def output_file_option(what: str):
    """``-o/--output FILE``: the one file a command writes (``what`` says which and its default)."""
    return _apply([click.option("--output", "-o", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
                                help=what)])


def output_dir_option(what: str = "<study>"):
    """``--output-dir DIR``: the folder a run, a profile or a study writes all its files into (``output``)."""
    return _apply([
        click.option("--output-dir", "output", type=click.Path(path_type=Path), metavar="DIR",
                     help=f"Folder for the files [default: results/{what}-<host>-<time>/]."),
    ])  # fmt: skip


def metric_option(what: str = "The statistic the tables, ratios and plots use."):
    return _apply([click.option("--metric", type=click.Choice(METRICS), default=DEFAULT_METRIC, show_default=True,
                                help=f"{what} The median (p50) shrugs off a preempted round.")])


def format_option():
    return _apply([click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
                                help="What goes to standard output: table (terminal), markdown, csv, json or html.")])


def compare_option(what: str):
    return _apply([click.option("--compare", "base", type=click.Path(path_type=Path), metavar="BASE", help=what)])
