"""The device path on arm64: an emulated aarch64 Python (qemu user mode, see mbbench.remote.emulated) behind
the real loopback sshd. Bench, profile and a precision variant run there as on a phone; what arm64 shows that
x86 cannot is asserted: the device's facts, its version, its outputs against this machine's, and the profile's
blocks under ONNX Runtime's arm64 layout transformer. Skips with the reason when the device cannot be made
(qemu-user-static or debootstrap missing, the Debian archive or PyPI unreachable); .ci/run installs both."""

from __future__ import annotations

import csv
import json
import subprocess

import numpy as np
import pytest

import mbbench
from mbbench.remote.emulated import EmulationUnavailable, arm64_python
from tests.bench.tiny_onnx import conv_relu
from tests.hostile.conftest import invoke

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def arm64(tmp_path_factory):
    try:
        return arm64_python()
    except EmulationUnavailable as exc:
        pytest.skip(f"no emulated arm64 device: {exc}")


def remote(sshd, arm64, cache):
    return ["--target", sshd.target("dev-a", cache), "--ssh-config", sshd.config, "--remote-python", arm64]


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_bench_on_arm64_records_the_device_as_it_is(sshd, arm64, tmp_path):
    model = conv_relu(tmp_path / "net.onnx", size=8)
    out = tmp_path / "arm.csv"
    result = invoke("bench", model, "--threads", "1,2", "--rounds", "3", "--warmup", "0",
                    *remote(sshd, arm64, tmp_path / "cache"), "-o", out)
    assert result.exit_code == 0, result.output
    measured = rows(out)
    assert [r["threads"] for r in measured] == ["1", "2"]
    for row in measured:
        assert row["cpu_model"] == "Neoverse-N1"  # named from CPU implementer/part, not "aarch64"
        assert row["mbbench_version"] == mbbench.__version__  # carried with the pushed core
        assert row["isolated"] == "True"  # the worker re-entered qemu through the wrapper
    described = [line for line in result.output.splitlines() if "Neoverse-N1" in line and "cores" in line]
    assert described and not any("warning" in line for line in described)


def blocks_graph(path):
    """Convolutions in three blocks, as nn.Sequential names them (/0/Conv, /1/Conv, /2/...), block 2 the heavy
    one: the arm64 layout transformer renames them /0/Conv_token_1 and wraps them in Transposes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits, nodes, x = [], [], "image"
    for block, (cin, cout, repeats) in enumerate([(8, 8, 1), (8, 8, 1), (8, 32, 3)]):
        for k in range(repeats):
            name = f"/{block}/conv{k}" if repeats > 1 else f"/{block}"
            w = f"w{block}_{k}"
            inits.append(numpy_helper.from_array(rng.standard_normal((cout, cin if k == 0 else cout, 3, 3))
                                                 .astype(np.float32) * 0.1, w))
            nodes += [helper.make_node("Conv", [x, w], [f"c{block}_{k}"], name=f"{name}/Conv", pads=[1, 1, 1, 1]),
                      helper.make_node("Relu", [f"c{block}_{k}"], [f"r{block}_{k}"], name=f"{name}/Relu")]
            x = f"r{block}_{k}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["out"], name="/head/GlobalAveragePool"))
    graph = helper.make_graph(nodes, "blocks", [helper.make_tensor_value_info("image", TensorProto.FLOAT,
                              [1, 8, 16, 16])], [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
                              initializer=inits)  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_the_profile_on_arm64_attributes_each_kernel_to_its_own_block(sshd, arm64, tmp_path):
    """arm64's NHWC convolutions (/2/conv0/Conv_token_4, NhwcFusedConv) stand for their own Conv+Relu in their
    own block, and the Transposes around them for nothing: the blocks' shares agree with this machine's."""
    from mbbench.bench.modelfile import inspect_model
    from mbbench.bench.profiling import profile_model
    from mbbench.remote import RemoteSettings
    from mbbench.remote.profile import profile_targets

    model = inspect_model(blocks_graph(tmp_path / "blocks.onnx"))
    (arm,) = profile_targets([model], [sshd.target("dev-a", tmp_path / "cache")], settings=RemoteSettings(
        ssh_config=sshd.config, remote_python=str(arm64)), threads=1, rounds=3, warmup=1, reference=False)
    here = profile_model(model, threads=1, rounds=3, warmup=1, reference=False)
    assert "NhwcFusedConv" in {n.op_type for n in arm.nodes}  # the arm64 kernels really ran there
    for node in arm.nodes:
        if node.op_type == "Transpose":
            assert node.covers == (), node  # a layout conversion computes nothing of the model
        if "Conv" in node.op_type:
            assert not node.inherited and node.covers == ("Conv", "Relu"), node
            assert node.path.split("/")[0] == node.node.split("/")[1], node  # /2/conv0/Conv_token_7: block 2
    shares = {p: {g.name: g.share for g in p.by_block(depth=1)} for p in (arm, here)}
    assert max(shares[arm], key=shares[arm].get) == max(shares[here], key=shares[here].get) == "2"
    assert shares[arm]["2"] > 0.5 and shares[arm]["0"] < 0.3


def test_an_int8_variant_measures_on_arm64_with_its_precision(sshd, arm64, tmp_path):
    from mbbench.export import export_precisions

    made = export_precisions("mobileone-s0", ("fp32", "int8"), resolution=32, output_dir=tmp_path / "models",
                             fidelity_inputs=4, calibration_size=4)
    out = tmp_path / "precision.csv"
    result = invoke("bench", *[r.path for r in made], "--threads", "1", "--rounds", "2", "--warmup", "0",
                    *remote(sshd, arm64, tmp_path / "cache"), "-o", out)
    assert result.exit_code == 0, result.output
    assert sorted(r["precision"] or "fp32" for r in rows(out)) == ["fp32", "int8"]
    assert {r["cpu_model"] for r in rows(out)} == {"Neoverse-N1"}


def test_the_device_computes_what_this_machine_computes(arm64, tmp_path):
    """The same file, the same input: aarch64 kernels against x86 ones, within float32 rounding."""
    import onnxruntime as ort

    model = blocks_graph(tmp_path / "blocks.onnx")
    image = np.random.default_rng(1).standard_normal((1, 8, 16, 16)).astype(np.float32)
    np.save(tmp_path / "image.npy", image)
    code = ("import json, sys, numpy as np, onnxruntime as ort\n"
            "s = ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])\n"
            "print(json.dumps(s.run(None, {'image': np.load(sys.argv[2])})[0].ravel().tolist()))\n")
    proc = subprocess.run([str(arm64), "-c", code, str(model), str(tmp_path / "image.npy")], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    there = np.asarray(json.loads(proc.stdout), dtype=np.float32)
    here = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"image": image})[0].ravel()
    assert np.abs(there - here).max() <= 1e-5 * max(1.0, float(np.abs(here).max()))
    assert not np.array_equal(there, np.zeros_like(there))


def variant(arm64, tmp_path, *, no_cpuinfo=False, no_argv0=False):
    """The emulated device, broken in one of the two ways issue 26 found: onnxruntime segfaulting on import (an
    x86 /proc/cpuinfo), or sys.executable that is not runnable (qemu without -0)."""
    device = arm64.parent
    text = arm64.read_text()
    if no_cpuinfo:  # a root of links to the real one, without proc/
        root = tmp_path / "root"
        root.mkdir()
        for entry in (device / "root").iterdir():
            if entry.name != "proc":
                (root / entry.name).symlink_to(entry)
        text = text.replace(f"-L {device / 'root'} ", f"-L {root} ")
    if no_argv0:
        text = text.replace(f"-0 {arm64} ", "")
    wrapper = tmp_path / "python"
    wrapper.write_text(text)
    wrapper.chmod(0o755)
    return wrapper


def test_a_device_python_that_segfaults_on_import_is_a_crash_with_its_signal(sshd, arm64, tmp_path):
    from tests.hostile.conftest import assert_refused

    broken = variant(arm64, tmp_path, no_cpuinfo=True)
    result = invoke("bench", conv_relu(tmp_path / "net.onnx", size=8), "--threads", "1", "--rounds", "2",
                    *remote(sshd, broken, tmp_path / "cache"), "-o", tmp_path / "o.csv")
    line = assert_refused(result, "the device's Python crashed (signal 11, SIGSEGV)", status=1)
    assert "ssh failed" not in line


def test_a_worker_that_cannot_re_enter_the_emulator_fails_its_configurations_not_the_agent(sshd, arm64, tmp_path):
    broken = variant(arm64, tmp_path, no_argv0=True)
    model = conv_relu(tmp_path / "net.onnx", size=8)
    common = ["--threads", "1", "--rounds", "2", "--warmup", "0", *remote(sshd, broken, tmp_path / "cache")]
    result = invoke("bench", model, *common, "-o", tmp_path / "o.csv")
    assert result.exit_code == 1, result.output
    assert "Exec format error" in result.output and "--no-isolate" in result.output
    assert "Traceback" not in result.output and "--resume" not in result.output
    again = invoke("bench", model, *common, "--no-isolate", "-o", tmp_path / "again.csv")
    assert again.exit_code == 0, again.output
    assert rows(tmp_path / "again.csv")[0]["isolated"] == "False"
