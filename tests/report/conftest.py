"""Fixtures for the report tests: a study CSV on disk and the `mbbench` click group."""

from __future__ import annotations

from pathlib import Path

import pytest

from .builders import study_rows, write_csv


@pytest.fixture
def study_csv(tmp_path) -> Path:
    return write_csv(tmp_path / "study.csv", study_rows())


@pytest.fixture
def mbbench_cli():
    """The real ``mbbench`` click group, so the tests see the report command as registered and its errors as
    the group turns them into one-line messages."""
    from mbbench.cli import main

    return main
