"""``mbbench setup litert``: make a runtime's converter environment, once, explicitly."""

from __future__ import annotations

import click

from mbbench.cli._common import MbbenchCommand, console


@click.command("setup", cls=MbbenchCommand)
@click.argument("runtime", type=click.Choice(["litert"]))
def setup_cmd(runtime: str) -> None:
    """Install what converting for RUNTIME needs where it cannot share this environment.

    litert: litert-torch, which pins typing_extensions below what torch and onnx want here, goes into an
    environment of its own (~/.cache/mbbench/converters, $MBBENCH_CONVERTERS moves it) that reuses this one's
    torch. About 1 GB from the package index, once; nothing else ever installs at run time.
    """
    from mbbench.runtimes.litert import setup_converter

    err = console(stderr=True)
    python = setup_converter(note=lambda message: err.print(message, soft_wrap=True))
    err.print(f"LiteRT's converter is ready: {python}", soft_wrap=True)
