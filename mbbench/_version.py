"""The package version, standard library only (the portable bench core records it in every row).

A core pushed to a device has no package metadata there (or, worse, an older mbbench installed beside it):
the host writes its own version into the core as ``mbbench/_core_version.py``, which wins when present.
"""

from __future__ import annotations

try:
    from mbbench._core_version import VERSION as __version__  # only in a pushed core
except ImportError:
    try:
        from importlib.metadata import PackageNotFoundError, version as _dist_version

        __version__ = _dist_version("mbbench")
    except PackageNotFoundError:  # running from a copied source tree without pip metadata
        __version__ = "0.1.0+unknown"
