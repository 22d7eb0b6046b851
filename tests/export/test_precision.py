"""Precision variants: FP16 and INT8 files derived from the verified FP32 graph, with their fidelity recorded."""

import json
import os
from collections import Counter

import numpy as np
import onnx
import pytest
from PIL import Image

import mbbench
from mbbench.errors import UserInputError
from mbbench.export import FidelityError, export_onnx, export_precisions
from mbbench.export import precision as prec
from mbbench.export.calibration import PREPROCESSING, load_image, make_inputs
from mbbench.export.precision import PrecisionError, fidelity
from tests.cli._helpers import error_lines, invoke

RES = 64  # small inputs keep each export to a few seconds
QUANT_OPS = {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"}


def ops(path) -> Counter:
    return Counter(node.op_type for node in onnx.load(path).graph.node)


def files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def mobileone(tmp_path_factory):
    """mobileone-s0 in all four precisions from one export (opset 13, the first int8 opset)."""
    folder = tmp_path_factory.mktemp("precisions")
    results = export_precisions("mobileone-s0", "fp32,fp16,int8,int8-dynamic", opset=13, resolution=RES,
                                output_dir=folder, fidelity_inputs=16)  # fmt: skip
    return folder, {r.precision: r for r in results}


def test_each_precision_is_its_own_file_with_its_own_manifest(mobileone):
    folder, results = mobileone
    stem = "mobileone-s0-64-opset13"
    assert files(folder) == sorted(f"{stem}{suffix}{ext}" for suffix in ("", "-fp16", "-int8", "-int8-dynamic")
                                   for ext in (".json", ".onnx"))  # fmt: skip
    for precision, result in results.items():
        manifest = json.loads((folder / f"{stem}{'' if precision == 'fp32' else '-' + precision}.json").read_text())
        assert manifest["precision"] == precision and manifest["path"] == result.path
        assert manifest["sha256"] == result.sha256 and manifest["opset"] == 13


def test_int8_files_hold_quantized_ops_and_fp32_none(mobileone):
    _, results = mobileone
    static, dynamic, fp32 = (ops(results[p].path) for p in ("int8", "int8-dynamic", "fp32"))
    assert static["QuantizeLinear"] > 0 and static["DequantizeLinear"] > static["QuantizeLinear"]
    assert dynamic["DynamicQuantizeLinear"] > 0 and dynamic["ConvInteger"] > 0
    assert not QUANT_OPS & set(fp32)


def test_fp16_keeps_fp32_inputs_and_outputs(mobileone):
    _, results = mobileone
    model = onnx.load(results["fp16"].path)
    graph_io = [*model.graph.input, *model.graph.output]
    assert {v.type.tensor_type.elem_type for v in graph_io} == {onnx.TensorProto.FLOAT}
    weights = Counter(t.data_type for t in model.graph.initializer)
    assert weights[onnx.TensorProto.FLOAT16] > weights[onnx.TensorProto.FLOAT]


def test_manifest_fidelity_is_what_the_files_compute(mobileone):
    # Recompute the fidelity from the written files on the same held-out inputs: the manifest must say the truth.
    _, results = mobileone
    inputs = make_inputs("random", family="mobileone", resolution=RES, batch=1, calibration_size=32,
                         fidelity_inputs=16, seed=0)  # fmt: skip
    reference = prec.outputs(open(results["fp32"].path, "rb").read(), inputs.fidelity)
    for precision in ("fp16", "int8", "int8-dynamic"):
        r = results[precision]
        again = fidelity(reference, prec.outputs(open(r.path, "rb").read(), inputs.fidelity))
        assert r.fidelity_inputs == 16 and r.fidelity_source == "random"
        assert r.fidelity_cosine == pytest.approx(again.cosine) and r.fidelity_top1 == pytest.approx(again.top1)
        assert r.fidelity_top5 == pytest.approx(again.top5) and r.fidelity_sqnr_db == pytest.approx(again.sqnr_db)
    # FP16 rounds, INT8 quantizes: the first keeps far more of the function
    assert results["fp16"].fidelity_cosine > 0.9999 > results["int8"].fidelity_cosine > 0.5
    assert results["fp16"].fidelity_sqnr_db > results["int8"].fidelity_sqnr_db + 20
    assert results["int8"].calibration == "random" and results["int8"].calibration_size == 32
    assert results["int8-dynamic"].calibration is None  # dynamic quantization calibrates nothing
    assert results["fp32"].fidelity_cosine is None  # its check is parity with PyTorch


def test_calibration_and_fidelity_inputs_never_overlap():
    inputs = make_inputs("random", family=None, resolution=32, batch=1, calibration_size=8, fidelity_inputs=8, seed=0)
    calibration = {feed.tobytes() for feed in inputs.calibration}
    assert len(inputs.calibration) == 8 and not calibration & {feed.tobytes() for feed in inputs.fidelity}


def test_existing_variants_are_reused_and_other_settings_refused(mobileone):
    folder, results = mobileone
    again = export_onnx("mobileone-s0", opset=13, resolution=RES, output_dir=folder, precision="int8")
    assert again.skipped and again.sha256 == results["int8"].sha256
    with pytest.raises(UserInputError, match="calibration method 'minmax', asked 'entropy'"):
        export_onnx("mobileone-s0", opset=13, resolution=RES, output_dir=folder, precision="int8",
                    calibration_method="entropy")  # fmt: skip


def test_bench_rows_carry_precision_and_fidelity(mobileone):
    _, results = mobileone
    paths = [results[p].path for p in ("fp32", "int8")]
    rows = mbbench.benchmark(paths, threads=1, rounds=2, warmup=0, isolate=False).set_index("file")
    assert rows.loc[paths[0], "precision"] == "fp32" and rows.loc[paths[1], "precision"] == "int8"
    assert rows.loc[paths[1], "fidelity_cosine"] == pytest.approx(results["int8"].fidelity_cosine)
    assert rows.loc[paths[1], "fidelity_top1"] == pytest.approx(results["int8"].fidelity_top1)


def test_min_cosine_refuses_and_writes_nothing(tmp_path):
    with pytest.raises(FidelityError, match="below --min-cosine 0.9999"):
        export_precisions("mobileone-s0", ["fp32", "int8"], resolution=RES, output_dir=tmp_path, min_cosine=0.9999,
                          fidelity_inputs=8)  # fmt: skip
    assert list(tmp_path.iterdir()) == []  # not even the FP32 file, which passed


def test_cli_min_cosine_is_one_error_line(tmp_path):
    result = invoke("export", "mobileone-s0", "--resolution", str(RES), "--precision", "int8", "--min-cosine", "0.9999",
                    "--fidelity-inputs", "8", "--models-dir", str(tmp_path))  # fmt: skip
    assert result.exit_code == 1 and len(error_lines(result)) == 1, result.output
    assert "below --min-cosine" in error_lines(result)[0] and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_cli_flags_low_fidelity_in_the_summary(tmp_path):
    result = invoke("export", "mobileone-s0", "--resolution", str(RES), "--precision", "fp32,int8",
                    "--fidelity-inputs", "8", "--models-dir", str(tmp_path))  # fmt: skip
    assert result.exit_code == 0, result.output
    int8 = json.loads((tmp_path / "mobileone-s0-64-opset17-int8.json").read_text())
    # at 64x64 the random network's INT8 cosine is below the 0.99 flag (MobileOne-S0 at 224: about 0.995)
    assert int8["fidelity_cosine"] < 0.99
    assert f"mobileone-s0 int8: low fidelity, cosine {int8['fidelity_cosine']:.4f}" in result.output
    line = next(line for line in result.output.splitlines() if line.startswith("[1/1]"))
    assert "mobileone-s0-64-opset17.onnx" in line and "mobileone-s0-64-opset17-int8.onnx" in line and "!" in line


@pytest.mark.slow
def test_mobilevitv2_int8_quantizes_its_attention(tmp_path):
    result = export_onnx("mobilevitv2-050", resolution=RES, output_dir=tmp_path, precision="int8", fidelity_inputs=8)
    assert result.path.endswith("mobilevitv2-050-64-opset17-pixel-int8.onnx")
    graph = onnx.load(result.path).graph
    producers = {out: node.op_type for node in graph.node for out in node.output}
    matmul_inputs = [producers.get(name) for node in graph.node if node.op_type == "MatMul" for name in node.input]
    assert "DequantizeLinear" in matmul_inputs or ops(result.path)["DequantizeLinear"] > 100
    assert -1 <= result.fidelity_cosine <= 1 and 0 <= result.fidelity_top1 <= 1


def optimized_ops(path, folder) -> Counter:
    """The op types ONNX Runtime runs after its graph optimizations (QDQ groups fused into QLinear* kernels)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(folder / "optimized.onnx")
    ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return ops(folder / "optimized.onnx")


@pytest.mark.slow
def test_keep_float_leaves_those_ops_unquantized(tmp_path):
    plain = export_onnx("mobilevit-xxs", resolution=RES, output_dir=tmp_path / "a", precision="int8", fidelity_inputs=8)
    kept = export_onnx("mobilevit-xxs", resolution=RES, output_dir=tmp_path / "b", precision="int8",
                       keep_float="MatMul,Softmax", fidelity_inputs=8)  # fmt: skip
    before, after = optimized_ops(plain.path, tmp_path), optimized_ops(kept.path, tmp_path)
    assert before["QLinearMatMul"] > 0 and before["QLinearSoftmax"] > 0
    # kept: no longer quantized ops (a MatMul fed by dequantized neighbours may still multiply their integers,
    # MatMulIntegerToFloat, but its output stays float), while the convolutions stay quantized
    assert after["QLinearMatMul"] == after["QLinearSoftmax"] == 0 and after["Softmax"] > 0
    assert after["QLinearConv"] == before["QLinearConv"] > 0
    assert kept.keep_float == ["MatMul", "Softmax"] and plain.keep_float == []


def test_int8_below_opset_13_is_refused_with_the_reason(tmp_path):
    with pytest.raises(PrecisionError, match="needs opset 13 or newer"):
        export_onnx("mobileone-s0", opset=12, resolution=RES, output_dir=tmp_path, precision="int8")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "options, message",
    [
        ({"precision": "int4"}, "unknown precision 'int4'"),
        ({"precision": "fp32,int8"}, "give one precision"),
        ({"precision": "int8", "calibration_size": 0}, "calibration size 0 is outside"),
        ({"precision": "int8", "fidelity_inputs": 0}, "fidelity inputs 0 is outside"),
        ({"precision": "int8", "min_cosine": 2.0}, "min cosine must be a number from -1 to 1"),
        ({"precision": "int8", "calibration_method": "kl"}, "unknown calibration method"),
        ({"precision": "int8", "keep_float": "softmax"}, "not an ONNX op type"),
        ({"precision": "int8", "opset": 12}, "needs opset 13 or newer"),
        ({"precision": "int8", "keep_float": "Softmx"}, "Softmx is not an ONNX op type"),
        ({"precision": "int8", "calibration": "no/such/folder"}, "does not exist"),
    ],
)
def test_bad_precision_options_are_refused_before_writing(tmp_path, options, message):
    with pytest.raises(UserInputError, match=message):
        export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path / "out", **options)
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def _images(folder, count):
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 256, (48 + i, 80, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_calibration_from_a_folder_of_images(tmp_path):
    images = _images(tmp_path / "images", 12)
    result = export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path / "models", precision="int8",
                         calibration=images, calibration_size=8, fidelity_inputs=64)  # fmt: skip
    assert result.calibration == f"images:{images}" == result.fidelity_source
    assert result.fidelity_inputs == 4  # the images calibration did not see
    with pytest.raises(UserInputError, match="holds 12 images"):
        export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path / "more", precision="int8",
                    calibration=images, calibration_size=12)  # fmt: skip


def test_a_fifo_named_like_an_image_is_refused_not_skipped(tmp_path):
    # issue 20: reading a FIFO would hang; skipping it without a word hid it
    images = _images(tmp_path / "images", 6)
    os.mkfifo(images / "stuck.jpg")
    with pytest.raises(UserInputError, match=r"'stuck.jpg' is a FIFO, not an image file; remove it"):
        export_onnx("mobileone-s0", resolution=RES, output_dir=tmp_path / "models", precision="int8",
                    calibration=images, calibration_size=2)  # fmt: skip
    assert not (tmp_path / "models").exists() or not list((tmp_path / "models").iterdir())


def test_images_are_prepared_as_each_family_was_trained(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("RGB", (300, 200), (51, 102, 204)).save(path)
    pixel = np.array([51, 102, 204], np.float32) / 255
    one = load_image(path, 64, PREPROCESSING["mobileone"])  # ImageNet mean/std
    vit = load_image(path, 64, PREPROCESSING["mobilevitv2"])  # [0, 1], no normalization (cvnets)
    assert one.shape == vit.shape == (3, 64, 64)
    np.testing.assert_allclose(vit[:, 32, 32], pixel, atol=1e-6)
    np.testing.assert_allclose(one[:, 32, 32], (pixel - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225], atol=1e-5)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UserInputError, match="cannot read image"):
        load_image(tmp_path / "broken.jpg", 64, PREPROCESSING["mobileone"])


def test_fidelity_figures():
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((4, 10))
    same = fidelity(ref, ref.copy())
    assert same.cosine == pytest.approx(1) and same.sqnr_db == float("inf") and same.top1 == same.top5 == 1
    flipped = fidelity(ref, -ref)
    assert flipped.cosine == pytest.approx(-1) and flipped.top1 == 0
    noisy = fidelity(ref, ref + 0.1 * ref)  # error power = 1% of the signal's: 20 dB
    assert noisy.sqnr_db == pytest.approx(20) and noisy.max_abs == pytest.approx(0.1 * np.abs(ref).max())
    order = np.argsort(-ref, axis=1)
    moved = ref.copy()
    for row, top in zip(moved, order):
        row[top[0]], row[top[5]] = row[top[5]], row[top[0]]  # swap 1st and 6th: 4 of the top-5 stay
    assert fidelity(ref, moved).top5 == pytest.approx(0.8) and fidelity(ref, moved).top1 == 0


def test_blocking_op_is_read_from_the_tools_messages():
    assert prec.blocking_op("Could not find an implementation for ConvInteger(10) node with name 'x'") == "ConvInteger"
    assert prec.blocking_op("Bad node spec for node. Name: a OpType: DequantizeLinear") == "DequantizeLinear"
    assert prec.blocking_op("something else") is None


def test_blocks_come_from_module_paths():
    assert prec.node_block("/stage2/stage2.3/reparam_conv/Conv") == "stage2.3"
    assert prec.node_block("/layer_3/layer_3.1/global_rep/global_rep.0/Add") == "layer_3.1"
    assert prec.node_block("/classifier/Gemm") == "classifier"
    assert prec.node_block("Reshape_22") is None
