"""Results storage: crash-safe appends to the results CSV and its raw-samples sidecar. Standard library only.

Crash safety comes from how bytes reach the file, not from flushing a buffered stream:

- every append (one configuration's row, or its block of samples) is formatted in memory and handed to the
  kernel in a single ``write`` on an ``O_APPEND`` descriptor, then ``fsync``-ed. A process killed with
  SIGKILL dies either before that call (nothing of the row is in the file) or after it (all of it is);
- the samples of a configuration are written before its row, so a row never exists without its samples
  (a SIGKILL between the two writes can leave samples without a row, which a join on the row keys drops);
- a Ctrl-C during those two writes is held until both are done, and a failed row write removes its samples;
- if the write fails part-way (disk full), the file is truncated back to where it was;
- no file is created until the first row is ready, so a run that fails early leaves no empty CSV behind;
- each append holds an advisory lock (``flock``) on the file, and the header is written under it only when the
  file is empty, so concurrent ``--append`` runs onto one new CSV write one header between them;
- an append onto a file whose last line lacks its newline (an edited file) starts on a fresh line.

The destination is checked before anything is measured (:meth:`ResultFiles.check_writable`): a folder, a
device, a FIFO, a read-only file or folder is refused then, not after an hour of measuring.
"""

from __future__ import annotations

import contextlib
import csv
import io
import math
import os
import signal
import stat
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mbbench.bench.schema import LATER_COLUMNS, SAMPLE_COLUMNS, samples_path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; a single writer per file is then the user's job
    fcntl = None  # type: ignore[assignment]
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
    """The header of an existing CSV (None if the file is missing or empty).

    Raises :class:`OutputError` when the file is not UTF-8 text or not a regular file.
    """
    path = Path(path)
    try:
        data = path.read_bytes() if _is_regular(path) else None
    except FileNotFoundError:
        return None
    if data is None:
        raise OutputError(f"{path} is not a regular file; give a .csv file name")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise OutputError(f"{path} is not UTF-8 text, so not an mbbench CSV; write to a new --output") from None
    return next(csv.reader(io.StringIO(text, newline="")), None)


def _is_regular(path: Path) -> bool:
    """Whether ``path`` is a regular file or a link to one (a dangling link raises FileNotFoundError)."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        raise
    except OSError:
        return False


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
        stay empty), but not fewer, except the columns added to the schema later (their cells are dropped).
        """
        path = Path(path)
        if path.is_dir():
            raise OutputError(f"the output {path} is a folder; give a .csv file name")
        exists = os.path.lexists(path)
        if exists and not os.path.exists(path):
            raise OutputError(f"{path} is a dangling link; give a .csv file name")
        if exists and not _is_regular(path):
            raise OutputError(f"{path} is not a regular file; give a .csv file name")
        if exists and not append:
            raise OutputError(f"{path} already exists; pass --append to add rows to it, or choose another --output")
        header = read_header(path) if exists else None
        if header:
            missing = [c for c in columns if c not in header and c not in LATER_COLUMNS]
            if missing:
                raise OutputError(
                    f"{path} has a different schema (no {', '.join(missing[:4])} column); write to a new --output"
                )
            return cls(path, header)
        return cls(path, columns)

    def check_writable(self) -> None:
        """Refuse now what a write would refuse later: a device or FIFO, a read-only file or folder."""
        if os.path.lexists(self.path):
            if not _is_regular(self.path):
                raise OutputError(f"{self.path} is not a regular file; give a .csv file name")
            try:
                os.close(os.open(self.path, os.O_WRONLY | os.O_APPEND))
            except OSError as exc:
                raise OutputError(f"cannot write to {self.path}: {exc.strerror}; choose another --output") from None
            return
        try:  # a real probe: access() says yes to root on a read-only file system
            fd, probe = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".probe", dir=self.path.parent)
        except OSError as exc:
            raise OutputError(
                f"cannot write in {self.path.parent}: {exc.strerror}; choose another --output"
            ) from None
        os.close(fd)
        os.unlink(probe)

    def _open_locked(self) -> tuple[int, bool]:
        """An O_APPEND descriptor on the file (readable, to see its last byte), locked; and whether it was created."""
        while True:
            try:
                fd, created = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o644), True
            except FileExistsError:
                try:
                    fd, created = os.open(self.path, os.O_RDWR | os.O_APPEND), False
                except FileNotFoundError:  # removed in between (a failed first write elsewhere): start over
                    continue
            if fcntl is None:
                return fd, created
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if same:
                return fd, created
            os.close(fd)  # the file we locked was unlinked meanwhile: lock the one that is there now

    def write(self, rows: Iterable[Mapping[str, object]]) -> int:
        """Append ``rows`` (with the header first if the file is new or empty); return the size before."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        fd, created = self._open_locked()
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                writer.writerow(self.columns)
            elif os.pread(fd, 1, size - 1) != b"\n":
                buffer.write("\n")  # the file's last line lacks its newline: never glue a row onto it
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
                if created and size == 0:
                    self.path.unlink(missing_ok=True)
                raise
        finally:
            os.close(fd)  # also releases the lock
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
        """Create the output's folder and check both files can be written, before anything is measured."""
        try:
            self.output.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create the folder for {self.output}: {exc.strerror}; choose another --output"
            ) from None
        self.rows.check_writable()
        self.samples.check_writable()

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
