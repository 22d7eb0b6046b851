"""ncnn (``pip install 'mbbench[ncnn]'``): the ``.ncnn.param``/``.ncnn.bin`` pair ``pnnx`` makes from the export.

pnnx exits 0 even when it leaves PyTorch-level layers (``Tensor.reshape``, ``torch.unbind``,
``nn.InstanceNorm1d``, ``pnnx.Expression``) in the ncnn graph, which ncnn then cannot load, or, worse, loads and
computes something else: a conversion counts only when every layer of the ``.param`` is one ncnn knows
(``ncnn.layer_to_index``), ncnn loads both files, and :mod:`mbbench.runtimes.artifacts` finds the result equal to
the export's. A refused model is said as ``not supported by ncnn: <layers>``.

ncnn's blobs have no batch dimension and pnnx renames them (``in0``, ``out0``): the session reads the input's C, H, W
from the ``Input`` layer and drops the batch of the NCHW input in ``prepare``. fp32 is pinned (ncnn defaults to fp16
storage and arithmetic where the CPU has it, and to bf16 storage), and its OpenMP threads' spin-wait after a run is
``blocktime`` ms (ncnn's default 20; ``OMP_WAIT_POLICY=ACTIVE`` would make idle threads spin for good). A run makes a
fresh extractor, as ncnn is used: an extractor keeps every blob it computed, so a second extract would cost nothing.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mbbench.runtimes._base import InputSpec, ModelRunError, OptionSpec, Runtime, Session, UnsupportedModel

PARAM_MAGIC = "7767517"


def read_param(path: str | Path) -> dict[str, Any]:
    """An ncnn ``.param`` (text: the magic, ``layers blobs``, then one layer a line): its layer types, the input blob
    with its C, H, W (from the ``Input`` layer's 0=w 1=h 2=c) and the output blob (produced, never consumed)."""
    lines = Path(path).read_text(errors="replace").splitlines()
    if not lines or lines[0].strip() != PARAM_MAGIC:
        raise ModelRunError(f"{Path(path).name} is not an ncnn param file")
    layers, produced, consumed, inputs = [], [], set(), []
    for line in lines[2:]:
        fields = line.split()
        if len(fields) < 4:
            continue
        kind, n_in, n_out = fields[0], int(fields[2]), int(fields[3])
        bottoms, tops = fields[4:4 + n_in], fields[4 + n_in:4 + n_in + n_out]
        layers.append(kind)
        consumed.update(bottoms)
        produced.extend(tops)
        if kind == "Input":
            params = dict(p.split("=", 1) for p in fields[4 + n_in + n_out:] if "=" in p)
            chw = tuple(int(params.get(k, 0)) for k in ("2", "1", "0"))
            inputs.append((tops[0], chw))
    return {"layers": layers, "inputs": inputs, "outputs": [b for b in produced if b not in consumed]}


def _ncnn():
    import ncnn

    return ncnn


class NcnnSession(Session):
    def __init__(self, net, info: dict[str, Any], blocktime: int):
        self._net, self._blocktime = net, blocktime
        (self._in, chw), self._out = info["inputs"][0], info["outputs"][0]
        # pnnx writes no size into the Input layer: the converter's sidecar has the export's; else --input-shape
        shape = info.get("shape") or (1, *(d if d > 0 else None for d in chw))
        self.inputs = [InputSpec(self._in, tuple(shape), np.dtype(np.float32))]

    def prepare(self, feed: Mapping[str, np.ndarray]) -> None:
        ncnn = _ncnn()
        (value,) = feed.values()
        # ncnn blobs are C, H, W: the batch goes here, and the copy into an ncnn Mat, outside the timed region
        data = ncnn.Mat(np.ascontiguousarray(value[0], dtype=np.float32)).clone()
        net, name_in, name_out = self._net, self._in, self._out

        def run():
            with net.create_extractor() as extractor:
                extractor.input(name_in, data)
                return extractor.extract(name_out)[1]

        self.run = run  # type: ignore[method-assign]

    def run(self) -> None:  # replaced by prepare()
        raise ModelRunError("ncnn: prepare() was not called")

    def outputs(self) -> list[np.ndarray]:
        return [np.array(self.run(), copy=True)[None, ...]]  # the batch ncnn dropped, back

    def applied(self) -> dict[str, Any]:
        opt = self._net.opt
        fp16 = opt.use_fp16_storage or opt.use_fp16_packed or opt.use_fp16_arithmetic
        return {"threads": int(opt.num_threads),
                "precision": "fp16" if fp16 else ("bf16 storage" if opt.use_bf16_storage else "fp32"),
                "blocktime_ms": self._blocktime, "packing_layout": bool(opt.use_packing_layout)}

    def close(self) -> None:
        self._net = None


class Ncnn(Runtime):
    name = "ncnn"
    artifact = "ncnn param + bin"
    suffix = ".param"
    package = "ncnn"
    extra = "ncnn"
    options = {
        "precision": OptionSpec("fp32", ("fp32", "fp16"), "fp32 pins every fp16/bf16 option off; fp16 is ncnn's own"),
        "blocktime": OptionSpec("20", (), "ms an OpenMP thread spin-waits after a run (ncnn's default 20)"),
    }
    converter = "pnnx (ONNX -> ncnn)"

    def open(self, path: str, threads: int, options: Mapping[str, str]) -> Session:
        ncnn = _ncnn()
        info = read_param(path)
        info["shape"] = _sidecar_shape(Path(path))
        foreign = sorted({kind for kind in info["layers"] if ncnn.layer_to_index(kind) < 0})
        if foreign:
            raise ModelRunError(f"not supported by ncnn: {', '.join(foreign)}")
        if len(info["inputs"]) != 1 or len(info["outputs"]) != 1:
            raise ModelRunError(f"{Path(path).name}: bench runs ncnn graphs with one input and one output")
        net = ncnn.Net()
        opt = net.opt  # set before load_param: ncnn plans the layers by it
        opt.num_threads = threads
        opt.use_vulkan_compute = False
        if (options.get("precision") or "fp32") == "fp32":
            opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = False
            opt.use_bf16_storage = opt.use_bf16_packed = False
        blocktime = int(options.get("blocktime") or 20)
        opt.openmp_blocktime = blocktime
        weights = Path(path).with_suffix(".bin")
        if net.load_param(str(path)) != 0 or net.load_model(str(weights)) != 0:
            raise ModelRunError(f"ncnn cannot load {Path(path).name} with {weights.name}")
        return NcnnSession(net, info, blocktime)

    def convert(self, source: Path, workdir: Path) -> list[Path]:
        """pnnx: ``source`` (ONNX) -> ``workdir/model.ncnn.param`` + ``.bin``; refused when a layer is not ncnn's."""
        import pnnx

        shape = _input_shape(source)
        param, weights = workdir / "model.ncnn.param", workdir / "model.ncnn.bin"
        with tempfile.TemporaryDirectory(prefix="mbbench-pnnx-") as scratch:
            side = Path(scratch)
            # pnnx writes its side files (pnnx graph, python scripts, a re-simplified onnx) beside its input
            staged = side / "source.onnx"
            shutil.copyfile(source, staged)
            command = [pnnx.EXEC_PATH, str(staged), f"inputshape=[{','.join(map(str, shape))}]", "fp16=0",
                       f"ncnnparam={param}", f"ncnnbin={weights}", f"ncnnpy={side / 'ncnn.py'}",
                       f"pnnxparam={side / 'pnnx.param'}", f"pnnxbin={side / 'pnnx.bin'}",
                       f"pnnxpy={side / 'pnnx.py'}", f"pnnxonnx={side / 'pnnx.onnx'}"]  # fmt: skip
            done = subprocess.run(command, cwd=side, capture_output=True, text=True, timeout=900)
        if done.returncode != 0 or not param.is_file() or not weights.is_file():
            tail = " ".join((done.stdout + done.stderr).strip().splitlines()[-2:])[:200]
            raise UnsupportedModel(f"pnnx could not convert it (exit status {done.returncode}): {tail}")
        ncnn = _ncnn()
        foreign = sorted({kind for kind in read_param(param)["layers"] if ncnn.layer_to_index(kind) < 0})
        if foreign:
            raise UnsupportedModel(f"not supported by ncnn: {', '.join(foreign)} (pnnx left these layers)")
        param.with_suffix(".json").write_text(json.dumps({"input_shape": shape}) + "\n")
        return [param, weights, param.with_suffix(".json")]

    def converter_version(self) -> str:
        import pnnx

        return f"ncnn {self.check_installed()}, pnnx {pnnx.__version__}"


def _sidecar_shape(param: Path) -> tuple[int, ...] | None:
    """The export's input shape that :meth:`Ncnn.convert` wrote beside the ``.param`` (ncnn's graph has none)."""
    try:
        shape = json.loads(param.with_suffix(".json").read_text()[:4096])["input_shape"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    ok = isinstance(shape, list) and 1 <= len(shape) <= 8 and all(type(d) is int and 0 < d < 1 << 20 for d in shape)
    return tuple(shape) if ok else None


def _input_shape(source: Path) -> list[int]:
    import onnx

    model = onnx.load(str(source), load_external_data=False)
    initializers = {i.name for i in model.graph.initializer}
    (graph_input,) = [i for i in model.graph.input if i.name not in initializers]
    return [d.dim_value if d.dim_value > 0 else 1 for d in graph_input.type.tensor_type.shape.dim]


RUNTIME = Ncnn()
