"""Fixtures for bench tests: tiny models from tiny_onnx, each test in its own working folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from .tiny_onnx import add_two, conv_relu, matmul_dynamic


@pytest.fixture
def models(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "onnx"
    folder.mkdir()
    return {
        "conv": conv_relu(folder / "conv.onnx"),
        "matmul": matmul_dynamic(folder / "matmul.onnx"),
        "add": add_two(folder / "add.onnx"),
    }


@pytest.fixture
def conv_model(tmp_path: Path) -> Path:
    return conv_relu(tmp_path / "conv.onnx")


@pytest.fixture(autouse=True)
def _no_stray_results(tmp_path, monkeypatch):
    """Run every test from its own folder, so a default results/ path never lands in the repository."""
    monkeypatch.chdir(tmp_path)
