"""Hostile inputs to ``mbbench bench``: each is refused in one line before anything is measured, and every file
that existed before is byte-identical afterwards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bench.tiny_onnx import conv_relu
from tests.hostile.conftest import assert_refused, invoke, run_cli

FAST = ["--threads", "1", "--rounds", "2", "--warmup", "0", "--no-isolate"]


@pytest.fixture
def model(tmp_path):
    return conv_relu(tmp_path / "m.onnx", size=8)


@pytest.mark.parametrize(("args", "message"), [
    (["--cooldown", "1e10"], "cooldown must be a number of seconds from 0 to 3600"),
    (["--min-time", "1e308"], "min_time must be a number of seconds from 0 to 3600"),
    (["--min-time", "nan"], "min_time must be a number of seconds from 0 to 3600"),
    (["--inter-threads", "10000000000"], "inter_threads must be from 1 to 1024"),
    (["--seed", str(2**64)], "seed must be from 0 to 2**32-1"),
    (["--rounds", "0"], "rounds must be from 2 to 1000000"),
    (["--threads", "1.5"], "'1.5' is not a count or a range"),
    (["--threads", "99999"], "99999 threads is more than 1024"),
    (["--input-shape", "1x3x100000x100000"], "more than the limit of 2**31"),
])
def test_out_of_range_numbers_are_refused_before_any_work(tmp_path, snapshot, model, args, message):
    snap = snapshot(tmp_path)
    assert_refused(invoke("bench", model, *FAST, *args, "-o", tmp_path / "out.csv"), message)
    snap.assert_unchanged()


@pytest.mark.parametrize(("content", "message"), [
    (b"model,threads\n\xff\xfe\n", "is not UTF-8 text"),
    (b"name,value\nx,1\n", "has a different schema"),
])
def test_append_onto_a_foreign_file_is_refused(tmp_path, snapshot, model, content, message):
    (tmp_path / "out.csv").write_bytes(content)
    snap = snapshot(tmp_path)
    assert_refused(invoke("bench", model, *FAST, "-o", tmp_path / "out.csv", "--append"), message)
    snap.assert_unchanged()


def test_append_onto_a_file_missing_its_last_newline_starts_a_fresh_line(tmp_path, model):
    out = tmp_path / "out.csv"
    assert invoke("bench", model, *FAST, "-o", out).exit_code == 0
    out.write_bytes(out.read_bytes().rstrip(b"\n"))  # an editor dropped the final newline
    assert invoke("bench", model, *FAST, "-o", out, "--append").exit_code == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 3 and all(line.count(",") == lines[0].count(",") for line in lines)


def test_output_that_is_a_device_is_refused_and_left_alone(tmp_path, model):
    before = os.stat("/dev/full")
    assert_refused(invoke("bench", model, *FAST, "-o", "/dev/full"), "/dev/full is not a regular file")
    assert_refused(invoke("bench", model, *FAST, "-o", "/dev/full", "--append"), "/dev/full is not a regular file")
    after = os.stat("/dev/full")
    assert (after.st_mode, after.st_rdev, after.st_ino) == (before.st_mode, before.st_rdev, before.st_ino)


@pytest.mark.parametrize("kind", ["folder", "dangling", "fifo"])
def test_output_that_is_not_a_file_is_refused_before_measuring(tmp_path, snapshot, model, kind):
    out = tmp_path / "out.csv"
    if kind == "folder":
        out.mkdir()
    elif kind == "dangling":
        out.symlink_to(tmp_path / "nowhere")
    else:
        os.mkfifo(out)
    snap = snapshot(tmp_path)
    assert_refused(invoke("bench", model, *FAST, "-o", out, "--append"))
    snap.assert_unchanged()


def test_output_folder_that_cannot_be_created_is_refused_before_measuring(tmp_path, snapshot, model):
    snap = snapshot(tmp_path)
    assert_refused(invoke("bench", model, *FAST, "-o", "/proc/mbbench-nope/out.csv"), "cannot create the folder")
    snap.assert_unchanged()


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: os.mkfifo(p), "is a FIFO, not a regular file"),
    (lambda p: p.symlink_to("/dev/zero"), "is a device, not a regular file"),
])
def test_a_special_file_given_as_model_is_refused_not_read(tmp_path, snapshot, make, message):
    target = tmp_path / "x.onnx"
    make(target)
    snap = snapshot(tmp_path)
    result = run_cli("bench", target, *FAST, "-o", tmp_path / "out.csv", timeout=60)  # a read would hang
    assert_refused(result, message)
    snap.assert_unchanged()


def test_a_model_folder_skips_what_is_not_a_regular_file(tmp_path, model):
    folder = tmp_path / "models"
    folder.mkdir()
    conv_relu(folder / "good.onnx", size=8)
    (folder / "dir.onnx").mkdir()
    (folder / "dangling.onnx").symlink_to(folder / "nowhere")
    os.mkfifo(folder / "fifo.onnx")
    (folder / "zero.onnx").symlink_to("/dev/zero")
    result = run_cli("bench", folder, *FAST, "-o", tmp_path / "out.csv", timeout=120)
    assert result.returncode == 0, result.stderr
    for name in ("dir.onnx", "dangling.onnx", "fifo.onnx", "zero.onnx"):
        assert name in result.stderr
    assert Path(tmp_path / "out.csv").read_text().count("\n") == 2
