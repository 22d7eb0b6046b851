"""Parameter and MAC counts, computed on the meta device so no memory or compute is spent on weights."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics are buffers and do not count)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, resolution: int | tuple[int, int], batch: int = 1) -> int:
    """Multiply-accumulates of one forward pass: convolutions, linear layers and attention matmuls.

    Counted with ``torch.utils.flop_counter`` (FLOPs / 2). Element-wise work (norms, activations, softmax,
    resizes) is not counted, matching how most papers report MACs (Mobile-Former's also counts its dynamic
    ReLUs' element-wise work: see :mod:`mbbench.models.mobileformer`). The model is not modified.
    """
    return _run_counter(model, resolution, batch).get_total_flops() // 2


def macs_by_module(model: nn.Module, resolution: int | tuple[int, int], batch: int = 1) -> dict[str, int]:
    """:func:`count_macs` per module, by module path (``""`` is the whole model, then e.g. ``"blocks.0"``,
    ``"blocks.0.mobile_to_former"``), each including its submodules: where the convolutions, projections and
    attention matmuls spend the MACs."""
    counts = _run_counter(model, resolution, batch).get_flop_counts()
    # Keys are the module path under the root's class name ("MobileFormer.blocks.0"), plus "Global".
    root = type(model).__name__
    return {
        "" if key == root else key[len(root) + 1 :]: sum(per_op.values()) // 2
        for key, per_op in counts.items()
        if key == root or key.startswith(root + ".")
    }


def _run_counter(model: nn.Module, resolution: int | tuple[int, int], batch: int) -> FlopCounterMode:
    height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    # Counted in eval mode (a training-mode BatchNorm1d refuses a batch of one), each module's mode restored.
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad(), counter:
            model(torch.zeros(batch, 3, height, width, device=device))
    finally:
        for module, training in modes.items():
            module.training = training
    return counter
