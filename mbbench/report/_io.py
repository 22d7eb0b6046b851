"""Writing report files: refuse unusable destinations up front, then write atomically.

A destination is a regular file or a new name in an existing folder. A device, a FIFO, a folder or a socket is
refused (``--output /dev/full`` once replaced the device with a file), and so is a symbolic link: writing through
it would change a file the command was not given, and replacing it would lose the link; name the file itself.

The write itself is :func:`mbbench._io.atomic_open`'s: a temporary file named with the writer's pid, which the
next write into that folder removes if a SIGKILL left it behind.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from mbbench._io import atomic_open
from mbbench.errors import UserInputError

def check_destination(path: str | Path, suffix: str | None = None, inputs: Iterable[str | Path] = ()) -> Path:
    """Raise a one-sentence error unless ``path`` can be written: a regular file or a new name in an existing
    directory (not a symbolic link), ending in ``suffix`` when one is given, and not one of ``inputs`` (the same
    file by device and inode, not by spelling). Lets a command refuse before it does any work."""
    path = Path(path)
    if suffix is not None and path.suffix.lower() != suffix:
        raise UserInputError(f"{path} does not end in {suffix}; name it e.g. {path.stem}{suffix}.")
    if os.path.islink(path):
        target = os.readlink(path)
        raise UserInputError(f"Cannot write {path}: it is a symbolic link (to {target}); name the file itself.")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if not path.parent.is_dir():
            raise UserInputError(f"Cannot write {path}: directory {path.parent} does not exist; create it first.")
        return path
    except OSError as exc:
        raise UserInputError(f"Cannot write {path} ({exc.strerror}); name a regular file.") from None
    if stat.S_ISDIR(info.st_mode):
        raise UserInputError(f"Cannot write {path}: it is a directory; name a file instead.")
    if not stat.S_ISREG(info.st_mode):
        raise UserInputError(f"Cannot write {path}: it is not a regular file (a device, FIFO or socket); name a file.")
    for source in inputs:
        with contextlib.suppress(OSError):
            if os.path.samefile(path, source):
                raise UserInputError(
                    f"Cannot write {path}: it is the input {source}; writing there would destroy the measurements."
                )
    return path


def write_text(path: str | Path, text: str, inputs: Iterable[str | Path] = ()) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_with(path, lambda handle: handle.write(text.encode("utf-8")), inputs)


def write_with(path: str | Path, writer: Callable[[IO[bytes]], object], inputs: Iterable[str | Path] = ()) -> Path:
    """Let ``writer`` fill a binary file handle, then move the result to ``path`` atomically."""
    path = check_destination(path, inputs=inputs)
    try:
        with atomic_open(path, "wb") as handle:
            writer(handle)
    except PermissionError as exc:
        raise UserInputError(f"Cannot write {path} ({exc.strerror}); check the directory's permissions.") from None
    return path
