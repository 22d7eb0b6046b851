"""Results storage: crash-safe appends to the results CSV and its raw-samples sidecar. Standard library only.

Crash safety comes from how bytes reach the file, not from flushing a buffered stream:

- every append (one configuration's row, or its block of samples) is formatted in memory and handed to the
  kernel in a single ``write`` on an ``O_APPEND`` descriptor, then ``fsync``-ed. A process killed with
  SIGKILL dies either before that call (nothing of the row is in the file) or after it (all of it is);
- the samples of a configuration are written before its row, so a row never exists without its samples
  (a SIGKILL between the two writes can leave samples without a row, which a join on the row keys drops);
- a Ctrl-C during those two writes is held until both are done, and a failed row write removes its samples;
- if the write fails part-way (disk full), the file is truncated back to where it was;
- no file is created until the first row is ready, so a run that fails early leaves no empty CSV behind.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import signal
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mbbench.bench.schema import SAMPLE_COLUMNS, samples_path
from mbbench.errors import UserInputError


class OutputError(UserInputError):
    """The output file cannot be used (it exists without ``--append``, or has another schema)."""


def format_cell(value: object) -> str:
    """How a value is spelled in the CSV: empty for missing/NaN, ``True``/``False`` for flags, floats to the ns."""
    if hasattr(value, "item") and hasattr(value, "dtype"):  # numpy scalar (np.float64 would repr as such)
        value = value.item()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, float):
        if not math.isfinite(value):
            return ""
        # 6 decimals of a millisecond is a nanosecond, the clock's resolution
        return repr(round(value, 6))
    return str(value)


def read_header(path: str | Path) -> list[str] | None:
    """The header of an existing CSV (None if the file is missing or empty)."""
    path = Path(path)
    try:
        with path.open(newline="") as handle:
            return next(csv.reader(handle), None)
    except FileNotFoundError:
        return None


class CsvAppender:
    """Appends rows to one CSV file, each batch in one ``write`` (see the module docstring)."""

    def __init__(self, path: str | Path, columns: Sequence[str]):
        self.path = Path(path)
        self.columns = list(columns)

    @classmethod
    def open(cls, path: str | Path, columns: Sequence[str], append: bool) -> CsvAppender:
        """Check ``path`` can take rows with ``columns`` (without creating it) and return an appender.

        Without ``append`` an existing file is refused rather than overwritten: results are the expensive
        part. With ``append`` the file's own column order is kept; it may have more columns than ours (they
        stay empty), but not fewer.
        """
        path = Path(path)
        if path.is_dir():
            raise OutputError(f"the output {path} is a folder; give a .csv file name")
        header = read_header(path) if path.exists() else None
        if path.exists() and not append:
            raise OutputError(f"{path} already exists; pass --append to add rows to it, or choose another --output")
        if header:
            missing = [c for c in columns if c not in header]
            if missing:
                raise OutputError(
                    f"{path} has a different schema (no {', '.join(missing[:4])} column); write to a new --output"
                )
            return cls(path, header)
        return cls(path, columns)

    def write(self, rows: Iterable[Mapping[str, object]]) -> int:
        """Append ``rows`` (with the header first if the file is new or empty); return the size before."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        existed = self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                writer.writerow(self.columns)
            for row in rows:
                writer.writerow([format_cell(row.get(c)) for c in self.columns])
            data = buffer.getvalue().encode("utf-8")
            try:
                view = memoryview(data)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except BaseException:
                os.ftruncate(fd, size)
                if not existed:
                    self.path.unlink(missing_ok=True)
                raise
        finally:
            os.close(fd)
        return size

    def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` bytes (undo a :meth:`write`); remove it if that leaves it empty."""
        if size == 0:
            self.path.unlink(missing_ok=True)
        else:
            os.truncate(self.path, size)


class ResultFiles:
    """The results CSV and its ``.samples.csv`` sidecar, written together per configuration."""

    def __init__(self, output: str | Path, columns: Sequence[str], append: bool = False):
        self.output = Path(output)
        self.samples_output = samples_path(self.output)
        if self.samples_output.exists() and not self.output.exists() and not append:
            raise OutputError(
                f"{self.samples_output} already exists; remove it or choose another --output so samples do not mix"
            )
        self.rows = CsvAppender.open(self.output, columns, append)
        self.samples = CsvAppender.open(self.samples_output, SAMPLE_COLUMNS, append)

    def prepare_folder(self) -> None:
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the folder for {self.output}: {exc.strerror}; choose another --output")

    def save(self, row: Mapping[str, object], samples_ms: Iterable[float]) -> None:
        keys = {c: row.get(c) for c in ("model", "threads", "file", "sha256", "host", "timestamp")}
        samples = [{**keys, "round": i, "ms": ms} for i, ms in enumerate(samples_ms, start=1)]
        with ctrl_c_deferred():
            try:
                before = self.samples.write(samples)
                try:
                    self.rows.write([row])
                except BaseException:  # the row could not be written: do not leave its samples behind
                    self.samples.truncate(before)
                    raise
            except OSError as exc:
                raise OutputError(
                    f"cannot write results to {self.output}: {exc.strerror or exc}; the rows saved so far are intact"
                ) from None


@contextlib.contextmanager
def ctrl_c_deferred():
    """Hold a Ctrl-C until the block ends, then deliver it.

    A KeyboardInterrupt can surface at any bytecode, e.g. after a row's bytes are in the file but before
    ``fsync`` returns; undoing a complete row then would lose a finished configuration. Blocks nest (the inner
    one hands the signal to the outer). Signal handlers can only be set from the main thread; elsewhere the
    block runs unprotected.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)
