"""Shared test fixtures, and the fast set.

``pytest -q`` runs the fast set (a few minutes, before every commit); tests marked ``slow`` (end-to-end: runtime
conversions, the emulated arm64 device, kill-at-random soaks, fleets over SSH, every opset of every family) are
skipped with the reason unless ``--all`` is given, as CI gives it.

The reference manifests of the official checkpoints live outside the project (``../shared/reference`` next
to the checkout, or wherever ``MBBENCH_REFERENCE`` points); tests that need them skip with the reason when they
are absent. The project never copies them.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def _reference_dir() -> Path | None:
    candidates = [os.environ.get("MBBENCH_REFERENCE"), REPO.parent / "shared" / "reference"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "state_dicts").is_dir():
            return Path(candidate)
    return None


REFERENCE = _reference_dir()


def pytest_addoption(parser):
    parser.addoption("--all", action="store_true", dest="run_all",
                     help="also run the tests marked slow (the end-to-end ones; CI runs everything)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("run_all"):
        return
    skip = pytest.mark.skip(reason="slow (end to end): pytest --all runs it, as CI does")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def reference_state_dict():
    """Loader for ``<reference>/state_dicts/<stem>.json`` as an ordered {key: shape} dict (skips if absent)."""
    if REFERENCE is None:
        pytest.skip("reference manifests not found: set MBBENCH_REFERENCE or place ../shared/reference next to the repo")

    def load(stem: str) -> dict[str, tuple[int, ...]]:
        with open(REFERENCE / "state_dicts" / f"{stem}.json") as fh:
            return {k: tuple(v) for k, v in json.load(fh).items()}

    return load


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # Two cores here; pinning keeps numerics reproducible and leaves room for the other test process.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def rel_err(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max |a - e| / max |e|: one number for 'same function' comparisons."""
    return float((actual - expected).abs().max() / expected.abs().max().clamp_min(1e-12))
