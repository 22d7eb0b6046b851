"""Seeded, latency-faithful random initialisation.

PyTorch's default init gives every norm layer scale 1 and shift 0 and every BatchNorm running statistics 0/1.
An ONNX simplifier deletes such identities (a Mul by ones, an Add of zeros), so a random-init export could be
smaller and faster than the real model. Here every norm gets seeded non-trivial affine parameters, and the
BatchNorm running statistics are calibrated on one random batch so that activations keep a realistic scale
through deep stacks (which also keeps ONNX-vs-PyTorch parity errors meaningful).
"""

from __future__ import annotations

import torch
from torch import nn

_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)


@torch.no_grad()
def initialize(model: nn.Module, seed: int = 0, calibration_size: int = 128, calibration_batch: int = 8) -> nn.Module:
    """Initialise ``model`` in place, deterministically for ``seed``; returns it in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for module in model.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
                if module.bias is not None:
                    nn.init.normal_(module.bias, std=0.05)
            elif isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.normal_(module.bias, std=0.05)
            elif isinstance(module, _NORMS) and getattr(module, "weight", None) is not None:
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(std=0.1)
            elif isinstance(module, nn.Embedding):  # learned tokens (Mobile-Former): the constructor draw is unseeded
                nn.init.normal_(module.weight)
        for module in model.modules():
            if callable(getattr(module, "branch_norms", None)):
                _scale_branches(*module.branch_norms())
            # Residual layer scales start near zero for training (FastViT: 1e-5), which makes every block an
            # identity that a parity check cannot see; trained networks carry scales of order 0.1-1.
            for scale in module.layer_scales() if callable(getattr(module, "layer_scales", None)) else ():
                scale.uniform_(0.1, 0.5)
        _calibrate_batchnorm(model, calibration_size, calibration_batch)
    return model.eval()


def _scale_branches(norms: list[nn.BatchNorm2d], identity: nn.BatchNorm2d | None) -> None:
    """Give summed conv branches a joint gain of 1, or of 0.3 next to an identity branch.

    Summed branches add their variances and, with a random init, deep stacks of such blocks become chaotic:
    activations grow and float32 rounding differences (fused vs unfused, ONNX Runtime vs PyTorch) are
    amplified far beyond what a trained network shows. Blocks close to identity, as trained residual
    networks are, keep both in check.
    """
    if not norms:
        return
    gain = (0.3 if identity is not None else 1.0) / len(norms) ** 0.5
    for norm in norms:
        norm.weight.mul_(gain)
        norm.bias.mul_(gain)


def _calibrate_batchnorm(model: nn.Module, size: int, batch: int) -> None:
    """Set each BatchNorm's running statistics to those of its actual input on one random batch.

    Done in eval mode, layer by layer within a single forward pass (a pre-hook sets the statistics just
    before the layer normalises), so every layer sees the eval-mode output of the layers before it. Train-mode
    statistics would not: small early differences compound through 40 MobileOne blocks.
    """
    batchnorms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
    if not batchnorms:
        return

    def set_statistics(bn: nn.BatchNorm2d, inputs: tuple[torch.Tensor]) -> None:
        x = inputs[0]
        dims = (0, *range(2, x.dim()))  # all but the channels: (N, C) for BatchNorm1d, (N, C, H, W) for 2d
        bn.running_mean.copy_(x.mean(dim=dims))
        var = x.var(dim=dims)
        # Channels that are (nearly) dead on this batch would get a tiny variance and blow up on the next
        # input; floor them relative to the layer's typical variance.
        bn.running_var.copy_(var.clamp_min(0.1 * float(var.mean()) + 1e-5))
        # A sliver of noise so no statistic is exactly an identity (mean 0 / var 1) a simplifier could drop.
        bn.running_mean.add_(torch.randn_like(bn.running_mean) * 0.01)
        bn.running_var.mul_(1.0 + 0.05 * torch.rand_like(bn.running_var))

    model.eval()
    handles = [bn.register_forward_pre_hook(set_statistics) for bn in batchnorms]
    try:
        model(torch.randn(batch, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
