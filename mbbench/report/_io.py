"""Writing report files: refuse unusable destinations up front, then write atomically (mbbench._io)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import IO

from mbbench._io import atomic_open
from mbbench.errors import UserInputError


def check_destination(path: str | Path, suffix: str | None = None) -> Path:
    """Raise a one-sentence error unless ``path`` can be written: its directory exists, it is not a directory,
    and it ends in ``suffix`` when one is given. Lets a command refuse before it does any work."""
    path = Path(path)
    if suffix is not None and path.suffix.lower() != suffix:
        raise UserInputError(f"{path} does not end in {suffix}; name it e.g. {path.stem}{suffix}.")
    if not path.parent.is_dir():
        raise UserInputError(f"Cannot write {path}: directory {path.parent} does not exist; create it first.")
    if path.is_dir():
        raise UserInputError(f"Cannot write {path}: it is a directory; name a file instead.")
    return path


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_with(path, lambda handle: handle.write(text.encode("utf-8")))


def write_with(path: str | Path, writer: Callable[[IO[bytes]], object]) -> Path:
    """Let ``writer`` fill a binary file handle, then move the result to ``path`` atomically."""
    path = check_destination(path)
    try:
        with atomic_open(path, "wb") as handle:
            writer(handle)
    except PermissionError as exc:
        raise UserInputError(f"Cannot write {path} ({exc.strerror}); check the directory's permissions.") from None
    return path
