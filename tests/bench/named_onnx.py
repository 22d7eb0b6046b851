"""A tiny ONNX graph whose node names are module paths, as the TorchScript exporter writes them (for profiling).

    /layer_1/conv/Conv -> /layer_1/act/Relu                    (ORT fuses these into one kernel on CPU)
    -> /layer_2/layer_2.0/conv/Conv -> /layer_2/layer_2.0/Add   (a 1x1 conv and its residual)
    -> Reshape_5                                                (no module path: named by a tool)
    -> /layer_3/layer_3.1/global_rep/global_rep.0/attn/{Transpose, MatMul, Softmax}
    -> /layer_3/layer_3.1/global_rep/global_rep.1/attn/MatMul
    -> /classifier/ReduceMean -> /Flatten                       (the network's own forward: the root block)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from tests.bench.tiny_onnx import IR_VERSION, OPSET

ATTN = "/layer_3/layer_3.1/global_rep/global_rep"


def named_graph(path: Path, size: int = 16, channels: int = 8) -> Path:
    rng = np.random.default_rng(0)

    def weight(name, shape):
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)

    tokens = size * size
    initializers = [
        weight("w1", (channels, 3, 3, 3)), weight("b1", (channels,)),
        weight("w2", (channels, channels, 1, 1)), weight("b2", (channels,)),
        numpy_helper.from_array(np.array([1, channels, tokens], dtype=np.int64), "shape"),
    ]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["image", "w1", "b1"], ["c1"], name="/layer_1/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/layer_1/act/Relu"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], name="/layer_2/layer_2.0/conv/Conv"),
        helper.make_node("Add", ["c2", "r1"], ["a2"], name="/layer_2/layer_2.0/Add"),
        helper.make_node("Reshape", ["a2", "shape"], ["t"], name="Reshape_5"),
        helper.make_node("Transpose", ["t"], ["tt"], name=f"{ATTN}.0/attn/Transpose", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["tt", "t"], ["s"], name=f"{ATTN}.0/attn/MatMul"),
        helper.make_node("Softmax", ["s"], ["p"], name=f"{ATTN}.0/attn/Softmax", axis=-1),
        helper.make_node("MatMul", ["p", "tt"], ["o"], name=f"{ATTN}.1/attn/MatMul"),
        helper.make_node("ReduceMean", ["o"], ["m"], name="/classifier/ReduceMean", axes=[1], keepdims=1),
        helper.make_node("Flatten", ["m"], ["logits"], name="/Flatten"),
    ]
    graph = helper.make_graph(
        nodes, "named",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, channels])],
        initializers,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hand-made")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
