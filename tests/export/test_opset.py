"""The opset promise on hand-built graphs: an op newer than the declared opset is found wherever it is (the main
graph, an If branch, a Loop body at any depth, a model-local function), and the error names it and its opset."""

import onnx
import pytest
from onnx import TensorProto, helper

from mbbench.export.opset import OpsetError, ops_newer_than, verify_opset

Y_SHAPE = ["n", "c", "h", "w"]  # symbolic: the checker needs a shape, the opset check looks only at ops


def _col2im_node(name="c2i"):
    return helper.make_node("Col2Im", ["x", "image_shape", "block_shape"], ["y"], name=name)


def _model(nodes, opset=17, functions=()):
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, Y_SHAPE)],
        initializer=[helper.make_tensor("image_shape", TensorProto.INT64, [2], [2, 2]),
                     helper.make_tensor("block_shape", TensorProto.INT64, [2], [1, 1])],
    )  # fmt: skip
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid("local", 1)],
        functions=list(functions),
    )  # fmt: skip


def _branch(nodes, name):
    return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info("y", TensorProto.FLOAT, Y_SHAPE)])


def _if(then_nodes, else_nodes=()):
    relu = [helper.make_node("Relu", ["x"], ["y"])]
    return helper.make_node(
        "If", ["cond"], ["y"], then_branch=_branch(then_nodes, "then"), else_branch=_branch(list(else_nodes) or relu, "else")
    )


def _loop(body_nodes):
    body = helper.make_graph(
        body_nodes, "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, Y_SHAPE)],
    )  # fmt: skip
    return helper.make_node("Loop", ["", "cond"], ["y"], body=body)


def test_col2im_in_the_main_graph():
    model = _model([_col2im_node()])
    assert ops_newer_than(model, 17) == {"Col2Im": 18}
    with pytest.raises(OpsetError) as info:
        verify_opset(model, 17)
    assert str(info.value) == "the graph uses ops that opset 17 does not have: Col2Im (opset 18)"


def test_col2im_in_an_if_branch():
    model = _model([_if([_col2im_node()])])
    with pytest.raises(OpsetError) as info:
        verify_opset(model, 17)
    assert str(info.value) == "the graph uses ops that opset 17 does not have: Col2Im (opset 18)"


def test_newer_op_in_a_loop_body_inside_an_if_else_branch():
    gelu = helper.make_node("Gelu", ["x"], ["y"])  # opset 20
    model = _model([_if([helper.make_node("Relu", ["x"], ["y"])], [_loop([gelu])])])
    with pytest.raises(OpsetError) as info:
        verify_opset(model, 17)
    assert str(info.value) == "the graph uses ops that opset 17 does not have: Gelu (opset 20)"


def test_every_newer_op_is_named_with_its_first_opset():
    gelu = helper.make_node("Gelu", ["x"], ["y"])
    model = _model([_col2im_node(), _loop([gelu])])
    with pytest.raises(OpsetError) as info:
        verify_opset(model, 17)
    assert str(info.value) == "the graph uses ops that opset 17 does not have: Col2Im (opset 18), Gelu (opset 20)"


def test_newer_op_inside_a_model_local_function():
    function = helper.make_function(
        "local", "Fold", ["x", "image_shape", "block_shape"], ["y"], [_col2im_node()],
        opset_imports=[helper.make_opsetid("", 17)],
    )  # fmt: skip
    call = helper.make_node("Fold", ["x", "image_shape", "block_shape"], ["y"], domain="local")
    model = _model([call], functions=[function])
    assert ops_newer_than(model, 17) == {"Col2Im": 18}


def test_the_same_graphs_at_the_op_s_opset_pass():
    gelu = helper.make_node("Gelu", ["x"], ["y"])
    verify_opset(_model([_col2im_node(), _loop([gelu])], opset=20), 20)
    assert ops_newer_than(_model([_if([_col2im_node()])], opset=18), 18) == {}


def test_declared_opset_must_be_the_asked_one():
    with pytest.raises(OpsetError, match="^the exporter wrote opset 18 instead of 17$"):
        verify_opset(_model([helper.make_node("Relu", ["x"], ["y"])], opset=18), 17)


def test_graphs_are_well_formed():
    # The cases above must be real ONNX, or the check could pass on graphs no exporter would write.
    onnx.checker.check_model(_model([_if([_col2im_node()])], opset=18))


# Added for the mutation run (scripts/mutation.py): each case below is a spelling of the promise the tests above
# did not yet exercise, so a broken branch of the walk or of the domain check went unseen.


def test_the_domain_may_be_spelled_ai_onnx():
    # "ai.onnx" is the standard domain's long name: declared that way, it is still the opset the file keeps to
    graph = helper.make_graph(
        [helper.make_node("Col2Im", ["x", "image_shape", "block_shape"], ["y"], domain="ai.onnx")], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, Y_SHAPE)],
        initializer=[helper.make_tensor("image_shape", TensorProto.INT64, [2], [2, 2]),
                     helper.make_tensor("block_shape", TensorProto.INT64, [2], [1, 1])],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("ai.onnx", 17)])
    with pytest.raises(OpsetError) as info:
        verify_opset(model, 17)
    assert str(info.value) == "the graph uses ops that opset 17 does not have: Col2Im (opset 18)"


def test_a_list_of_subgraphs_is_walked_too():
    # An attribute may hold several graphs (AttributeProto.GRAPHS); no standard op has one, a custom op can
    gelu = helper.make_node("Gelu", ["x"], ["y"])
    custom = helper.make_node("Switch", ["x"], ["y"], domain="local",
                              branches=[_branch([helper.make_node("Relu", ["x"], ["y"])], "a"), _branch([gelu], "b")])  # fmt: skip
    assert ops_newer_than(_model([custom]), 17) == {"Gelu": 20}


def test_subgraphs_inside_a_model_local_function_are_walked():
    gelu = helper.make_node("Gelu", ["x"], ["y"])
    switch = helper.make_node("Switch", ["x"], ["y"], domain="local", branches=[_branch([gelu], "a")])
    function = helper.make_function(
        "local", "Fold", ["x", "image_shape", "block_shape"], ["y"], [_if([_col2im_node()]), switch],
        opset_imports=[helper.make_opsetid("", 17)],
    )  # fmt: skip
    call = helper.make_node("Fold", ["x", "image_shape", "block_shape"], ["y"], domain="local")
    assert ops_newer_than(_model([call], functions=[function]), 17) == {"Col2Im": 18, "Gelu": 20}


def test_an_op_onnx_never_defined_is_reported_without_an_opset():
    # A misspelt or private op left in the standard domain is not "older than the opset": it is flagged,
    # and -1 stands for "no opset has it"
    model = _model([helper.make_node("Frobnicate", ["x"], ["y"])])
    assert ops_newer_than(model, 17) == {"Frobnicate": -1}
    with pytest.raises(OpsetError, match=r"Frobnicate \(opset -1\)$"):
        verify_opset(model, 17)
