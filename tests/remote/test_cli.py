"""``--target`` through the command line, against the real sshd of conftest.py."""

from __future__ import annotations

import csv
import sys

import pytest

from tests.bench.tiny_onnx import conv_relu
from tests.hostile.conftest import assert_refused, invoke


def rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def remote_args(sshd):
    return ["--ssh-config", sshd.config, "--remote-python", sshd.python]


@pytest.mark.slow
def test_a_fleet_of_two_devices_then_a_report_per_device_and_a_device_vs_device_comparison(sshd, tmp_path):
    model = conv_relu(tmp_path / "net.onnx", size=8)
    a, b = sshd.target("dev-a", tmp_path / "a"), sshd.target("dev-b", tmp_path / "b")
    fleet = tmp_path / "fleet.csv"
    result = invoke("bench", model, "--threads", "1", "--rounds", "3", "--warmup", "0", "--target", a, "--target", b,
                    *remote_args(sshd), "-o", fleet)
    assert result.exit_code == 0, result.output
    assert sorted(r["target"] for r in rows(fleet)) == sorted([a, b])
    assert f"net on {a}" in result.output and f"net on {b}" in result.output  # the summary names each device
    described = [line for line in result.output.splitlines() if " cores" in line and "governor" in line]
    assert len(described) == 2 and not any("warning" in line for line in described)  # facts, not warnings

    report = invoke("report", fleet, "--format", "markdown")
    assert report.exit_code == 0, report.output
    assert "via ssh://dev-a\n" in report.output and "via ssh://dev-b\n" in report.output  # a section per device

    one = tmp_path / "one.csv"
    assert invoke("bench", model, "--threads", "1", "--rounds", "3", "--warmup", "0", "--target", a,
                  *remote_args(sshd), "-o", one).exit_code == 0
    other = tmp_path / "other.csv"
    assert invoke("bench", model, "--threads", "1", "--rounds", "3", "--warmup", "0", "--target", b,
                  *remote_args(sshd), "-o", other).exit_code == 0
    compared = invoke("report", one, "--compare", other, "--format", "markdown")
    assert compared.exit_code == 0, compared.output
    assert "Comparison" in compared.output and "only in" not in compared.output


@pytest.mark.slow
def test_resume_measures_only_what_is_missing(sshd, tmp_path):
    first, second = conv_relu(tmp_path / "first.onnx", size=8), conv_relu(tmp_path / "second.onnx", size=12)
    target = sshd.target("dev-a", tmp_path / "cache")
    output = tmp_path / "out.csv"
    common = ["--threads", "1", "--rounds", "3", "--warmup", "0", "--target", target, *remote_args(sshd), "-o", output]
    assert invoke("bench", first, *common).exit_code == 0
    result = invoke("bench", first, second, *common, "--resume")
    assert result.exit_code == 0, result.output
    assert "1 configurations were already" in result.output
    assert sorted(r["model"] for r in rows(output)) == ["first", "second"]


def test_target_errors_are_one_line(sshd, tmp_path):
    model = conv_relu(tmp_path / "net.onnx", size=8)
    assert_refused(invoke("bench", model, "--target", "phone"), "not an ssh:// URL", status=1)
    assert_refused(invoke("bench", model, "--resume"), "--resume goes with --target", status=2)
    for command in ("bench", "run", "profile"):  # an unclosed IPv6 bracket: urllib's ValueError, caught
        assert_refused(invoke(command, model, "--target", "ssh://[x"), "is not a valid URL", status=1)
    assert_refused(invoke("bench", model, "--target", "ssh://" + "a" * 100_000), "at most 4,096", status=1)
    assert_refused(invoke("bench", model, "--target", "ssh://" + "a" * 300 + "/w"), "host is 300 characters",
                   status=1)
    assert_refused(invoke("bench", model, "--target", "ssh://dev-a", "--ssh-config", tmp_path / "nope"),
                   "no such file", status=2)
    refused = invoke("bench", model, "--threads", "1", "--target", sshd.target(sshd.unknown_alias, tmp_path / "c"),
                     *remote_args(sshd), "-o", tmp_path / "o.csv")
    line = assert_refused(refused, "host key", status=1)
    assert f"ssh -F {sshd.config} {sshd.unknown_alias}" in line  # the login that would trust it, as mbbench logs in
    assert not (tmp_path / "o.csv").exists()


@pytest.mark.slow
def test_run_exports_here_and_measures_on_the_target(sshd, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = sshd.target("dev-a", tmp_path / "cache")
    result = invoke("run", "mobileone-s0", "--threads", "1", "--rounds", "2", "--warmup", "0", "--no-isolate",
                    "--target", target, *remote_args(sshd), "--output-dir", tmp_path / "run")
    assert result.exit_code == 0, result.output
    measured = rows(tmp_path / "run" / "run.csv")
    assert [r["target"] for r in measured] == [target]
    assert (tmp_path / "cache" / "models" / f"{measured[0]['sha256']}.onnx").is_file()
    assert sys.executable  # the remote python is this interpreter (conftest), so onnxruntime is there
