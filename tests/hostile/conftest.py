"""Hostile inputs: every refused input ends in one ``Error:`` line and a non-zero status, no traceback, and every
file that existed before is byte-identical afterwards.

Two ways to drive a command: :func:`run_cli` runs ``python -m mbbench`` in a real subprocess (real signals, real
file descriptors, real exit codes), :func:`invoke` uses click's CliRunner in-process (fast). :class:`Snapshot`
records every file under a folder (bytes, type, link target) so a test can assert nothing changed.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[2]


def run_cli(*args, cwd=None, env=None, timeout=120, input=None) -> subprocess.CompletedProcess:
    """``python -m mbbench ARGS`` in a subprocess; stdout and stderr captured as text."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "mbbench", *map(str, args)],
        cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, input=input,
    )


def invoke(*args):
    from mbbench.cli import main

    return CliRunner().invoke(main, [str(a) for a in args], terminal_width=200)


def assert_refused(result, message: str | None = None, status: int | None = None) -> str:
    """One ``Error:`` line (containing ``message``), a non-zero (or exactly ``status``) exit, no traceback."""
    if isinstance(result, subprocess.CompletedProcess):
        code, out, exc = result.returncode, result.stdout + result.stderr, None
    else:
        code, out, exc = result.exit_code, result.output, result.exception
    assert code != 0, out
    if status is not None:
        assert code == status, (code, out)
    assert "Traceback" not in out, out
    assert exc is None or isinstance(exc, SystemExit), repr(exc)
    errors = [line for line in out.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, out
    if message is not None:
        assert message in errors[0], errors[0]
    return errors[0]


class Snapshot:
    """Every entry under ``root``: regular files by content, links by target, others by file type."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.before = self.take()

    def take(self) -> dict[str, object]:
        state: dict[str, object] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in dirnames + filenames:
                path = Path(dirpath) / name
                rel = str(path.relative_to(self.root))
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    state[rel] = ("link", os.readlink(path))
                elif stat.S_ISREG(mode):
                    state[rel] = ("file", path.read_bytes())
                else:
                    state[rel] = ("type", stat.S_IFMT(mode))
        return state

    def assert_unchanged(self) -> None:
        after = self.take()
        added = sorted(set(after) - set(self.before))
        removed = sorted(set(self.before) - set(after))
        changed = sorted(k for k in set(after) & set(self.before) if after[k] != self.before[k])
        assert not (added or removed or changed), f"added {added}, removed {removed}, changed {changed}"


@pytest.fixture
def snapshot():
    """``snapshot(folder)`` records the folder now; call ``.assert_unchanged()`` at the end of the test."""
    return Snapshot


@pytest.fixture
def full_disk(tmp_path):
    """A real file system with no space left: a 64 KiB tmpfs filled to the last byte (needs root and mount)."""
    mount = tmp_path / "full"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({made.stderr.decode(errors='replace').strip()[:80]})")
    try:
        with open(mount / "filler", "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 512)
            except OSError:
                pass
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
