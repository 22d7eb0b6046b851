"""Reading ONNX Runtime's profile: its JSON trace, the original and the optimized graph, and what each kernel
stands for (module path, original ops). Standard library only (numpy and onnxruntime are not needed here).

- :func:`read_trace` sums each node's ``<node>_kernel_time`` events inside the ``model_run`` events of the
  profiled rounds (the first ``skip`` runs, cold and warm-up, are dropped);
- :func:`read_graph` reads the top-level nodes of a serialized model straight from the protobuf wire format (as
  :mod:`mbbench.bench.modelfile` reads the opset), so a phone without the ``onnx`` package can do it;
- :func:`map_graphs` attributes every node of ORT's optimized graph (one kernel each) to the original nodes it
  covers: the node of the same name, the node whose name or output the kernel's name extends
  (``<node>/QuickGeluFusion/``, ``<output>_nchwc``), the original producers of the tensors it writes, the node
  whose input it now writes (an NCHWc ``Conv`` that adds the residual stands for the ``Add``), and the removed
  nodes that fed only those; what a layout conversion (``ReorderOutput``, or on arm64 the ``Transpose`` ORT puts
  after an ``NhwcFusedConv``) writes was computed by the kernel before it. arm64's layout transformer renames a
  convolution ``<node>_token_<n>``: it still stands for ``<node>``. Each original node is covered by at most one kernel; a removed node that none of these ties to one
  kernel (a ``Transpose`` ORT folded into two ``MatMul`` kernels) is counted as untraced;
- a block is the PyTorch module path the exporter wrote into the original node names
  (``/layer_3/layer_3.1/global_rep/global_rep.0/pre_norm_mha/pre_norm_mha.1/MatMul``, see :func:`module_path`)
  cut at a depth (:func:`block_name`). A node without a path (``Gemm_37``, named by the simplifier;
  ``ReorderOutput``, named by ORT) takes the path of the node whose output it reads, else of a node that reads
  its output. In a file without any module path (a foreign export) names are cut into levels at ``_ . : /``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mbbench.bench.modelfile import protobuf_fields as _message

#: Levels of the module path a block keeps: ``layer_3.1/global_rep`` (a stage's block and its part).
DEFAULT_DEPTH = 2
#: The block of nodes in the network's own ``forward``, outside any submodule (``/Flatten``).
ROOT_BLOCK = "(root)"
_KERNEL_SUFFIX = "_kernel_time"
#: Layout conversions ORT inserts around its NCHWc kernels: they move data and compute nothing of the model.
LAYOUT_OPS = frozenset({"ReorderInput", "ReorderOutput"})
#: kernels that take an original op's inputs in its order under another name (arm64 runs a chain of convolutions
#: as NhwcFusedConv kernels in NHWC, with no Transpose between them)
SAME_INPUTS = {"Conv": ("FusedConv", "NhwcConv", "NhwcFusedConv")}


# --- the graphs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GraphNode:
    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True)
class Graph:
    """The top-level nodes of an ONNX graph, in file (topological) order, and its non-constant inputs."""

    nodes: tuple[GraphNode, ...]
    inputs: frozenset[str] = frozenset()


def _text(value: memoryview) -> str:
    return bytes(value).decode("utf-8", "replace")


def read_graph(data: bytes) -> Graph:
    """The main graph of a serialized ModelProto (ModelProto.graph = 7; GraphProto: node = 1, initializer = 5,
    input = 11; NodeProto: input = 1, output = 2, name = 3, op_type = 4, domain = 7; TensorProto.name = 8;
    ValueInfoProto.name = 1). Raises ValueError when ``data`` is not one."""
    graph = None
    for number, wire, value in _message(memoryview(data)):
        if number == 7 and wire == 2:
            graph = value
    if graph is None:
        raise ValueError("no graph in the model")
    nodes, inputs, initializers = [], [], set()
    for number, wire, value in _message(graph):
        if wire != 2:
            continue
        if number == 1:
            parts: dict[str, Any] = {"inputs": [], "outputs": [], "name": "", "op_type": "", "domain": ""}
            for sub, sub_wire, sub_value in _message(value):
                if sub_wire != 2:
                    continue
                if sub == 1:
                    parts["inputs"].append(_text(sub_value))
                elif sub == 2:
                    parts["outputs"].append(_text(sub_value))
                elif sub == 3:
                    parts["name"] = _text(sub_value)
                elif sub == 4:
                    parts["op_type"] = _text(sub_value)
                elif sub == 7:
                    parts["domain"] = _text(sub_value)
            nodes.append(GraphNode(parts["name"], parts["op_type"], parts["domain"], tuple(parts["inputs"]),
                                   tuple(parts["outputs"])))
        elif number in (5, 11):
            key = 8 if number == 5 else 1
            for sub, sub_wire, sub_value in _message(value):
                if sub == key and sub_wire == 2:
                    (initializers.add if number == 5 else inputs.append)(_text(sub_value))
                    break
    return Graph(tuple(nodes), frozenset(i for i in inputs if i not in initializers))


# --- module paths and blocks --------------------------------------------------------------------------------

_FOREIGN_SEPARATORS = re.compile(r"[._:/]+")


def module_path(name: str) -> tuple[str, ...] | None:
    """The module path an exporter wrote into a node name, a container and its indexed child as one level.

    ``/layer_3/layer_3.1/global_rep/global_rep.0/attn/MatMul`` -> ``("layer_3.1", "global_rep.0", "attn")``;
    ``/Flatten`` -> ``()`` (the network's own forward); ``Gemm_37`` -> None (no path: named by a tool).
    """
    if "/" not in name:
        return None
    levels: list[str] = []
    for part in [p for p in name.split("/") if p][:-1]:  # the last part is the op (MatMul, Conv_1)
        if levels and part.startswith(levels[-1] + "."):
            levels[-1] = part
        else:
            levels.append(part)
    return tuple(levels)


def foreign_path(name: str) -> tuple[str, ...]:
    """Levels of a name without a module path (another exporter's ``resnetv17_stage1_conv0_fwd``): its parts
    at ``_ . : /``, the last one (the op or a counter) dropped."""
    parts = [p for p in _FOREIGN_SEPARATORS.split(name) if p]
    return tuple(parts[:-1])


def block_name(path: Sequence[str] | None, depth: int = DEFAULT_DEPTH) -> str:
    """The block of a module path at ``depth`` levels.

    The first level keeps its index (``layer_3.1``: which block of the stage); deeper levels drop theirs, so the
    repeated layers of one module add up (``global_rep.0``, ``global_rep.1`` -> ``global_rep``):
    ``("layer_3.1", "global_rep.0", "attn")`` -> ``layer_3.1/global_rep`` at depth 2, ``layer_3.1`` at depth 1.
    """
    levels = list(path or ())[:depth]
    if not levels:
        return ROOT_BLOCK
    return "/".join([levels[0]] + [level.split(".")[0] for level in levels[1:]])


def _neighbour_fill(graph: Graph, paths: list[tuple[str, ...] | None]) -> set[int]:
    """Give each node without a path the path of the node whose output it reads (else of a node that reads its
    output), until nothing changes; return the indices that were filled."""
    producer = {out: i for i, node in enumerate(graph.nodes) for out in node.outputs if out}
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(graph.nodes):
        for name in node.inputs:
            consumers.setdefault(name, []).append(i)
    filled: set[int] = set()
    changed = True
    while changed:
        changed = False
        for i, node in enumerate(graph.nodes):
            if paths[i] is not None:
                continue
            around = [producer[t] for t in node.inputs if t in producer]
            around += [c for t in node.outputs for c in consumers.get(t, ())]
            found = next((paths[j] for j in around if paths[j] is not None), None)
            if found is not None:
                paths[i] = found
                filled.add(i)
                changed = True
    return filled


def original_paths(graph: Graph) -> tuple[list[tuple[str, ...]], set[int]]:
    """Each original node's module path (see the module docstring) and the indices that took a neighbour's."""
    if any("/" in node.name for node in graph.nodes):
        paths: list[tuple[str, ...] | None] = [module_path(node.name) for node in graph.nodes]
        filled = _neighbour_fill(graph, paths)
        return [p if p is not None else () for p in paths], filled
    return [foreign_path(node.name) for node in graph.nodes], set()


# --- what each kernel of the optimized graph covers -----------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """What the optimized graph's node ``name`` stands for in the original graph."""

    path: tuple[str, ...]
    #: the original nodes it covers, by op type, in graph order (empty: ORT inserted it, e.g. ``ReorderInput``)
    covers: tuple[str, ...]
    #: True when the path came from a neighbour (no node it covers, or none of those, has a module path)
    inherited: bool
    #: the names of the original nodes it covers, in graph order (what mbbench predict learns a kernel from)
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class GraphMapping:
    nodes: dict[str, Attribution]
    #: original nodes with no dynamic input, gone from the optimized graph: folded into constants at load
    folded: int
    #: other original nodes gone from the optimized graph that no kernel could be traced to (Identity, ...)
    untraced: int
    original_nodes: int


def _anchor(name: str, by_name: Mapping[str, int], producer: Mapping[str, int]) -> int | None:
    """The original node a new node's name extends: ``<node>/Fusion/`` or ``<output>_nchwc`` (longest first)."""
    for i in range(len(name) - 1, 0, -1):
        if name[i] not in "/_":
            continue
        prefix, rest = name[:i], name[i:]
        if rest.startswith("_token"):
            # ORT's generated names (Squeeze_token_31) extend nothing, except a module-path node's own name that
            # arm64's NHWC layout transformer suffixes (/layer_1/conv/Conv -> /layer_1/conv/Conv_token_1)
            if "/" in prefix and prefix in by_name and re.fullmatch(r"_token_\d+", rest):
                return by_name[prefix]
            continue
        if prefix in by_name:
            return by_name[prefix]
        if rest[0] == "_" and prefix in producer:
            return producer[prefix]
    return None


def _computed_by(node: GraphNode, writer: Mapping[str, GraphNode], original: frozenset[str] = frozenset()) -> GraphNode:
    """The kernel that computed what ``node`` writes: ``node`` itself, or for a layout conversion ORT inserted
    (``ReorderOutput``; on arm64 a ``Transpose`` back from NHWC, a name of ORT's own that is not in ``original``)
    the kernel before it (an NCHWc ``Conv`` that also added the residual, an ``NhwcFusedConv``)."""
    seen = set()
    while ((node.op_type in LAYOUT_OPS or (node.op_type == "Transpose" and node.name not in original))
           and node.inputs and node.inputs[0] in writer and node.name not in seen):
        seen.add(node.name)
        node = writer[node.inputs[0]]
    return node


def map_graphs(original: Graph, optimized: Graph) -> GraphMapping:
    """Attribute every node of ORT's optimized graph to the original nodes it covers (see the module docstring)."""
    paths, filled = original_paths(original)
    nodes = original.nodes
    by_name: dict[str, int] = {}
    for i, node in enumerate(nodes):
        if node.name:
            by_name.setdefault(node.name, i)
    producer = {out: i for i, node in enumerate(nodes) for out in node.outputs if out}
    consumers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.inputs:
            consumers.setdefault(name, []).append(i)
    dynamic = set(original.inputs)
    is_dynamic = [False] * len(nodes)
    for i, node in enumerate(nodes):  # file order is topological (the ONNX checker requires it)
        if any(name in dynamic for name in node.inputs):
            is_dynamic[i] = True
            dynamic.update(node.outputs)
    kept_names = {node.name for node in optimized.nodes if node.name}
    removed = {i for i, node in enumerate(nodes) if not node.name or node.name not in kept_names}

    claimed: dict[int, str] = {}
    anchors: dict[str, list[int]] = {}
    named: dict[str, int] = {}
    for node in optimized.nodes:  # 1. the node of the same name, or the one whose name it extends
        index = by_name.get(node.name) if node.name in by_name else _anchor(node.name, by_name, producer)
        if index is not None:
            named[node.name] = index
            anchors.setdefault(node.name, []).append(index)
            if index in removed or nodes[index].name == node.name:  # a kept node stands for itself
                claimed.setdefault(index, node.name)
    writer = {out: node for node in optimized.nodes for out in node.outputs if out}
    names = frozenset(by_name)
    for node in optimized.nodes:  # 2. the original producers of the tensors it writes
        for out in node.outputs:
            index = producer.get(out)
            if index is not None:
                anchors.setdefault(node.name, []).append(index)
                if index in removed:
                    claimed.setdefault(index, _computed_by(node, writer, names).name)
    # 3. a kernel that stands for an original node of its own op type reads, at each input, what that node read:
    # the kernel writing that input covers the original node that wrote it (an NCHWc Conv that adds a residual
    # stands for the Add after it: the next Conv reads its output where it read the Add's)
    changed = True
    while changed:
        changed = False
        for node in optimized.nodes:
            index = named.get(node.name)
            if index is None or node.op_type not in (nodes[index].op_type,
                                                     *SAME_INPUTS.get(nodes[index].op_type, ())):
                continue
            for was, now in zip(nodes[index].inputs, node.inputs):
                source = producer.get(was)
                if (was != now and source is not None and source in removed and source not in claimed
                        and is_dynamic[source] and now in writer):
                    claimed[source] = _computed_by(writer[now], writer, names).name
                    changed = True
    changed = True
    while changed:  # 4. a removed node all of whose readers one kernel covers is part of that kernel
        changed = False
        for i in reversed(range(len(nodes))):
            if i in claimed or i not in removed or not is_dynamic[i]:
                continue
            readers = [c for out in nodes[i].outputs for c in consumers.get(out, ())]
            owners = {claimed.get(c) for c in readers}
            if readers and len(owners) == 1 and None not in owners:
                claimed[i] = owners.pop()
                changed = True

    covered: dict[str, list[int]] = {}
    for index, owner in sorted(claimed.items()):
        covered.setdefault(owner, []).append(index)
    opt_paths: list[tuple[str, ...] | None] = []
    inherited: list[bool] = []
    for node in optimized.nodes:
        sources = covered.get(node.name, []) + anchors.get(node.name, [])
        own = next((i for i in sources if i not in filled), None)
        chosen = own if own is not None else (sources[0] if sources else None)
        opt_paths.append(paths[chosen] if chosen is not None else None)
        inherited.append(chosen is None or chosen in filled)
    _neighbour_fill(optimized, opt_paths)
    mapping = {
        node.name: Attribution(
            path=opt_paths[k] if opt_paths[k] is not None else (),
            covers=tuple(nodes[i].op_type for i in covered.get(node.name, [])),
            inherited=inherited[k],
            sources=tuple(nodes[i].name for i in covered.get(node.name, [])),
        )
        for k, node in enumerate(optimized.nodes)
    }
    gone = removed - set(claimed)
    folded = sum(1 for i in gone if not is_dynamic[i])
    return GraphMapping(mapping, folded=folded, untraced=len(gone) - folded, original_nodes=len(nodes))


# --- the trace ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelTrace:
    """One node's kernel events over the profiled rounds (microseconds, as the trace holds them)."""

    node: str
    op_type: str
    provider: str
    total_us: float
    calls: int


@dataclass(frozen=True)
class TraceTimes:
    """The profiled rounds of a trace: per round ``model_run`` and executor time, and each kernel's total."""

    runs_us: tuple[float, ...]
    execute_us: tuple[float, ...]
    #: kernels in the order of their first event (execution order)
    kernels: tuple[KernelTrace, ...]
    session_us: float | None
    runs_seen: int


def read_trace(events: Sequence[Mapping[str, Any]], skip: int = 0) -> TraceTimes:
    """Read ORT's JSON trace (a list of Chrome trace events): drop the first ``skip`` runs (cold and warm-up)
    and sum each node's ``<node>_kernel_time`` events inside the remaining ``model_run`` events."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
                  key=lambda e: float(e["ts"]))
    kept = runs[skip:]
    starts = [float(e["ts"]) for e in kept]
    ends = [float(e["ts"]) + float(e["dur"]) for e in kept]

    def run_of(event: Mapping[str, Any]) -> int | None:
        ts = float(event["ts"])
        k = bisect_right(starts, ts) - 1
        return k if k >= 0 and ts <= ends[k] else None

    execute = [0.0] * len(kept)
    totals: dict[str, list[Any]] = {}
    session_us = None
    for event in events:
        cat, name = event.get("cat"), str(event.get("name", ""))
        if cat == "Session" and name == "session_initialization":
            session_us = float(event["dur"])
        elif cat == "Session" and name.endswith("::Execute"):
            k = run_of(event)
            if k is not None:
                execute[k] += float(event["dur"])
        elif cat == "Node" and name.endswith(_KERNEL_SUFFIX):
            if run_of(event) is None:
                continue
            args = event.get("args") or {}
            node = name[: -len(_KERNEL_SUFFIX)]
            entry = totals.setdefault(node, [str(args.get("op_name", "")), str(args.get("provider", "")), 0.0, 0])
            entry[2] += float(event["dur"])
            entry[3] += 1
    kernels = tuple(KernelTrace(node, op, provider, total, calls) for node, (op, provider, total, calls)
                    in totals.items())
    return TraceTimes(
        runs_us=tuple(ends[k] - starts[k] for k in range(len(kept))),
        execute_us=tuple(execute),
        kernels=kernels,
        session_us=session_us,
        runs_seen=len(runs),
    )
