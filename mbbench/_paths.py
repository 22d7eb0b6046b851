"""Where results go by default: one name scheme for every command (standard library only; the portable core
uses it on a device too).

A bench run writes ``results/<host>-<local time>.csv``; a run, a profile or a study writes a folder
``results/<what>-<host>-<local time>/``. Two runs in the same second get ``-2``, ``-3``, ... rather than one name.
"""

from __future__ import annotations

import os
import re
import socket
from datetime import datetime
from pathlib import Path

DEFAULT_RESULTS_DIR = Path("results")


def _host() -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", socket.gethostname()) or "host"


def _first_free(parent: Path, base: str, suffix: str) -> Path:
    path, n = parent / f"{base}{suffix}", 1
    while path.exists():
        n += 1
        path = parent / f"{base}-{n}{suffix}"
    return path


def default_results_csv(folder: str | os.PathLike = DEFAULT_RESULTS_DIR) -> Path:
    """``results/<host>-<local time>.csv``, with a counter if a run in the same second took that name."""
    return _first_free(Path(folder), f"{_host()}-{datetime.now().strftime('%Y%m%d-%H%M%S')}", ".csv")


def default_results_folder(stem: str, parent: str | os.PathLike = DEFAULT_RESULTS_DIR) -> Path:
    """``results/<stem>-<host>-<local time>``, with a counter if a run in the same second took that name."""
    return _first_free(Path(parent), f"{stem}-{_host()}-{datetime.now().strftime('%Y%m%d-%H%M%S')}", "")
