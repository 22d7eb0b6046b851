"""Driving the CLI in tests: click's CliRunner with a wide terminal, and the one-line error check."""

from __future__ import annotations

from click.testing import CliRunner

from mbbench.cli import main

# The smallest bench settings that still produce statistics (rounds >= 2 for a sample std).
TINY = ["--threads", "1", "--rounds", "2", "--warmup", "0", "--no-isolate"]


def invoke(*args):
    return CliRunner().invoke(main, list(args), terminal_width=200)


def error_lines(result):
    return [line for line in result.output.splitlines() if line.startswith("Error")]
