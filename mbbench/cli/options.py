"""Option groups shared by several commands, defined once (sqlite-utils' ``output_options``).

A command takes a group by decorating itself with it; the options arrive as keyword arguments named as below.
"""

from __future__ import annotations

import functools
from pathlib import Path

import click


def bench_options(threads: str | None = "1,2", rounds: int | None = 30, defaults_note: str = ""):
    """The options of one bench sweep, named and defaulted as ``mbbench bench``'s.

    Gives ``threads`` (str), ``rounds`` (int), ``warmup`` (int), ``isolate`` (bool) and ``seed`` (int). A
    ``None`` default for ``threads`` or ``rounds`` means the command decides (say how in ``defaults_note``,
    which is appended to the --threads help).
    """
    from mbbench.bench.options import MAX_ROUNDS, MAX_THREADS, MAX_WARMUP

    options = [
        click.option("--threads", default=threads, show_default=threads is not None,
                     help=f"Intra-op thread counts (1 to {MAX_THREADS}): a count (2), a range (1-4) or a list "
                          f"(1,2,4).{defaults_note}"),
        click.option("--rounds", type=int, default=rounds, show_default=rounds is not None,
                     help=f"Timed runs per configuration (2 to {MAX_ROUNDS})."),
        click.option("--warmup", type=int, default=5, show_default=True,
                     help=f"Untimed runs after the first (cold) one (0 to {MAX_WARMUP})."),
        click.option("--isolate/--no-isolate", default=True, show_default=True,
                     help="Run each (model, threads) configuration in a fresh subprocess."),
        click.option("--seed", type=int, default=0, show_default=True,
                     help="Seed of the inputs (and of random-init networks, --shuffle), 0 to 2**32-1."),
    ]  # fmt: skip
    return _apply(options)


def selection_options():
    """Which export a registry name stands for: ``precision``, ``opset``, ``resolution`` (None: the rule's default,
    fp32 at the model's default resolution and the default opset). Paths and folders are measured as they are."""
    from mbbench.export.options import DEFAULT_OPSET, PRECISIONS

    return _apply([
        click.option("--precision", type=click.Choice(PRECISIONS), default=None, metavar="P",
                     help=f"For a model name: measure its {'/'.join(PRECISIONS)} export [default: fp32]."),
        click.option("--opset", type=int, default=None, metavar="N",
                     help=f"For a model name: measure its export at this opset [default: {DEFAULT_OPSET}]."),
        click.option("--resolution", type=int, default=None, metavar="N",
                     help="For a model name: measure its export at this input size [default: the model's own]."),
    ])  # fmt: skip


def selection(precision, opset, resolution):
    """The :class:`~mbbench.bench.modelfile.ExportSelection` that :func:`selection_options` describe."""
    from mbbench.bench.modelfile import ExportSelection

    return ExportSelection(precision, opset, resolution)


def device_options():
    """Where on the device a sweep runs: ``cpus`` (``--cpus 4-7``), ``cool_to`` and ``cool_timeout``."""
    return _apply([
        click.option("--cpus", metavar="LIST",
                     help="Pin the measurement to these CPUs (4-7, 0,2): the same cores from run to run, e.g. a "
                          "phone's big cluster. Recorded per row."),
        click.option("--cool-to", type=float, metavar="C",
                     help="Before each configuration, wait until the hottest thermal zone is below C degrees "
                          "(20 to 110). Recorded per row."),
        click.option("--cool-timeout", type=float, default=300.0, show_default=True, metavar="S",
                     help="The longest --cool-to waits before measuring anyway."),
    ])  # fmt: skip


def target_options(resume: bool = True):
    """Measure on devices over SSH (``--target``, ``--ssh-config``, ``--remote-python``, ``--connect-timeout`` and,
    with ``resume``, ``--resume``); the command receives them as one ``remote`` argument: a
    :class:`mbbench.remote.RemoteRun`, or None without ``--target``. Commands that write a new run folder each
    time (``run``, the studies) have nothing to resume."""
    options = [
        click.option("--target", "targets", multiple=True, metavar="URL",
                     help="Measure on a device: ssh://[user@]host[:port][/workdir]. Repeat for a fleet (measured "
                          "at the same time, each device one configuration at a time, into one CSV)."),
        click.option("--ssh-config", type=click.Path(path_type=Path, dir_okay=False), metavar="FILE",
                     help="The ssh config file (what 'ssh -F' takes) [default: your ~/.ssh/config]."),
        click.option("--remote-python", default="python3", show_default=True, metavar="CMD",
                     help="The Python command on the targets."),
        click.option("--connect-timeout", type=click.IntRange(1, 300), default=10, show_default=True, metavar="S",
                     help="Seconds to wait for a target's SSH connection."),
    ]  # fmt: skip
    if resume:
        options.append(click.option(
            "--resume", is_flag=True,
            help="Skip configurations already in the output CSV (same file sha256, threads and target)."))

    def decorate(function):
        @functools.wraps(function)
        def command(*args, targets, ssh_config, remote_python, connect_timeout, resume=False, **kwargs):
            return function(*args, remote=remote_run(targets, ssh_config, remote_python, connect_timeout, resume),
                            **kwargs)

        return _apply(options)(command)

    return decorate


def remote_run(targets, ssh_config, remote_python="python3", connect_timeout=10, resume=False):
    """The :class:`~mbbench.remote.RemoteRun` that :func:`target_options` describe, or None without targets."""
    if not targets:
        if resume:
            raise click.UsageError("--resume goes with --target (locally, use --append to add to a CSV)")
        return None
    from mbbench.remote import RemoteRun, RemoteSettings

    if ssh_config is not None and not ssh_config.is_file():
        raise click.UsageError(f"--ssh-config {ssh_config}: no such file")
    settings = RemoteSettings(ssh_config=ssh_config, remote_python=remote_python, connect_timeout=connect_timeout)
    return RemoteRun(tuple(targets), settings, resume)


def run_folder_option(what: str = "<study>"):
    """``--output/-o DIR``: the folder a run or study writes its CSV, summary and plot into (``output``)."""
    return _apply([
        click.option("--output", "-o", type=click.Path(path_type=Path), metavar="DIR",
                     help=f"Folder for the CSV, summary, plot (and models/) [default: results/{what}-<host>-<time>/]."),
    ])  # fmt: skip


def _apply(options):
    def decorate(function):
        for option in reversed(options):
            function = option(function)
        return function

    return decorate
