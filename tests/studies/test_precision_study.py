"""The precision study on a tiny network: every precision and sensitivity choice exported, judged and measured."""

from __future__ import annotations

import json

import onnx
import pandas as pd
import pytest
import torch
from torch import nn

from mbbench.errors import UserInputError
from mbbench.studies import precision_study
from mbbench.studies.precision import pareto
from tests.cli._helpers import TINY, error_lines, invoke

RES = 32


def tiny() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, 2, 1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    ).eval()  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study") / "precision"
    return precision_study([("tiny", tiny())], threads=1, rounds=2, warmup=0, isolate=False, by="op,block",
                           resolution=RES, calibration_size=4, fidelity_inputs=8, output=out)  # fmt: skip


@pytest.mark.slow
def test_study_writes_its_files(study):
    folder = study.folder.directory
    assert {p.name for p in folder.iterdir()} == {"precision.csv", "precision.samples.csv", "precision.md",
                                                  "precision.png", "models"}  # fmt: skip
    assert "Cheapest choices reaching cosine >= 0.99" in study.summary.read_text()


def test_every_choice_is_a_measured_file_with_its_fidelity(study):
    table = study.table
    precisions = table[table["factor"] == "precision"]["value"].tolist()
    assert precisions == ["fp32", "fp16", "int8", "int8-dynamic"]
    ops = table[table["factor"] == "keep-float-op"]["value"].tolist()
    blocks = table[table["factor"] == "keep-float-block"]["value"].tolist()
    assert {"Conv", "Gemm"} <= set(ops)
    assert {"0", "3", "7"} <= set(blocks)  # the Sequential's children by index (BatchNorm 1 is folded into conv 0)
    rows = pd.read_csv(study.csv)
    assert len(rows) == len(table) and set(rows["study"]) == {"precision"}
    for choice in study.exports:
        manifest = json.loads(open(choice.path.replace(".onnx", ".json")).read())
        assert manifest["precision"] == choice.precision and manifest["fidelity_cosine"] == choice.fidelity_cosine
    by_model = rows.set_index("model")
    assert by_model.loc["tiny-int8", "precision"] == "int8"  # bench copied it from the manifest
    cosine = table.set_index("choice").loc["tiny-int8", "cosine"]
    assert by_model.loc["tiny-int8", "fidelity_cosine"] == pytest.approx(cosine)


def test_keep_float_choices_hold_fewer_quantized_ops(study):
    by_label = {r.model: r for r in study.exports}
    def dequantized(label):
        return sum(n.op_type == "DequantizeLinear" for n in onnx.load(by_label[label].path).graph.node)
    assert dequantized("tiny-int8") > dequantized("tiny-int8-float-conv") > 0
    assert dequantized("tiny-int8") > dequantized("tiny-int8-float-0")


def test_sensitivity_is_measured_against_plain_int8(study):
    table = study.table.set_index("choice")
    int8 = table.loc["tiny-int8"]
    conv = table.loc["tiny-int8-float-conv"]
    assert conv["cosine_regained"] == pytest.approx(conv["cosine"] - int8["cosine"])
    assert conv["ms_given_up"] == pytest.approx(conv["latency_ms"] - int8["latency_ms"])
    assert table.loc["tiny", "ratio"] == 1 and table.loc["tiny", "cosine"] == 1
    cheapest = study.facts["cheapest"]["tiny"]
    assert 1 <= len(cheapest) <= 3 and all(r["cosine"] >= 0.99 for r in cheapest)
    assert [r["latency_ms"] for r in cheapest] == sorted(r["latency_ms"] for r in cheapest)
    reaching = table[table["cosine"] >= 0.99]
    assert cheapest[0]["latency_ms"] == reaching["latency_ms"].min()


def test_pareto_front():
    # (latency, cosine): the slow and worse point (3, 0.9) is beaten by (2, 0.95)
    points = [(1.0, 0.8), (2.0, 0.95), (3.0, 0.9), (4.0, 1.0), (1.5, 0.8)]
    assert pareto(points) == [0, 1, 3]


@pytest.mark.parametrize(
    "options, message",
    [
        ({"by": "layer"}, "unknown --sensitivity choice 'layer'"),
        ({"opset": 12}, "needs opset 13 or newer"),
        ({"goal_cosine": 1.5}, "goal cosine must be a number from -1 to 1"),
        ({"precisions": "int4"}, "unknown precision 'int4'"),
        ({"calibration": "no/such/folder"}, "does not exist"),
    ],
)
def test_bad_input_is_refused_before_any_work(tmp_path, options, message):
    with pytest.raises(UserInputError, match=message):
        precision_study([("tiny", tiny())], threads=1, rounds=2, output=tmp_path / "out", **options)
    assert not (tmp_path / "out").exists()


def test_cli_bad_input_is_one_error_line(tmp_path):
    result = invoke("study", "precision", "--sensitivity", "layer", *TINY, "--output-dir", str(tmp_path / "out"))
    assert result.exit_code != 0 and len(error_lines(result)) == 1, result.output
    assert "unknown --sensitivity choice 'layer'" in error_lines(result)[0] and "Traceback" not in result.output
