"""The studies behind the numbers, each one command: why are some mobile models fast?

- :func:`activation_study`: a 30-layer plain CNN, identical except for its activation (ratio to ReLU);
- :func:`block_study`: a MobileOne-style stack with and without SE blocks, skip connections, branches;
- :func:`attention_study`: multi-head (MobileViT v1) vs separable (MobileViT v2) attention against tokens k;
- :func:`reproduce_study`: the original study end to end (every zoo model, the study's opsets, threads 1-4);
- :func:`precision_study`: FP16/INT8 latency and fidelity, and which op types or blocks must stay in float.

Each exports its networks with :func:`mbbench.export_onnx` and measures them in one bench sweep
(:func:`mbbench.bench.runner.run_sweep`, the only timing loop), then writes the bench CSV with ``study``,
``factor`` and ``value`` columns, a markdown summary and a PNG plot into one run folder (see
:class:`mbbench.pipeline.RunFolder`).

Names are resolved lazily (PEP 562): importing this package does not import torch.
"""

from __future__ import annotations

from mbbench._lazy import lazy_attributes

_LAZY = {
    "activation_study": "mbbench.studies.activations",
    "block_study": "mbbench.studies.blocks",
    "attention_study": "mbbench.studies.attention",
    "reproduce_study": "mbbench.studies.reproduce",
    "precision_study": "mbbench.studies.precision",
    "StudyResult": "mbbench.studies._core",
    "StudySettings": "mbbench.studies._core",
    "Variant": "mbbench.studies._core",
    "STUDY_COLUMNS": "mbbench.studies._core",
}

#: study name (the ``mbbench study`` subcommand) -> library function
STUDIES = {
    "activations": "activation_study",
    "blocks": "block_study",
    "attention": "attention_study",
    "reproduce": "reproduce_study",
    "precision": "precision_study",
}

__all__ = sorted([*_LAZY, "STUDIES"])

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
