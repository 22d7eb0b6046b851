"""What mbbench profile writes: the CSV and its sums, the side-by-side document, the comparison, the folder."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pytest

from mbbench.bench.attribution import KernelTrace, TraceTimes
from mbbench.bench.modelfile import ModelFile
from mbbench.bench.profiling import BETWEEN_OPS, build_profile
from mbbench.errors import UserInputError
from mbbench.report.document import to_markdown
from mbbench.report.profile import (
    PROFILE_FILES,
    build_document,
    compare_ops,
    coverage_notes,
    prepare_folder,
    read_profile_csv,
    to_csv,
    to_json,
    write_profile,
)
from mbbench.report.profile import _merged_order as merged_order


def make_profile(model: str, kernels: list[tuple[str, str, float]], runs_us=(100.0, 100.0), threads=1, **facts):
    """A profile of two rounds from (node, op type, µs per round) without running anything."""
    times = TraceTimes(runs_us=tuple(runs_us), execute_us=tuple(runs_us),
                       kernels=tuple(KernelTrace(n, op, "CPUExecutionProvider", us * len(runs_us), len(runs_us))
                                     for n, op, us in kernels), session_us=None, runs_seen=len(runs_us))  # fmt: skip
    file = ModelFile(path=Path(f"{model}.onnx"), label=model, sha256="0" * 64, opset=17)
    return build_profile(file, times, None, threads=threads, rounds=len(runs_us), warmup=0, **facts)


V1 = make_profile("v1", [("/conv_1/block/conv/Conv", "Conv", 20.0),
                         ("/layer_3/layer_3.1/global_rep/global_rep.0/attn/MatMul", "MatMul", 50.0),
                         ("/layer_3/layer_3.1/global_rep/global_rep.0/attn/Softmax", "Softmax", 20.0)])
V2 = make_profile("v2", [("/conv_1/block/conv/Conv", "Conv", 30.0),
                         ("/layer_3/layer_3.1/global_rep/global_rep.0/attn/Conv", "Conv", 40.0),
                         ("/classifier/fc/Gemm", "Gemm", 5.0)], runs_us=(80.0, 120.0))


def test_the_csv_has_a_row_per_node_and_a_between_ops_row_and_its_shares_add_up():
    rows = list(csv.DictReader(io.StringIO(to_csv([V1, V2]))))
    assert {"model", "threads", "node", "op_type", "block", "mean_ms", "share"} <= set(rows[0])
    assert [r["node"] for r in rows if r["model"] == "v1"][-1] == BETWEEN_OPS
    assert len(rows) == 3 + 1 + 3 + 1
    for model in ("v1", "v2"):
        shares = [float(r["share"]) for r in rows if r["model"] == model]
        assert sum(shares) == pytest.approx(1.0, abs=1e-12)
    between = next(r for r in rows if r["model"] == "v1" and r["node"] == BETWEEN_OPS)
    assert float(between["mean_ms"]) == pytest.approx(0.010) and float(between["share"]) == pytest.approx(0.1)
    attn = next(r for r in rows if r["node"].endswith("attn/MatMul"))
    assert attn["block"] == "layer_3.1/global_rep" and float(attn["mean_ms"]) == pytest.approx(0.05)


def test_a_name_that_a_spreadsheet_would_run_stays_text():
    p = make_profile("=cmd", [("=HYPERLINK(1)", "Conv", 10.0)])
    text = to_csv([p])
    assert "'=cmd" in text and "'=HYPERLINK(1)" in text


def test_the_document_puts_models_side_by_side_with_between_ops_and_end_to_end_rows():
    text = to_markdown(build_document([V1, V2], top=2))
    assert "| block | v1, 1 thread: ms | share | calls | v2, 1 thread: ms | share | calls |" in text
    assert "| layer_3.1/global_rep | 0.0700 | 70.0% | 2 | 0.0400 | 40.0% | 1 |" in text
    assert "| classifier/fc | - | - | - | 0.00500 | 5.0% | 1 |" in text
    assert "| (between ops) | 0.0100 | 10.0% |  | 0.0250 | 25.0% |  |" in text
    assert "| end to end | 0.100 | 100.0% |  | 0.100 | 100.0% |  |" in text
    assert "| Conv |  | 0.0200 | 20.0% | 1 | 0.0700 | 70.0% | 2 |" in text
    assert "| 1 | /layer_3/layer_3.1/global_rep/global_rep.0/attn/MatMul | MatMul |  | layer_3.1/global_rep | 0.0500 " \
           "| 50.0% |" in text  # the slowest kernel of each profile
    assert "| 1 | /layer_3/layer_3.1/global_rep/global_rep.0/attn/Conv | Conv |" in text
    only_ops = to_markdown(build_document([V1, V2], by="op"))
    assert "By op type" in only_ops and "By block" not in only_ops and "slowest" not in only_ops


def test_the_summary_says_why_when_node_time_covers_less_than_90_percent():
    assert coverage_notes(V1) == []  # 90.0%
    (why,) = coverage_notes(V2)  # 75.0%
    assert "covers 75.0% of the end-to-end time (below 90%)" in why
    assert "0.0250 ms between ops are 8.3 µs for each of 3 kernels" in why


def test_blocks_of_several_models_keep_their_execution_order():
    assert merged_order([["conv_1", "layer_5.1", "conv_1x1_exp", "classifier/fc"],
                         ["conv_1", "layer_5.1", "classifier.0", "classifier.1"]]) == [
        "conv_1", "layer_5.1", "conv_1x1_exp", "classifier/fc", "classifier.0", "classifier.1"]
    assert merged_order([["a", "c"], ["a", "b", "c"]]) == ["a", "b", "c"]


def test_compare_pairs_the_same_model_and_threads_op_type_by_op_type(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "profile.csv").write_text(to_csv([V1]))
    base = read_profile_csv(tmp_path / "base")
    newer = make_profile("v1", [("/conv_1/block/conv/Conv", "Conv", 10.0),
                                ("/layer_3/layer_3.1/global_rep/global_rep.0/attn/MatMul", "MatMul", 50.0)],
                         runs_us=(70.0, 70.0))
    (comparison,) = compare_ops([newer], base)
    rows = {name: (old, new) for name, old, new in comparison.rows}
    assert rows["Conv"] == pytest.approx((0.020, 0.010))
    assert rows["MatMul"] == pytest.approx((0.050, 0.050))
    assert rows["Softmax"][0] == pytest.approx(0.020) and math.isnan(rows["Softmax"][1])
    assert rows[BETWEEN_OPS] == pytest.approx((0.010, 0.010))
    assert [name for name, _, _ in comparison.rows][-2:] == [BETWEEN_OPS, "end to end"]
    text = to_markdown(build_document([newer], comparisons=[comparison], base_label="base"))
    assert "| Conv | 0.0200 | 0.0100 | -0.0100 | 0.50 |" in text
    # one profile on each side pairs even under another name (a graph change, another device)
    assert compare_ops([V2], base)[0].base_label == "v1, 1 thread"
    with pytest.raises(UserInputError, match="nothing to pair"):
        compare_ops([V1, V2], read_profile_csv(_write(tmp_path / "x", to_csv([make_profile("v9", [])]))))


def _write(folder: Path, text: str) -> Path:
    folder.mkdir()
    (folder / "profile.csv").write_text(text)
    return folder


@pytest.mark.parametrize("content, message", [
    (None, "there is no profile.csv there"),
    ("a,b\n1,2\n", "is not a profile CSV"),
    ("model,threads,op_type,mean_ms,end_to_end_ms\nx,one,Conv,1,2\n", "it is not a profile CSV"),
    ("model,threads,op_type,mean_ms,end_to_end_ms\n", "holds no profile"),
])  # fmt: skip
def test_a_base_that_is_not_a_profile_is_refused_in_one_line(tmp_path, content, message):
    folder = tmp_path / "base"
    folder.mkdir()
    if content is not None:
        (folder / "profile.csv").write_text(content)
    with pytest.raises(UserInputError, match=message):
        read_profile_csv(folder)


def test_the_folder_is_written_whole_and_never_over_an_old_profile(tmp_path):
    folder = prepare_folder(tmp_path / "out")
    written = write_profile([V1, V2], folder)
    assert sorted(p.name for p in written) == sorted(PROFILE_FILES)  # these profiles carry no trace
    assert sorted(p.name for p in folder.iterdir()) == sorted(PROFILE_FILES)  # no temporary file left
    assert (folder / "profile.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserInputError, match="already exists"):
        prepare_folder(folder)
    (tmp_path / "file").write_text("x")
    with pytest.raises(UserInputError, match="is a file"):
        prepare_folder(tmp_path / "file")


def test_json_holds_the_sums():
    (data,) = json.loads(to_json([V2]))
    assert data["coverage"] == pytest.approx(0.75) and data["between_ops_ms"] == pytest.approx(0.025)
    assert [g["name"] for g in data["by_op"]] == ["Conv", "Gemm"] and "trace" not in data
