"""Atomic file writes (standard library only, so the portable bench core may use it too).

Every file mbbench writes whole (an export, its manifest, a report, a plot, a study summary) is written to a
temporary file next to it and renamed into place, so the destination holds either its old content or the new,
never half of it. The temporary files are named ``.<name>.<pid>.<random>.mbbench.tmp``: a SIGKILL leaves one
behind (nothing can run then), and the next write into that folder removes it, because the pid in its name
belongs to no live process. A concurrent writer's file (its pid is alive) is left alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import IO, Iterator

TMP_SUFFIX = ".mbbench.tmp"
_TMP_NAME = re.compile(r"^\..+\.(\d+)\.[^.]+" + re.escape(TMP_SUFFIX) + "$")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError, OSError):
        return True  # someone else's live process, or not a pid we can ask about: leave its file alone
    return True


def clean_stale_temps(directory: str | Path) -> list[Path]:
    """Remove the temporary files that killed mbbench writers left in ``directory``; return what was removed."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            match = _TMP_NAME.match(entry.name)
            if match and entry.is_file(follow_symlinks=False) and not _alive(int(match.group(1))):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
    return removed


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def temp_path_for(target: str | Path, label: str = "") -> tuple[int, Path]:
    """A new temporary file next to ``target`` (open fd and path), named so :func:`clean_stale_temps` knows it."""
    target = Path(target)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.{label}{os.getpid()}.", suffix=TMP_SUFFIX, dir=target.parent)
    return fd, Path(tmp)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success it replaces ``path`` in one rename.

    On any error, or an interrupt, the temporary file is removed and ``path`` keeps its previous content (or
    stays absent): nothing is ever left half-written. The temporary file is in the same directory so the final
    ``os.replace`` is a same-filesystem, atomic rename. Stale temporary files of killed writers in that
    directory are removed first.
    """
    path = Path(path)
    clean_stale_temps(path.parent)
    umask = _umask()
    fd, tmp = temp_path_for(path)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp creates the file owner-only (0600); give the result the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise _naming(exc, path)


def stage_bytes(target: str | Path, data: bytes) -> Path:
    """Write ``data`` to a new temporary file next to ``target`` (fsync-ed, the mode a plain open gives) and
    return its path; the caller renames it into place (several staged files can then be committed together)."""
    umask = _umask()
    fd, tmp = temp_path_for(target)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~umask)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _naming(exc, target)
    return tmp


def _naming(exc: BaseException, path: str | Path) -> BaseException:
    """A write error that names no file (a full disk, an I/O error) named for the file being written, so the
    user's one line says where; any other exception as it was."""
    if isinstance(exc, OSError) and not exc.filename and exc.errno:
        named = type(exc)(exc.errno, exc.strerror, str(path))
        named.__cause__ = exc
        return named
    return exc


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB chunks (a model or a checkpoint can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_kind(path: str | Path) -> str | None:
    """None for a regular file (or a link to one), else what it is, in words."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a dangling link" if os.path.islink(path) else "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
