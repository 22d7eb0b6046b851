"""Shared pieces of the CLI: the one command class every command uses, and the console.

The convention, for every command and subcommand, inside or outside the ``mbbench`` group:

- a usage error (unknown option, missing argument, or a value that is wrong in itself: out of range, malformed,
  an unknown name; the library's :class:`mbbench.errors.OptionError`, wherever it is found) is one
  ``Error: ...`` line and exit status 2;
- a library error found while working (:class:`mbbench.errors.MbbenchError`: a missing file, a model that is not
  exported, a model or a target that failed) is one ``Error: ...`` line and exit status 1;
- an operating-system error that reaches the command (disk full, read-only file system, a closed pipe) is one
  ``Error: ...`` line and exit status 1, never a traceback;
- Ctrl-C or SIGTERM ends the command with exit status 130 (143 for SIGTERM) and ``Interrupted.`` on stderr; the
  library's own clean-up (temporary files, a worker process) runs first, because the signal is a
  :class:`KeyboardInterrupt` (SIGTERM is turned into one here).
"""

from __future__ import annotations

import errno
import os
import signal
import sys

import click
from rich.console import Console

from mbbench.errors import MbbenchError, OptionError

#: Exit statuses: 2 usage, 1 refused input or failure, 128 + signal for an interruption.
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class OneLineUsageError(click.ClickException):
    """A usage error printed as one line (click's default prints the usage block and a hint first)."""

    exit_code = EXIT_USAGE


class _Terminated(KeyboardInterrupt):
    """SIGTERM, delivered as an interrupt so every ``finally`` and ``except KeyboardInterrupt`` clean-up runs."""


def _command_path(ctx: click.Context | None, info_name: str | None) -> str:
    names = []
    while ctx is not None:
        if ctx.info_name:
            names.append(ctx.info_name)
        ctx = ctx.parent
    names.reverse()
    if info_name:
        names.append(info_name)
    if names:
        names[0] = "mbbench"
    return " ".join(names) or "mbbench"


def os_error_message(exc: OSError) -> str:
    """One line for an operating-system error, in the user's words."""
    where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
    reason = exc.strerror or str(exc) or type(exc).__name__
    hints = {
        errno.ENOSPC: "free some space or write elsewhere",
        errno.EROFS: "the file system is read-only; write elsewhere",
        errno.EACCES: "check the permissions or write elsewhere",
        errno.EPERM: "check the permissions or write elsewhere",
    }
    hint = hints.get(exc.errno or 0, "")
    verb = "write" if exc.errno in (errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EFBIG) else "access"
    return f"cannot {verb}{where}: {reason}" + (f"; {hint}" if hint else "")


class _OneLineMixin:
    """Turns every way a command can end badly into one line and the documented exit status."""

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            # click.UsageError carries its context; name the command the user typed.
            path = _command_path(parent, info_name)
            raise OneLineUsageError(f"{exc.format_message()} (see '{path} --help')") from None

    def invoke(self, ctx):
        tolerate_encoding()
        previous = _install_sigterm()
        try:
            return super().invoke(ctx)
        except OptionError as exc:
            raise OneLineUsageError(f"{exc} (see '{_command_path(ctx, None)} --help')") from None
        except MbbenchError as exc:
            raise click.ClickException(str(exc)) from None
        except click.UsageError as exc:
            if isinstance(exc, OneLineUsageError):
                raise
            raise OneLineUsageError(f"{exc.format_message()} (see '{_command_path(ctx, None)} --help')") from None
        except _Terminated:
            _interrupted(EXIT_TERMINATED)
        except KeyboardInterrupt:
            _interrupted(EXIT_INTERRUPTED)
        except BrokenPipeError:
            # The reader went away (`mbbench list | head`): say nothing more, like other Unix tools.
            _silence_stdout()
            sys.exit(1)
        except OSError as exc:
            raise click.ClickException(os_error_message(exc)) from None
        finally:
            _restore_sigterm(previous)


def _interrupted(status: int) -> None:
    try:
        click.echo("Interrupted.", err=True)
    except OSError:
        pass
    sys.exit(status)


def _silence_stdout() -> None:
    # Later flushes to the closed pipe would raise again at interpreter exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _install_sigterm():
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return None  # someone (a test harness, an outer command) already handles it
    try:
        def handler(signum, frame):
            raise _Terminated()

        return signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        return None


def _restore_sigterm(previous) -> None:
    if previous is not None:
        try:
            signal.signal(signal.SIGTERM, previous)
        except ValueError:
            pass


class MbbenchCommand(_OneLineMixin, click.Command):
    """The command class of every mbbench command (see the module docstring for the convention)."""


class MbbenchGroup(_OneLineMixin, click.Group):
    """A group whose subcommands are :class:`MbbenchCommand` and whose unknown-command error is one line."""

    command_class = MbbenchCommand
    #: What a subcommand is called in the unknown-subcommand error ("unknown study 'x'").
    noun = "command"

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:
            names = ", ".join(self.list_commands(ctx))
            if args and not args[0].startswith("-"):
                raise OneLineUsageError(f"unknown {self.noun} '{args[0]}': choose one of {names}") from None
            raise OneLineUsageError(f"{exc.format_message()} (see '{_command_path(ctx, None)} --help')") from None

    def list_commands(self, ctx):
        return list(self.commands)  # in the order they were added (pipeline order), not alphabetical


def console(stderr: bool = False) -> Console:
    """A rich console bound to the current (possibly CliRunner-captured) stream.

    Piped or captured output gets a wide fixed width so tables land in logs and files untruncated; a terminal
    keeps its own width.
    """
    stream = sys.stderr if stderr else sys.stdout
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(file=stream, soft_wrap=False, width=None if is_tty else 160)


def progress_bar(out: Console, *, spinner: bool = False, **options):
    """The progress bar of every long command: what runs now, a bar, k of n done, elapsed and ETA."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TextColumn("ETA"), TimeRemainingColumn()]
    return Progress(*([SpinnerColumn()] if spinner else []), *columns, console=out, **options)


def tolerate_encoding() -> None:
    """Let stdout/stderr replace characters their encoding cannot hold (PYTHONIOENCODING=ascii) instead of failing."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="replace")
            except (ValueError, OSError):
                pass
