"""A model as the kernels a runtime really executes, with the features a latency predictor reads.

A runtime does not run a graph's ops one by one: ONNX Runtime fuses a ``Conv`` and the ``Relu`` after it into one
``FusedConv`` kernel, a ``MatMul`` and its ``Transpose`` into ``FusedMatMul``, an x86 NCHWc ``Conv`` with the
residual ``Add`` after it; which fusions happen depends on the runtime, its version and the CPU. So the fusion
rules are not written here: they are read off the device's own profiles (:func:`patterns_from_profiles`: each
kernel's ``covers``, the original op types it stands for, as :mod:`mbbench.bench.attribution` maps them), and
:func:`kernels` groups a graph's ops by those rules, longest first, along producer-to-consumer chains.

Each kernel gets numeric features from the original graph's shapes (ONNX shape inference, standard ops only):
the input and output sizes, FLOPs, weights, and for a convolution its channels, kernel size, stride, groups and
output resolution, for a matrix product M, K and N. Nodes whose inputs are all constant (shape arithmetic) are
folded away at load by every runtime and cost nothing. Reading a model this way does not run it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mbbench.errors import UserInputError

#: kernel families, each with a regressor of its own
CONV, MATMUL, OTHER = "conv", "matmul", "other"
_MATMULS = {"MatMul", "Gemm", "FusedMatMul"}
#: op types of the "other" family the features name one by one (the rest share one flag)
OTHER_OPS = ("Add", "Mul", "Sub", "Div", "Relu", "Sigmoid", "HardSigmoid", "HardSwish", "Clip", "Softmax",
             "GlobalAveragePool", "AveragePool", "MaxPool", "ReduceMean", "Transpose", "Reshape", "Concat",
             "LayerNormalization", "InstanceNormalization", "BatchNormalization", "Erf", "Gelu", "Pow", "Sqrt",
             "Split", "Slice", "Gather", "Flatten", "Tanh", "Col2Im", "DepthToSpace", "Squeeze", "Unsqueeze")
#: op types no kernel runs for once shapes are known (views)
FREE_OPS = {"Identity", "Dropout", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Shape", "Constant"}


@dataclass(frozen=True)
class Kernel:
    """One kernel: the original nodes it covers (op types in chain order) and its features."""

    name: str
    ops: tuple[str, ...]
    family: str
    features: dict[str, float] = field(default_factory=dict, compare=False)
    #: the original nodes it covers, by name (what a profile's kernels are matched on)
    sources: tuple[str, ...] = ()

    @property
    def pattern(self) -> str:
        return "+".join(self.ops)


@dataclass(frozen=True)
class ModelKernels:
    path: str
    kernels: tuple[Kernel, ...]
    #: nodes folded at load (all inputs constant)
    folded: int
    macs: float


def patterns_from_profiles(profiles: Iterable[Any]) -> list[tuple[str, ...]]:
    """The fusion patterns a device's runtime showed: every multi-op ``covers`` of its profiles' kernels, most
    ops first (the order :func:`kernels` tries them in)."""
    found = {tuple(node.covers) for profile in profiles for node in profile.nodes if len(node.covers) > 1}
    return sorted(found, key=lambda p: (-len(p), p))


def kernels(path: str | Path, patterns: Sequence[Sequence[str]] = ()) -> ModelKernels:
    """The kernels of the ONNX file ``path`` under the fusion ``patterns`` (none: every op its own kernel)."""
    import onnx
    from onnx import numpy_helper, shape_inference

    try:
        model = onnx.load(str(path))
        inferred = shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # onnx raises many kinds for a file it cannot read
        raise UserInputError(f"cannot read {path} as an ONNX model: {str(exc).splitlines()[0][:160]}") from None
    graph = inferred.graph
    shapes: dict[str, tuple[int, ...]] = {}
    for info in [*graph.input, *graph.value_info, *graph.output]:
        dims = info.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims):
            shapes[info.name] = tuple(int(d.dim_value) for d in dims)
    constants = {init.name for init in graph.initializer}
    for init in graph.initializer:
        shapes.setdefault(init.name, tuple(numpy_helper.to_array(init).shape))
    nodes = list(graph.node)
    dynamic = {i.name for i in graph.input if i.name not in constants}
    live = []
    folded = 0
    for node in nodes:
        if any(name in dynamic for name in node.input if name):
            dynamic.update(node.output)
            live.append(node)
        else:
            folded += 1
            constants.update(node.output)
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(live):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    ordered = sorted((tuple(p) for p in patterns if p), key=lambda p: (-len(p), p))
    taken: set[int] = set()
    out: list[Kernel] = []
    macs = 0.0
    for index, node in enumerate(live):
        if index in taken:
            continue
        chain = [index]
        for pattern in ordered:
            if pattern[0] != node.op_type or len(pattern) == 1:
                continue
            match = _follow(live, consumers, index, pattern, taken)
            if match:
                chain = match
                break
        taken.update(chain)
        members = [live[i] for i in chain]
        if len(members) == 1 and node.op_type in FREE_OPS:
            continue
        kernel = _kernel(members, shapes, constants)
        macs += kernel.features.get("macs", 0.0)
        out.append(kernel)
    return ModelKernels(str(path), tuple(out), folded, macs)


def _follow(live, consumers, start: int, pattern: Sequence[str], taken: set[int]) -> list[int] | None:
    """The chain of nodes from ``start`` whose op types are ``pattern``, each the only reader of the one before."""
    chain = [start]
    for op in pattern[1:]:
        previous = live[chain[-1]]
        readers = [c for out in previous.output for c in consumers.get(out, ())]
        if len(readers) != 1 or readers[0] in taken or live[readers[0]].op_type != op:
            return None
        chain.append(readers[0])
    return chain


def _size(shape: Sequence[int] | None) -> float:
    return float(math.prod(shape)) if shape else 0.0


def _kernel(members, shapes, constants) -> Kernel:
    head = members[0]
    ops = tuple(n.op_type for n in members)
    data_inputs = [name for name in head.input if name and name not in constants]
    x = shapes.get(data_inputs[0]) if data_inputs else None
    y = shapes.get(members[-1].output[0]) if members[-1].output else None
    weights = sum(_size(shapes.get(name)) for n in members for name in n.input if name in constants)
    features: dict[str, float] = {"in_elems": _size(x), "out_elems": _size(y), "weights": weights,
                                  "fused_ops": float(len(members) - 1),
                                  "fused_add": float("Add" in ops[1:]),
                                  "fused_act": float(any(o in ("Relu", "Clip", "HardSigmoid", "HardSwish", "Sigmoid",
                                                               "Mul", "Tanh", "Erf") for o in ops[1:]))}
    if head.op_type == "Conv":
        family = CONV
        attrs = {a.name: a for a in head.attribute}
        w = shapes.get(head.input[1]) or (0, 0, 1, 1)
        groups = int(attrs["group"].i) if "group" in attrs else 1
        strides = list(attrs["strides"].ints) if "strides" in attrs else [1]
        cout, cin_per_group = (w[0], w[1]) if len(w) >= 2 else (0, 0)
        k = w[2] if len(w) >= 3 else 1
        hout, wout = (y[2], y[3]) if y is not None and len(y) == 4 else (0, 0)
        cin = x[1] if x is not None and len(x) >= 2 else cin_per_group * groups
        macs = float(cout * hout * wout * cin_per_group * k * k)
        features.update(cin=float(cin), cout=float(cout), k=float(k), stride=float(strides[0]), groups=float(groups),
                        depthwise=float(groups > 1 and groups == cin), hout=float(hout), wout=float(wout), macs=macs)
    elif head.op_type in _MATMULS:
        family = MATMUL
        # from the op's own operands, whichever of them is the constant: A's contraction size, the output's shape
        a = shapes.get(head.input[0]) or ()
        attrs = {at.name: at for at in head.attribute}
        trans_a = head.op_type == "Gemm" and "transA" in attrs and attrs["transA"].i == 1
        kdim = float(a[-2] if trans_a and len(a) >= 2 else (a[-1] if a else 0))
        out = y or ()
        m = float(out[-2]) if len(out) >= 2 else 1.0
        n = float(out[-1]) if out else 0.0
        batch = _size(out[:-2]) if len(out) > 2 else 1.0
        features.update(m=m, kdim=kdim, n=n, batch=batch, macs=_size(out) * kdim,
                        constant_b=float(len(head.input) > 1 and head.input[1] in constants))
    else:
        family = OTHER
        for op in OTHER_OPS:
            features[f"op_{op}"] = float(head.op_type == op)
        features["op_unlisted"] = float(head.op_type not in OTHER_OPS)
        features["inputs"] = float(len(data_inputs))
        features["macs"] = 0.0
    return Kernel(head.name or ops[0], ops, family, features, tuple(n.name for n in members))
