"""Remote targets: measure on a phone or a board over SSH (``--target ssh://...``), one device or a fleet.

The device runs only the portable measuring core (onnxruntime + numpy), which is pushed from this package; this
side exports, resolves models, and keeps the CSV. See :mod:`mbbench.remote.fleet` for the steps.
"""

from mbbench.remote.fleet import FleetResult, RemoteRun, RemoteSettings, TargetFailure, bench_targets, portable_core
from mbbench.remote.ssh import Target, TargetError, parse_target

__all__ = ["FleetResult", "RemoteRun", "RemoteSettings", "Target", "TargetError", "TargetFailure", "bench_targets",
           "parse_target", "portable_core"]
