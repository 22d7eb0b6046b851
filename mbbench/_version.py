"""The package version, standard library only (the portable bench core records it in every row)."""

from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version as _dist_version

    __version__ = _dist_version("mbbench")
except PackageNotFoundError:  # running from a copied source tree (e.g. a phone without pip metadata)
    __version__ = "0.1.0+unknown"
