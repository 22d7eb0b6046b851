"""Shared pieces of the CLI: error translation and the console."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from mbbench.errors import MbbenchError


class MbbenchGroup(click.Group):
    """A click group that turns library errors into one-line click errors (exit status 1)."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MbbenchError as exc:
            raise click.ClickException(str(exc)) from None


def console(stderr: bool = False) -> Console:
    """A rich console bound to the current (possibly CliRunner-captured) stream.

    Piped or captured output gets a wide fixed width so tables land in logs and files untruncated; a terminal
    keeps its own width.
    """
    stream = sys.stderr if stderr else sys.stdout
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(file=stream, soft_wrap=False, width=None if is_tty else 160)
