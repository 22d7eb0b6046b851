"""Real zoo exports at a small resolution, made once per session, for the runtime tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.remote.conftest import sshd  # noqa: F401 - the real loopback sshd, for --target with runtimes


@pytest.fixture(scope="session")
def zoo_exports(tmp_path_factory) -> dict[str, Path]:
    """MobileOne-S0 (every runtime runs it) and MobileViT-XXS (ncnn cannot) at 64x64, opset 17, as export writes
    them (with manifests)."""
    from mbbench.export import export_onnx

    folder = tmp_path_factory.mktemp("zoo")
    out = {}
    for name in ("mobileone-s0", "mobilevit-xxs"):
        result = export_onnx(name, resolution=64, output_dir=folder)
        out[name] = Path(result.path)
    return out


@pytest.fixture(scope="session")
def litert_converter():
    """LiteRT's converter environment, made by ``mbbench setup litert``'s function if this machine lacks it (the
    package index is reachable here; about a minute and 1 GB, once per machine)."""
    from mbbench.runtimes.litert import setup_converter

    return setup_converter(note=lambda message: None)
