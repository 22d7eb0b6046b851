"""Builders for fixture CSVs in the schema `mbbench bench` writes, with hand-chosen numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

REQUIRED = ["model", "threads", "rounds", "mean_ms", "std_ms", "min_ms", "p50_ms", "p90_ms", "p99_ms", "max_ms"]


def result_row(model: str, threads: int, mean: float, std: float, rounds: int = 50, **extra) -> dict:
    """A bench row whose order statistics are simple functions of the mean (min = mean - 2 std, ...)."""
    row = {
        "model": model,
        "threads": threads,
        "rounds": rounds,
        "mean_ms": mean,
        "std_ms": std,
        "min_ms": mean - 2 * std,
        "p50_ms": mean - 0.1,
        "p90_ms": mean + std,
        "p99_ms": mean + 2 * std,
        "max_ms": mean + 3 * std,
        "cv": std / mean,
        "file": f"{model}.onnx",
        "host": "hostA",
        "cpu_model": "CPU-X",
        "physical_cores": 2,
        "logical_cores": 2,
        "timestamp": "2025-01-01T00:00:00",
        "oversubscribed": threads > 2,
    }
    row.update(extra)
    return row


def write_csv(path: Path, rows: list[dict], samples: dict | None = None) -> Path:
    """Write a results CSV and, given {(model, threads): array}, its ``<stem>.samples.csv`` sidecar."""
    pd.DataFrame(rows).to_csv(path, index=False)
    if samples is not None:
        host = rows[0].get("host", "hostA")
        long = [
            {"model": m, "threads": t, "file": f"{m}.onnx", "sha256": "0" * 64, "host": host,
             "timestamp": "2025-01-01T00:00:00", "round": i, "ms": float(v)}
            for (m, t), values in samples.items()
            for i, v in enumerate(values)
        ]  # fmt: skip
        pd.DataFrame(long).to_csv(path.with_name(f"{path.stem}.samples.csv"), index=False)
    return path


def study_rows() -> list[dict]:
    """Three models x up to three thread counts on one 2-core machine, MACs and params known.

    Given in a scrambled order so that the report's ordering (family, then size) is what the tests see.
    """
    s0 = {"family": "mobileone", "params": 2.1e6, "macs": 0.3e9}
    xs = {"family": "mobilevit", "params": 2.3e6, "macs": 0.7e9}
    xxs = {"family": "mobilevit", "params": 1.3e6, "macs": 0.36e9}
    return [
        result_row("mobilevit-xs", 1, 20.0, 2.0, **xs),
        result_row("mobilevit-xs", 2, 12.5, 1.0, **xs),
        result_row("mobilevit-xs", 4, 16.0, 4.0, **xs),
        result_row("mobileone-s0", 4, 5.0, 0.25, **s0),
        result_row("mobileone-s0", 1, 10.0, 1.0, **s0),
        result_row("mobileone-s0", 2, 6.0, 0.5, **s0),
        result_row("mobilevit-xxs", 2, 5.0, 0.2, **xxs),
        result_row("mobilevit-xxs", 1, 8.0, 0.4, **xxs),
    ]


def shifted_samples(seed: int, shift: float = 0.0, n: int = 60) -> dict:
    """Raw samples for mobileone-s0 at 1 and 2 threads, optionally all shifted by ``shift`` ms."""
    rng = np.random.default_rng(seed)
    return {
        ("mobileone-s0", 1): rng.normal(10.0, 0.2, n) + shift,
        ("mobileone-s0", 2): rng.normal(6.0, 0.1, n) + shift,
    }


def rows_from_samples(samples: dict, **extra) -> list[dict]:
    """Bench rows whose statistics are computed from the given raw samples, as bench would."""
    rows = []
    for (model, threads), x in samples.items():
        row = result_row(model, threads, float(np.mean(x)), float(np.std(x, ddof=1)), rounds=len(x), **extra)
        row.update(
            min_ms=float(np.min(x)), max_ms=float(np.max(x)), p50_ms=float(np.percentile(x, 50)),
            p90_ms=float(np.percentile(x, 90)), p99_ms=float(np.percentile(x, 99)),
        )  # fmt: skip
        rows.append(row)
    return rows


def mean_by_default(function, position: int):
    """``function`` with ``metric="mean"`` unless given (by keyword or at argument ``position``): for tests written in
    mean latency, now that the library's default is p50."""

    def call(*args, **kwargs):
        if len(args) <= position and "metric" not in kwargs:
            kwargs["metric"] = "mean"
        return function(*args, **kwargs)

    return call
