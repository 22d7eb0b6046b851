"""The two torch.onnx exporters behind one signature, with their torch 2.13 quirks handled.

- TorchScript (``dynamo=False``): honours opsets up to 20 and writes 21-23 with a warning (the ops it emits
  exist unchanged there). It cannot translate ``aten::col2im`` (``F.fold``): below 18 ONNX lacks ``Col2Im``,
  and at 18 it fails with a TypeError when the output size is traced from the input shape.
- dynamo (``dynamo=True``): translates ``F.fold`` to ``Col2Im``, but asked for an opset below 18 it silently
  writes 18 (a log line is the only sign). We always check what was written (see :mod:`.opset`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings

import onnx
import torch
from torch import nn

EXPORTERS = ("torchscript", "dynamo")
INPUT_NAME = "input"
OUTPUT_NAME = "logits"


@contextlib.contextmanager
def _quiet():
    """Silence the exporters' deprecation warnings, progress prints and registration logs."""
    loggers = [logging.getLogger(name) for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def export_torchscript(model: nn.Module, example: torch.Tensor, opset: int, dynamic_batch: bool) -> onnx.ModelProto:
    buffer = io.BytesIO()
    axes = {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}} if dynamic_batch else None
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes=axes,
            do_constant_folding=True,
        )
    return onnx.load_from_string(buffer.getvalue())


def export_dynamo(model: nn.Module, example: torch.Tensor, opset: int, dynamic_batch: bool) -> onnx.ModelProto:
    dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=4096)},) if dynamic_batch else None
    with _quiet(), torch.no_grad():
        program = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=dynamic_shapes,
            optimize=True,
            external_data=False,
            verbose=False,
        )
    return program.model_proto


def run_exporter(
    exporter: str, model: nn.Module, example: torch.Tensor, opset: int, dynamic_batch: bool
) -> onnx.ModelProto:
    if exporter == "torchscript":
        return export_torchscript(model, example, opset, dynamic_batch)
    if exporter == "dynamo":
        return export_dynamo(model, example, opset, dynamic_batch)
    raise ValueError(f"unknown exporter {exporter!r}")
