"""Opsets: which ones mbbench can honour, and proof that a file keeps to the one asked for."""

from __future__ import annotations

from functools import lru_cache

import onnx
from onnx import defs

from mbbench.errors import MbbenchError
from mbbench.export.options import MAX_OPSET, MIN_OPSET, check_opset

COL2IM_OPSET = 18  # the first opset with Col2Im, which F.fold needs
DYNAMO_MIN_OPSET = 18  # below this the dynamo exporter silently writes 18


class OpsetError(MbbenchError):
    """An exported graph that does not keep to the asked opset."""


check_opset_request = check_opset  # the name the pipeline and the studies use
__all__ = ["MAX_OPSET", "MIN_OPSET", "COL2IM_OPSET", "DYNAMO_MIN_OPSET", "OpsetError", "check_opset_request",
           "default_opset", "first_opset", "ops_newer_than", "verify_opset"]  # fmt: skip


def default_opset(model: onnx.ModelProto) -> int | None:
    """The ``ai.onnx`` opset the file declares."""
    for entry in model.opset_import:
        if entry.domain in ("", "ai.onnx"):
            return entry.version
    return None


@lru_cache(maxsize=None)
def first_opset(op_type: str, domain: str = "") -> int | None:
    """The first ``ai.onnx`` opset that defines ``op_type`` (None if ONNX never did)."""
    versions = [s.since_version for s in defs.get_all_schemas_with_history() if s.name == op_type and s.domain == domain]
    return min(versions) if versions else None


def _iter_nodes(nodes):
    """``nodes`` and, depth first, the nodes of every subgraph they hold (If/Loop/Scan bodies)."""
    for node in nodes:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _iter_nodes(attr.g.node)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    yield from _iter_nodes(sub.node)


def _all_nodes(model: onnx.ModelProto):
    """Every node: the main graph, the bodies of If/Loop/Scan (at any depth) and model-local functions."""
    yield from _iter_nodes(model.graph.node)
    for function in model.functions:
        yield from _iter_nodes(function.node)


def ops_newer_than(model: onnx.ModelProto, opset: int) -> dict[str, int]:
    """``{op_type: first opset that has it}`` for every standard op in ``model`` that ``opset`` lacks."""
    newer = {}
    for node in _all_nodes(model):
        if node.domain not in ("", "ai.onnx") or node.op_type in newer:
            continue
        try:
            defs.get_schema(node.op_type, opset, "")
        except defs.SchemaError:
            newer[node.op_type] = first_opset(node.op_type) or -1
    return newer


def verify_opset(model: onnx.ModelProto, opset: int) -> None:
    """Raise :class:`OpsetError` unless the file declares ``opset`` and uses no op newer than it."""
    declared = default_opset(model)
    if declared != opset:
        raise OpsetError(f"the exporter wrote opset {declared} instead of {opset}")
    newer = ops_newer_than(model, opset)
    if newer:
        listed = ", ".join(f"{op} (opset {first})" for op, first in sorted(newer.items()))
        raise OpsetError(f"the graph uses ops that opset {opset} does not have: {listed}")
