"""Exceptions shared by every stage.

Library functions raise subclasses of :class:`MbbenchError` with a one-sentence message that says what was
wrong and what to do; the CLI prints that sentence and exits non-zero, never a traceback. This module imports
nothing heavy so the portable bench core can use it.
"""


class MbbenchError(Exception):
    """Base class for errors that are the user's input, not a bug."""


class UserInputError(MbbenchError, ValueError):
    """A value given by the user (name, option, file) cannot be used."""


class OptionError(UserInputError):
    """A value that is wrong in itself, whatever is on disk or on the device: out of range, malformed, an unknown
    name. The command line reports it as a usage error (exit status 2); the other user input errors
    are found while working (a missing file, a model not exported) and exit 1."""


def first_line(exc: BaseException, limit: int = 200) -> str:
    """The first non-empty line of ``exc``'s message (or its type name), cut to ``limit`` characters.

    Library errors from torch, onnx, onnxruntime and onnxsim span many lines; a one-line error needs the first.
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:limit] if lines else type(exc).__name__
