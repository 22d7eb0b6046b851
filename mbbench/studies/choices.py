"""Choice lists of the studies, importable without torch: the CLI builds its options and help from them."""

from __future__ import annotations

#: The attention study's kinds, and how its tables and plot name them.
ATTENTION_KINDS = {
    "mha": "multi-head (MobileViT v1)",
    "separable": "separable (MobileViT v2)",
    "cross": "cross, 6 tokens (Mobile-Former)",
}
