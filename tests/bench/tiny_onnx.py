"""Tiny ONNX models built with onnx.helper, so bench tests need neither torch nor an export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# ORT 1.32 reads IR 8 / opset 13 everywhere; onnx's newest defaults can be ahead of the runtime
IR_VERSION = 8
OPSET = 13


def _save(graph: onnx.GraphProto, path: Path, opset: int = OPSET, producer: str = "hand-made") -> Path:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name=producer)
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def conv_relu(path: Path, size: int = 16, opset: int = OPSET) -> Path:
    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["out"])],
        "conv_relu",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4, size, size])],
        [weight],
    )
    return _save(graph, path, opset)


def matmul_dynamic(path: Path) -> Path:
    """x: [batch, 8] (symbolic batch) @ W[8, 4]."""
    weight = numpy_helper.from_array(np.ones((8, 4), dtype=np.float32), "w")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        "matmul_dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        [weight],
    )
    return _save(graph, path)


def add_two(path: Path) -> Path:
    """Two inputs, one with an unnamed dynamic dimension (None) and one int64 input cast to float."""
    graph = helper.make_graph(
        [helper.make_node("Cast", ["b"], ["bf"], to=TensorProto.FLOAT), helper.make_node("Add", ["a", "bf"], ["y"])],
        "add_two",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 3]),
            helper.make_tensor_value_info("b", TensorProto.INT64, [1, 3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
    )
    return _save(graph, path)


def broken(path: Path) -> Path:
    path.write_bytes(b"this is not an onnx model\n")
    return path


def fails_at_run(path: Path) -> Path:
    """Loads fine, fails in session.run: Reshape to a shape that does not hold the input's elements."""
    shape = numpy_helper.from_array(np.array([5, 5], dtype=np.int64), "shape")
    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"])],
        "bad_reshape",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 5])],
        [shape],
    )
    return _save(graph, path)


def write_manifest(onnx_path: Path, **facts) -> Path:
    manifest = {
        "model": "mobileone-s0",
        "family": "mobileone",
        "resolution": 16,
        "batch": 1,
        "opset": OPSET,
        "exporter": "torch.onnx.export(dynamo=False)",
        "fold": None,
        "reparameterized": True,
        "params": 1234,
        "macs": 56789,
        "mbbench_version": "0.1.0",
        **facts,
    }
    path = onnx_path.with_suffix(".json")
    path.write_text(json.dumps(manifest))
    return path


