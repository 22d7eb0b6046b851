"""Hostile inputs to ``mbbench export`` and checkpoint loading: one ``Error:`` line, a non-zero status, no
traceback, and the folder byte-identical afterwards."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from tests.hostile.conftest import REPO, assert_refused, invoke

MODEL = "mobileone-s0"
RES = "64"  # mobileone-s0 at 64x64 exports in a few seconds
STEM = f"{MODEL}-{RES}-opset17"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One good export (model + manifest), copied into each test's folder."""
    folder = tmp_path_factory.mktemp("exported")
    result = invoke("export", MODEL, "--resolution", RES, "--models-dir", folder)
    assert result.exit_code == 0, result.output
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture
def models(tmp_path, exported):
    folder = tmp_path / "models"
    folder.mkdir()
    for name, data in exported.items():
        (folder / name).write_bytes(data)
    return folder


def test_failed_forced_export_keeps_the_previous_pair(models, snapshot):
    snap = snapshot(models)
    result = invoke("export", MODEL, "--resolution", RES, "--models-dir", models, "--force", "--tolerance", "1e-12")
    assert_refused(result, "above the tolerance", status=1)
    snap.assert_unchanged()


@pytest.mark.parametrize(
    "tamper, message",
    [
        (lambda p: p.write_text("[1, 2, 3]"), "holds a JSON list"),
        (lambda p: (p.unlink(), p.mkdir()), "is not a regular file"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "opset": "17"})), "wrong type"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "model": "[bold red]x[/]"})), "wrong type"),
        (lambda p: p.write_text(json.dumps({**json.loads(p.read_text()), "sha256": "0" * 64})), "sha256 differs"),
        (lambda p: p.write_bytes(b"\xff\xfe not json"), "is not JSON"),
        (lambda p: p.unlink(), "has no manifest"),
    ],
    ids=["list", "directory", "wrong-type", "markup", "other-file", "binary", "missing"],
)
def test_tampered_manifest_is_refused_not_crashed_on(models, snapshot, tamper, message):
    tamper(models / f"{STEM}.json")
    snap = snapshot(models)
    result = invoke("export", MODEL, "--resolution", RES, "--models-dir", models)
    assert_refused(result, message, status=1)
    snap.assert_unchanged()


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--resolution", "0", "resolution 0 is outside 32-2048"),
        ("--resolution", "100000", "resolution 100000 is outside 32-2048"),
        ("--batch", "0", "batch 0 is outside 1-1024"),
        ("--batch", "1000000000", "batch 1000000000 is outside 1-1024"),
        ("--seed", "-1", "seed -1 is outside 0-4294967295"),
        ("--seed", str(2**64), "is outside 0-4294967295"),
        ("--tolerance", "nan", "finite number above 0"),
        ("--tolerance", "inf", "finite number above 0"),
        ("--tolerance", "0", "finite number above 0"),
        ("--opset", "99", "opset 99 is not supported"),
        ("--fold", "im2col", "'im2col' is not one of"),
    ],
)
def test_numeric_options_out_of_range_are_usage_errors(models, snapshot, option, value, message):
    snap = snapshot(models.parent)
    result = invoke("export", MODEL, option, value, "--models-dir", models / "new")
    assert_refused(result, message, status=2)
    snap.assert_unchanged()


def test_zip_bomb_checkpoint_is_refused_before_inflating(tmp_path, snapshot):
    bomb = tmp_path / "bomb.pth"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
        archive.writestr("archive/data/0", bytes(256 << 20))  # 256 MB of zeros, about 250 kB compressed
    assert bomb.stat().st_size < 1 << 20
    snap = snapshot(tmp_path)
    result = invoke("export", MODEL, "--weights", bomb, "--models-dir", tmp_path / "out")
    assert_refused(result, "more than the model's tensors could take", status=1)
    snap.assert_unchanged()


@pytest.mark.parametrize(
    "content, message",
    [(b"e" * 200, "it is a text file"), (b"", "it is an empty file"), (bytes(range(256)), "neither a zip archive")],
    ids=["text", "empty", "binary"],
)
def test_checkpoint_that_is_not_one_says_what_it_is(tmp_path, snapshot, content, message):
    fake = tmp_path / "weights.pth.tar"
    fake.write_bytes(content)
    snap = snapshot(tmp_path)
    result = invoke("export", MODEL, "--weights", fake, "--models-dir", tmp_path / "out")
    line = assert_refused(result, message, status=1)
    assert "KeyError" not in line
    snap.assert_unchanged()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killed_export_leaves_no_stray_file_after_the_next_run(models, sig):
    """Killed at whatever moment it has reached, then run again: the pair is intact and no temp file is left."""
    args = [sys.executable, "-m", "mbbench", "export", MODEL, "--resolution", RES, "--models-dir", str(models),
            "--force"]  # fmt: skip
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(4)  # anywhere from start-up to the renames: every moment must be safe
    proc.send_signal(sig)
    proc.wait(timeout=60)
    again = subprocess.run(args[:-1], cwd=REPO, capture_output=True, text=True, timeout=300)
    names = sorted(p.name for p in models.iterdir())
    assert names == [f"{STEM}.json", f"{STEM}.onnx"], names
    if again.returncode != 0:  # only the crash between the two renames may leave a pair that does not match
        assert_refused(again, "sha256 differs", status=1)
