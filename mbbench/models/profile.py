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
    resizes) is not counted, matching how the papers report MACs. The model is not modified.
    """
    height, width = (resolution, resolution) if isinstance(resolution, int) else resolution
    device = next(model.parameters()).device
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.zeros(batch, 3, height, width, device=device))
    return counter.get_total_flops() // 2
