"""Every ``mbbench`` command shown in README.md, docs/ and the commands' own ``--help`` is parsed by the real command line: a renamed option,
a choice that no longer exists or a value a command refuses would fail here, so no example goes stale. (The
cheap examples also run end to end: the tour in test_tour.py, the set-up commands in CI.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from mbbench.cli import main

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# a line that is a usage synopsis, not a command: placeholders, alternatives, ellipses
SYNOPSIS = re.compile(r"<[^>]+>|\[[^\]]*\||\.\.\.|\bCSV\b|\bMODEL\b|\bFILE\b")


def examples() -> list[tuple[str, int, str]]:
    """(page, line number, command) for each ``mbbench ...`` line inside a fenced code block of the pages."""
    found = []
    for page in PAGES:
        fenced = False
        for number, line in enumerate(page.read_text().splitlines(), start=1):
            if line.lstrip().startswith("```"):
                fenced = not fenced
                continue
            text = line.strip().removeprefix("$ ")
            if not fenced or SYNOPSIS.search(text):
                continue
            for part in re.split(r"&&|;|\|", text):
                part = part.strip()
                if part.startswith(".venv/bin/mbbench "):
                    part = part.removeprefix(".venv/bin/")
                if part.startswith("mbbench ") or part == "mbbench":
                    found.append((page.relative_to(REPO).as_posix(), number, part))
    return found


def parse(words: list[str]) -> list[str]:
    """Parse ``words`` as ``mbbench`` would, down to the leaf command, without running it; return the path."""
    ctx = main.make_context("mbbench", list(words), resilient_parsing=False)
    path = []
    while isinstance(ctx.command, click.Group):
        rest = [*ctx._protected_args, *ctx.args]  # (click 8.2+ keeps the sub-command's name apart)
        if not rest:
            break
        name, command, rest = ctx.command.resolve_command(ctx, rest)
        path.append(name)
        ctx = command.make_context(name, rest, parent=ctx)
    return path


def help_examples() -> list[tuple[str, int, str]]:
    """(command, line number, example) for each ``mbbench ...`` line of every command's ``--help`` text."""
    found = []

    def walk(command: click.Command, path: list[str]) -> None:
        ctx = click.Context(command, info_name=" ".join(path))
        for number, line in enumerate(command.get_help(ctx).splitlines(), start=1):
            text = line.strip()
            if text.startswith("mbbench ") and not SYNOPSIS.search(text):
                found.append((" ".join(path), number, text))
        if isinstance(command, click.Group):
            for name in command.list_commands(ctx):
                walk(command.get_command(ctx, name), [*path, name])

    walk(main, ["mbbench"])
    return found


EXAMPLES = examples() + help_examples()


def test_the_pages_show_commands_of_every_kind():
    commands = {parse(shlex.split(command, comments=True)[1:])[0] for _, _, command in EXAMPLES}
    assert {"export", "bench", "report", "run", "profile", "study", "list"} <= commands


@pytest.mark.parametrize("page, line, command", EXAMPLES, ids=[f"{p}:{n}" for p, n, _ in EXAMPLES])
def test_every_example_parses(page, line, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing an example names has to exist here; only the words are checked
    words = shlex.split(command, comments=True)[1:]
    try:
        parse(words)
    except click.ClickException as exc:
        pytest.fail(f"{page}:{line}: `{command}` is refused: {exc.format_message()}")
