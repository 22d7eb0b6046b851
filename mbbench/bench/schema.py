"""The on-disk schema of bench results: the one place that names every column.

``report`` imports this module to read what ``bench`` wrote, so it stays standard-library only and
side-effect free. Column names are a contract: renaming one breaks every CSV already on someone's disk.
"""

from __future__ import annotations

from pathlib import Path

#: The columns the issue fixes by name, in this order, at the start of every row.
STAT_COLUMNS: tuple[str, ...] = (
    "model",
    "threads",
    "rounds",
    "mean_ms",
    "std_ms",
    "min_ms",
    "p50_ms",
    "p90_ms",
    "p99_ms",
    "max_ms",
)

#: How far the numbers can be trusted: coefficient of variation, a 95% Student-t confidence interval of the
#: mean, and the instability flags (see :mod:`mbbench.bench.stats` for the thresholds).
QUALITY_COLUMNS: tuple[str, ...] = (
    "cv",
    "ci95_low_ms",
    "ci95_high_ms",
    "unstable",
    "bimodal",
)

#: What is needed to reproduce a row on another day or device.
METADATA_COLUMNS: tuple[str, ...] = (
    "file",
    "sha256",
    "opset",
    "input_shape",
    "warmup",
    "graph_opt",
    "spinning",
    "inter_threads",
    "provider",
    "session_ms",
    "first_run_ms",
    "cpu_model",
    "physical_cores",
    "logical_cores",
    "os",
    "python",
    "onnxruntime_version",
    "mbbench_version",
    "timestamp",
    "host",
    "oversubscribed",
    # beyond the list: the rest of the run's knobs and the CPUs this process may actually use
    "min_time_s",
    "seed",
    "isolated",
    "available_cpus",
)

#: Facts joined from the mbbench export manifest (``<model stem>.json``); empty for foreign ONNX files.
MANIFEST_COLUMNS: tuple[str, ...] = (
    "family",
    "params",
    "macs",
    "reparameterized",
    "fold",
    "exporter",
    "precision", "fidelity_cosine", "fidelity_sqnr_db", "fidelity_top1", "fidelity_top5",
)

#: Added later, so they sit at the end: a CSV written before them still loads, and ``--append`` onto such a file
#: keeps the file's own header (these cells are then dropped). What the machine was doing during the
#: configuration (see :mod:`mbbench.bench.load`): CPU that other processes used, as a percent of the cores the
#: run used; the 1-minute load average; ``contended`` when others used a meaningful share of the cores. Then the
#: fast and slow cluster means of a ``bimodal`` row (empty otherwise).
LATER_COLUMNS: tuple[str, ...] = (
    "others_cpu_pct",
    "loadavg_1m",
    "contended",
    "mode_fast_ms",
    "mode_slow_ms",
    # where and how the row was measured (see mbbench.bench.device and mbbench.remote): the --target URL (empty
    # for this machine), the CPUs the run was pinned to, the core clusters and cpufreq governor, the --cool-to
    # limit, the hottest thermal zone before and after, and whether the kernel capped the clocks meanwhile
    "target",
    "cpus",
    "clusters",
    "governor",
    "cool_to_c",
    "temp_start_c",
    "temp_end_c",
    "throttled",
    # which runtime ran the row (see mbbench.runtimes; a CSV without these columns is onnxruntime's), its version,
    # the threads and precision it reports it applied and the rest of what it read back (key=value;...), and for
    # an artifact converted from an export: that export's sha256 and the artifact's fidelity to PyTorch
    "runtime",
    "runtime_version",
    "applied_threads",
    "applied_precision",
    "applied_settings",
    "source_sha256",
    "conversion_cosine",
    "conversion_max_abs",
    # a configuration the runtime could not run at all (its conversion refused the model, or the artifact did not
    # compute what the export computes): the reason; the row has no latency (rounds 0)
    "unsupported",
    # what the configuration cost in memory, measured in the worker that ran it (see mbbench.bench.memory)
    "peak_rss_mib",
    "peak_delta_mib",
    "heap_delta_mib",
    "model_bytes",
    "memory_method",
)

#: Every column of a results CSV, in file order. Callers of ``benchmark(extra_columns=...)`` add theirs after.
RESULT_COLUMNS: tuple[str, ...] = STAT_COLUMNS + QUALITY_COLUMNS + METADATA_COLUMNS + MANIFEST_COLUMNS + LATER_COLUMNS

#: The statistics a table, a ratio or a plot can use (``--metric``), and the column holding each; ``p50`` first, the
#: default everywhere (the median shrugs off a preempted round).
METRIC_COLUMNS: dict[str, str] = {
    "p50": "p50_ms", "mean": "mean_ms", "p90": "p90_ms", "p99": "p99_ms", "min": "min_ms", "max": "max_ms",
}
DEFAULT_METRIC = "p50"

#: The raw-samples sidecar, long format: one row per timed round (``round`` counts from 1).
#: ``(model, threads, file, sha256, host, timestamp)`` identifies the results row the samples belong to.
SAMPLE_COLUMNS: tuple[str, ...] = ("model", "threads", "file", "sha256", "host", "timestamp", "round", "ms")

#: Boolean columns are written as ``True``/``False`` (what pandas parses as bool).
BOOL_COLUMNS: tuple[str, ...] = (
    "unstable", "bimodal", "oversubscribed", "isolated", "reparameterized", "contended", "throttled",
)


def samples_path(results_csv: str | Path) -> Path:
    """The raw-samples sidecar that belongs to a results CSV: ``results/x.csv`` -> ``results/x.samples.csv``."""
    path = Path(results_csv)
    return path.with_name(f"{path.stem}.samples.csv")
