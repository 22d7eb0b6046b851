"""``mbbench profile --target``: the profile made on the device, against the real sshd of conftest.py."""

from __future__ import annotations

import pytest

from mbbench.bench.modelfile import inspect_model
from mbbench.remote import RemoteSettings
from mbbench.remote.profile import profile_targets
from tests.bench.named_onnx import named_graph
from tests.hostile.conftest import invoke


def test_a_tiny_model_is_profiled_on_the_loopback_device(sshd, tmp_path):
    model = inspect_model(named_graph(tmp_path / "named.onnx"))
    target = sshd.target("dev-a", tmp_path / "device-cache")
    notes, infos = [], []
    (profile,) = profile_targets([model], [target], settings=RemoteSettings(ssh_config=sshd.config,
                                 remote_python=sshd.python), note=notes.append, info=infos.append, threads=1,
                                 rounds=2, warmup=0, reference=False)  # fmt: skip
    assert profile.target == target and profile.label == f"named on {target}"
    assert profile.file == model.path.as_posix() and profile.sha256 == model.sha256
    assert "layer_3.1/global_rep" in [g.name for g in profile.by_block()]
    assert sum(n.share for n in profile.nodes) + profile.between_ops_share == pytest.approx(1.0, abs=1e-9)
    assert profile.trace  # ORT's raw trace came back too
    assert any(line.startswith(f"{target}: ") for line in infos)  # what the device is: a fact
    assert not any("cores" in line for line in notes)  # ... never a warning (issue 26)
    assert sorted(p.name for p in (tmp_path / "device-cache" / "models").iterdir()) == [f"{model.sha256}.onnx"]


def test_the_command_line_names_the_device(sshd, tmp_path):
    model = named_graph(tmp_path / "named.onnx")
    target = sshd.target("dev-b", tmp_path / "cache")
    result = invoke("profile", model, "--rounds", "2", "--warmup", "0", "--no-reference", "--target", target,
                    "--ssh-config", sshd.config, "--remote-python", sshd.python, "--output-dir", tmp_path / "out",
                    "--format", "markdown")
    assert result.exit_code == 0, result.output
    assert f"named on {target}, 1 thread" in result.stdout
    assert f"{target}: " in result.output and "warning" not in result.output  # the device described, no warning
    assert any(p.name.startswith("trace-named-on-") for p in (tmp_path / "out").iterdir())


def test_the_pushed_core_profiles_without_the_heavy_stack(tmp_path):
    """What a device runs for a profile imports with only onnxruntime and numpy (onnx, torch, pandas blocked)."""
    import io
    import os
    import subprocess
    import sys
    import tarfile

    from mbbench.remote import portable_core

    core_id, data = portable_core()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "core" / core_id
    blocker = ("import sys\nfor name in ('torch', 'onnx', 'pandas', 'click', 'rich', 'scipy', 'matplotlib'):\n"
               "    sys.modules[name] = None\n"
               "import mbbench.bench.profiling, mbbench.bench.attribution\nprint('ok')\n")
    proc = subprocess.run([sys.executable, "-c", blocker], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(root)})
    assert proc.stdout.strip() == "ok", proc.stderr
