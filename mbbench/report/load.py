"""Reading bench CSVs (and their raw-samples sidecars) into one tidy DataFrame.

Only the columns the report cannot work without are validated; every other column written by
``mbbench bench`` is optional, because a CSV produced on a phone or an older version may lack some metadata.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mbbench.bench import schema
from mbbench.bench.formatting import variant_labels
from mbbench.bench.schema import samples_path
from mbbench.errors import UserInputError
from mbbench.models.facts import FAMILIES, family_of_name

# The bench's schema is the contract: the report validates only the statistics it cannot work without.
REQUIRED_COLUMNS = schema.STAT_COLUMNS
STAT_COLUMNS = REQUIRED_COLUMNS[3:]
SAMPLES_REQUIRED_COLUMNS = ("model", "threads", "ms")
# The columns that tie a block of raw samples to its results row (schema.SAMPLE_COLUMNS without round, ms).
_SAMPLE_IDENTITY = tuple(c for c in schema.SAMPLE_COLUMNS if c not in ("round", "ms"))

#: The statistic every table, ratio and plot uses unless told otherwise (the CLI's ``--metric`` default too): the
#: median shrugs off a preempted round, which a 2-core VM or a phone's scheduler produce often.
DEFAULT_METRIC = schema.DEFAULT_METRIC
# Metric names accepted by the report functions, mapped to the CSV column holding them.
METRICS = schema.METRIC_COLUMNS

#: The zoo's families in registry order (:data:`mbbench.models.facts.FAMILIES`): how every report orders them.
FAMILY_ORDER = FAMILIES
# MobileViT v1 names its sizes by letters, so a plain sort would put "s" before "xs" and "xxs".
_SIZE_RANK = {"xxs": 0, "xs": 1, "s": 2, "m": 3, "l": 4, "xl": 5, "xxl": 6}

#: The memory columns (MiB) a table and a comparison show, the cost over the imported runtime first.
MEMORY_COLUMNS = ("peak_delta_mib", "heap_delta_mib", "peak_rss_mib")
MAX_THREADS = 1 << 20  # far beyond any machine; larger counts are corrupt cells, and overflow int64 later
MAX_ROUNDS = 1 << 40
#: A latency of a day (8.64e7 ms) is already no benchmark; beyond this a cell is corrupt, and values near the
#: float limit overflow the plots' axis arithmetic.
MAX_LATENCY_MS = 1e9
#: Names longer than this are not names bench writes; labelling them on a plot is quadratic in their length.
MAX_NAME_CHARS = 512
_TEXT_COLUMNS = ("model", "host", "cpu_model", "family", "file", "sha256", "timestamp", "provider", "os")
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


def metric_column(metric: str) -> str:
    """The CSV column that holds ``metric`` (one of :data:`METRICS`, or "std")."""
    if metric == "std":
        return "std_ms"
    try:
        return METRICS[metric]
    except KeyError:
        raise UserInputError(f"Unknown metric {metric!r}; use one of {', '.join(METRICS)}.") from None


def metric_label(metric: str) -> str:
    """How a report names ``metric`` in titles and axis labels."""
    return {"p50": "median (p50)"}.get(metric, metric)


def has_samples(value) -> bool:
    """Whether a ``samples`` cell holds raw samples (pandas may turn a missing one into None or NaN)."""
    return isinstance(value, np.ndarray) and value.size > 0


def load(paths: str | Path | Iterable[str | Path], samples: bool = False) -> pd.DataFrame:
    """Read one or more bench CSVs into one DataFrame, one row per (run, model, threads).

    Added columns: ``source`` (the path as given), ``run`` (a short label of the run: the CSV's stem,
    ``stem#k`` for the k-th repetition of a (model, threads, host) inside one CSV), ``run_index`` (order of
    appearance), ``machine`` (``host`` plus ``cpu_model`` when known: results are never pooled across
    machines), and normalised ``family``, ``params``, ``macs``, ``oversubscribed``, ``unstable``.
    A raw-samples sidecar given as an input (``results/*.csv`` matches them) is not a results CSV: it is
    skipped, and ``results.attrs["notes"]`` says so (its samples are read with its CSV when ``samples=True``).
    Latencies must be finite and not negative (empty cells are allowed); thread counts run from 0 (ONNX
    Runtime's default) to :data:`MAX_THREADS`.
    With ``samples=True`` a ``samples`` column holds each row's raw per-round latencies (a float array, ms)
    read from the ``<stem>.samples.csv`` sidecar, or ``None`` where there is no sidecar or no matching rows.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = list(paths)
    if not paths:
        raise UserInputError("No CSV given; pass at least one CSV written by `mbbench bench`.")
    _reject_repeated_paths(paths)
    paths, notes = _skip_sidecars(paths)
    labels = _run_labels(paths)
    frames, refused = [], []
    for index, (path, label) in enumerate(zip(paths, labels)):
        frame, unsupported = _read_results(Path(path))
        if not unsupported.empty:
            refused.append(_label_runs(unsupported, source=str(path), label=label, source_index=index))
        if frame.empty:
            continue
        frame = _label_runs(frame, source=str(path), label=label, source_index=index)
        if samples:
            frame["samples"] = _attach_samples(frame, Path(path))
        frames.append(frame)
    if not frames:
        raise UserInputError(f"{paths[0]} holds only configurations a runtime could not run (the unsupported "
                             "column says why): there is no latency to report.")
    results = pd.concat(frames, ignore_index=True, sort=False)
    if "samples" not in results.columns:
        results["samples"] = None
    results = sort_results(_normalise(results))
    results.attrs["notes"] = notes
    # records, not a DataFrame: pandas compares attrs when it combines frames
    results.attrs["unsupported"] = unsupported_rows(refused).to_dict("records")
    return results


#: The columns of ``results.attrs["unsupported"]``: the configurations a runtime could not run, and why.
UNSUPPORTED_COLUMNS = ("machine", "model", "threads", "runtime", "reason", "run", "source")


def unsupported_rows(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The refused configurations of the CSVs (rows with an ``unsupported`` reason and no latency), normalised
    like the measured rows so that their machine and label match them."""
    if not frames:
        return pd.DataFrame(columns=list(UNSUPPORTED_COLUMNS))
    frame = pd.concat(frames, ignore_index=True, sort=False)
    for column in STAT_COLUMNS:
        frame[column] = np.nan
    frame = _normalise(frame.assign(samples=None))
    return frame.assign(reason=frame["unsupported"].astype(str).str.strip())


def label_variants(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` with each ``model`` label saying what its row measured (what every table and plot shows).

    The label is :func:`mbbench.bench.formatting.variant_labels`': the network's name, with the precision, input
    size and opset wherever the rows disagree on them (``mobileone-s0 (int8)``), then what else tells two files
    of one network apart. Adds ``name`` (the label bench wrote) and ``network`` (the label without the
    precision); ``results.attrs["shared"]`` says what every row has in common (``fp32``, ``opset 17``). Applying
    it twice changes nothing.
    """
    if "name" in results.columns:
        return results
    labels, networks, shared = variant_labels(results.to_dict("records"))
    out = results.assign(name=results["model"], network=networks, model=labels)
    out.attrs = {**results.attrs, "shared": shared}
    return out


def filter_results(
    results: pd.DataFrame,
    models: Sequence[str] = (),
    threads: Sequence[int] = (),
    hosts: Sequence[str] = (),
) -> pd.DataFrame:
    """Keep the rows whose model and host match one of the glob patterns and whose thread count is listed.

    An empty selector keeps everything; a selection that leaves no row is an error that lists what exists.
    """
    keep = pd.Series(True, index=results.index)
    if models:
        keep &= results["model"].map(lambda name: any(fnmatch.fnmatchcase(name, p) for p in models))
    if threads:
        keep &= results["threads"].isin(list(threads))
    if hosts:
        keep &= results["host"].map(lambda name: any(fnmatch.fnmatchcase(name, p) for p in hosts))
    if not keep.any():
        asked = ", ".join(
            f"{name} {' '.join(map(str, values))}"
            for name, values in (("model", models), ("threads", threads), ("host", hosts))
            if values
        )
        available = (
            f"models {', '.join(results['model'].unique())}; threads "
            f"{', '.join(map(str, sorted(results['threads'].unique())))}; hosts {', '.join(results['host'].unique())}"
        )
        raise UserInputError(f"No rows left after filtering ({asked}); the CSVs hold {available}.")
    out = results.loc[keep].reset_index(drop=True)
    refused = unsupported_frame(results)
    if not refused.empty:
        kept = pd.Series(True, index=refused.index)
        if models:
            kept &= refused["model"].map(lambda name: any(fnmatch.fnmatchcase(name, p) for p in models))
        if threads:
            kept &= refused["threads"].isin(list(threads))
        if hosts:
            kept &= refused["host"].map(lambda name: any(fnmatch.fnmatchcase(name, p) for p in hosts))
        out.attrs["unsupported"] = refused[kept].to_dict("records")
    return out


def unsupported_frame(results: pd.DataFrame) -> pd.DataFrame:
    """``results.attrs["unsupported"]`` (the configurations a runtime could not run) as a DataFrame."""
    records = results.attrs.get("unsupported") or []
    return pd.DataFrame(records) if records else pd.DataFrame(columns=list(UNSUPPORTED_COLUMNS))


def family_of(name: str) -> str:
    """The family a model name belongs to by its prefix, or "other"."""
    return family_of_name(name) or "other"


def natural_key(name: str) -> tuple:
    """Sort key that orders numbers by value and MobileViT size letters by size (xxs < xs < s)."""
    parts = [p for p in re.split(r"(\d+)|[^0-9A-Za-z]+", name.lower()) if p]
    key = []
    for part in parts:
        if part.isdigit():
            key.append((0, int(part), ""))
        elif part in _SIZE_RANK:
            key.append((1, _SIZE_RANK[part], ""))
        else:
            key.append((2, 0, part))
    return tuple(key)


def model_order(results: pd.DataFrame) -> list[str]:
    """Model names by family (:data:`FAMILY_ORDER`: MobileNetV3, MobileOne, FastViT, MobileViT, MobileViT v2,
    Mobile-Former, then others), then by size.

    Size is the parameter count when the CSV knows it, else the model name's natural order.
    """
    info = results.groupby("model", sort=False).agg(family=("family", "first"), params=("params", "max"))

    def key(name: str) -> tuple:
        family, params = info.at[name, "family"], info.at[name, "params"]
        rank = FAMILY_ORDER.index(family) if family in FAMILY_ORDER else len(FAMILY_ORDER)
        known = not pd.isna(params)
        return (rank, family, not known, params if known else 0.0, natural_key(name), name)

    return sorted(info.index, key=key)


def sort_results(results: pd.DataFrame) -> pd.DataFrame:
    """Rows ordered by machine (first appearance), model (:func:`model_order`), run, then thread count."""
    machines = {m: i for i, m in enumerate(results["machine"].unique())}
    models = {m: i for i, m in enumerate(model_order(results))}
    order = pd.DataFrame(
        {
            "machine": results["machine"].map(machines),
            "model": results["model"].map(models),
            "run": results["run_index"],
            "threads": results["threads"],
        }
    )
    return results.loc[order.sort_values(list(order.columns), kind="stable").index].reset_index(drop=True)


def _reject_repeated_paths(paths: list) -> None:
    seen: dict[Path, str] = {}
    for path in paths:
        resolved = Path(path).resolve()
        if resolved in seen:
            raise UserInputError(f"{path} is given twice; pass each CSV once so its rows are not counted twice.")
        seen[resolved] = str(path)


def _is_sidecar(path: Path) -> bool:
    """Whether ``path`` is a raw-samples sidecar (judged by its header: round and ms, no mean_ms)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            header = {c.strip() for c in handle.readline().split(",")}
    except OSError:
        return False  # _read_csv says what is wrong with it
    return {"round", "ms"} <= header and "mean_ms" not in header


def _skip_sidecars(paths: list) -> tuple[list, list[str]]:
    kept, sidecars = [], []
    for path in paths:
        if Path(path).is_file() and _is_sidecar(Path(path)):
            sidecars.append(path)
        else:
            kept.append(path)
    # one line however many there are: `report results/*.csv` takes in every run's sidecar
    notes = [f"Skipped {len(sidecars)} raw-samples file{'s' if len(sidecars) != 1 else ''} ({sidecars[0]}"
             f"{', ...' if len(sidecars) > 1 else ''}): they are read with the results CSV they belong to."] if sidecars else []
    if not kept:
        raise UserInputError(
            f"{paths[0]} holds raw samples, not results; pass the results CSV written by `mbbench bench` next to it."
        )
    return kept, notes


def _run_labels(paths: list) -> list[str]:
    stems = [Path(p).stem for p in paths]
    return [stem if stems.count(stem) == 1 else str(p) for stem, p in zip(stems, paths)]


def _read_csv(path: Path, what: str) -> pd.DataFrame:
    if not path.exists():
        raise UserInputError(f"{what} {path} does not exist; check the path.")
    if path.is_dir():
        raise UserInputError(f"{what} {path} is a directory; pass the CSV file inside it.")
    if not path.is_file():  # a FIFO would block the read forever, a device read without end
        raise UserInputError(f"{what} {path} is not a regular file; pass a CSV written by `mbbench bench`.")
    try:
        frame = pd.read_csv(path, dtype={c: str for c in _TEXT_COLUMNS}, skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise UserInputError(f"{what} {path} is empty; pass a CSV written by `mbbench bench`.") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError):
        raise UserInputError(f"{what} {path} is not a readable CSV; pass a CSV written by `mbbench bench`.") from None
    except OSError as exc:
        raise UserInputError(f"Cannot read {what} {path} ({exc.strerror}); check its permissions.") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_results(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The measured rows of one CSV, validated, and apart from them the refused ones (``unsupported``)."""
    frame = _read_csv(path, "CSV")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise UserInputError(
            f"{path} is not an mbbench bench CSV (missing columns: {', '.join(missing)}); "
            "pass a CSV written by `mbbench bench`."
        )
    if frame.empty:
        raise UserInputError(f"{path} has a header but no result rows; re-run `mbbench bench` to fill it.")
    if "unsupported" in frame.columns:
        refused = frame["unsupported"].map(lambda v: isinstance(v, str) and bool(v.strip()))
        unsupported, frame = frame[refused].reset_index(drop=True), frame[~refused].reset_index(drop=True)
        unsupported["threads"] = pd.to_numeric(unsupported["threads"], errors="coerce")
        unsupported = unsupported[unsupported["threads"].between(0, MAX_THREADS)].astype({"threads": np.int64})
        if frame.empty:
            return frame, unsupported
    else:
        unsupported = frame.iloc[0:0]
    for column in ("threads", "rounds", *STAT_COLUMNS):
        values = pd.to_numeric(frame[column], errors="coerce")
        # Only text that is not a number is an error: empty cells (e.g. std_ms of a 1-round row) stay NaN.
        bad = values.isna() & frame[column].notna()
        if column in ("threads", "rounds"):
            bad |= values.isna() | (values != values.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0]) + 2  # +1 for the header, +1 for 1-based lines
            cell = frame[column].iloc[row - 2]
            what = "is empty" if pd.isna(cell) else f"holds {cell!r}, not a number"
            raise UserInputError(f"{path} line {row}: column {column} {what}; fix or regenerate the CSV.")
        if column in ("threads", "rounds"):
            limit = MAX_THREADS if column == "threads" else MAX_ROUNDS
            low = 0 if column == "threads" else 1
            _refuse_first(path, column, frame[column], (values < low) | (values > limit),
                          f"must be a whole number from {low} to {limit}")  # fmt: skip
            frame[column] = values.astype(np.int64)
        else:
            _refuse_first(path, column, frame[column],
                          ~np.isfinite(values.fillna(0.0)) | (values < 0) | (values > MAX_LATENCY_MS),
                          f"must be a latency in ms from 0 to {MAX_LATENCY_MS:g} (leave the cell empty if unknown)")
            frame[column] = values.astype(float)
    if frame["model"].isna().any():
        row = int(np.flatnonzero(frame["model"].isna().to_numpy())[0]) + 2
        raise UserInputError(f"{path} line {row}: the model column is empty; fix or regenerate the CSV.")
    for column in ("model", "host", "target", "cpu_model"):
        if column in frame.columns:
            lengths = frame[column].map(lambda v: len(v) if isinstance(v, str) else 0)
            if (lengths > MAX_NAME_CHARS).any():
                row = int(np.flatnonzero((lengths > MAX_NAME_CHARS).to_numpy())[0])
                raise UserInputError(
                    f"{path} line {row + 2}: column {column} holds a {lengths.iloc[row]:,}-character value, more "
                    f"than the {MAX_NAME_CHARS} a name may have; fix or regenerate the CSV."
                )
    return frame, unsupported


def _refuse_first(path: Path, column: str, cells: pd.Series, bad: pd.Series, rule: str) -> None:
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise UserInputError(
            f"{path} line {row + 2}: column {column} holds {cells.iloc[row]!r}, which {rule}; "
            "fix or regenerate the CSV."
        )


def _label_runs(frame: pd.DataFrame, source: str, label: str, source_index: int) -> pd.DataFrame:
    frame = frame.copy()
    host = frame["host"].astype(str).where(frame["host"].notna(), "") if "host" in frame.columns else ""
    frame["host"] = pd.Series(host, index=frame.index, dtype=object).str.strip().replace("", "unknown host")
    # A CSV that several bench invocations appended to repeats (model, threads, host); the k-th repeat of a
    # key belongs to the k-th run, so label it that way instead of merging distinct runs.
    occurrence = frame.groupby(["model", "threads", "host"], sort=False).cumcount() + 1
    repeated = frame.duplicated(["model", "threads", "host"], keep=False)
    frame["source"] = source
    frame["run"] = [f"{label}#{k}" if rep else label for k, rep in zip(occurrence, repeated)]
    frame["run_index"] = source_index * 1_000_000 + occurrence.where(repeated, 0)
    return frame


def _attach_samples(frame: pd.DataFrame, csv_path: Path) -> list:
    path = samples_path(csv_path)
    if not path.exists():
        return [None] * len(frame)
    raw = _read_csv(path, "samples file")
    missing = [c for c in SAMPLES_REQUIRED_COLUMNS if c not in raw.columns]
    if missing:
        raise UserInputError(
            f"{path} (the raw samples of {csv_path}) is not an mbbench samples file (missing columns: "
            f"{', '.join(missing)}); fix or remove it."
        )
    raw["ms"] = pd.to_numeric(raw["ms"], errors="coerce")
    raw["threads"] = pd.to_numeric(raw["threads"], errors="coerce")
    raw = raw.dropna(subset=["ms", "threads"]).astype({"threads": int})
    if "host" in raw.columns:
        raw["host"] = raw["host"].fillna("").str.strip().replace("", "unknown host")
    keys = [c for c in _SAMPLE_IDENTITY if c in raw.columns and c in frame.columns]

    def identity(table: pd.DataFrame) -> pd.Series:
        # Empty cells (a phone that does not hash its models) must still match each other, and NaN != NaN.
        return pd.Series(list(zip(*(table[k].where(table[k].notna(), "") for k in keys))), index=table.index)

    groups = {key: part["ms"].to_numpy(dtype=float) for key, part in raw.groupby(identity(raw), sort=False)}
    row_keys = identity(frame)
    # Rows that share their whole identity cannot be told apart, so their samples stay unknown.
    ambiguous = row_keys.duplicated(keep=False)
    return [None if dup else groups.get(key) for key, dup in zip(row_keys, ambiguous)]


def _as_bool(series: pd.Series) -> pd.Series:
    def convert(value) -> bool:
        if isinstance(value, (bool, np.bool_)):
            return bool(value)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return False
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE or text == "nan":
            return False
        try:
            return float(text) != 0.0
        except ValueError:
            return False

    return series.map(convert).astype(bool)


def _device_of(target: str) -> str:
    """``ssh://user@host:port`` of a target URL, without its cache folder (``/workdir``)."""
    scheme, sep, rest = target.partition("://")
    return scheme + sep + rest.split("/", 1)[0] if sep else target


def _normalise(results: pd.DataFrame) -> pd.DataFrame:
    results = results.copy()
    cpu = results["cpu_model"] if "cpu_model" in results.columns else pd.Series(np.nan, index=results.index)
    results["cpu_model"] = [c.strip() if isinstance(c, str) else "" for c in cpu]
    # A row measured through --target is grouped by its device: the URL names it even where two devices share
    # a host name (a fleet of identical boards). The URL's cache folder is not part of the device's name.
    target = results["target"] if "target" in results.columns else pd.Series("", index=results.index)
    results["target"] = [t.strip() if isinstance(t, str) else "" for t in target]
    results["machine"] = [
        (f"{h} ({c})" if c else h) + (f" via {_device_of(t)}" if t else "")
        for h, c, t in zip(results["host"], results["cpu_model"], results["target"])
    ]
    family = results["family"] if "family" in results.columns else pd.Series(np.nan, index=results.index)
    results["family"] = [
        str(f).strip().lower() if isinstance(f, str) and f.strip() else family_of(m)
        for f, m in zip(family, results["model"])
    ]
    for column in ("params", "macs"):
        values = pd.to_numeric(results.get(column, pd.Series(np.nan, index=results.index)), errors="coerce")
        results[column] = values.where(values > 0).astype(float)
    for column in (*schema.BOOL_COLUMNS, "contended"):
        if column in results.columns:
            results[column] = _as_bool(results[column])
    # A CSV from before runtimes were an axis measured ONNX Runtime.
    runtime = results["runtime"] if "runtime" in results.columns else pd.Series(np.nan, index=results.index)
    results["runtime"] = [r.strip() if isinstance(r, str) and r.strip() else "onnxruntime" for r in runtime]
    # What bench records about the machine's load and the memory a configuration took (newer CSVs only): numbers
    # where readable, else NaN.
    for column in ("others_cpu_pct", "loadavg_1m", *MEMORY_COLUMNS, "model_bytes"):
        if column in results.columns:
            results[column] = pd.to_numeric(results[column], errors="coerce").astype(float)
    if "oversubscribed" not in results.columns:
        # Older or hand-made CSVs: fall back to the usual definition, more threads than logical cores.
        cores = pd.to_numeric(results.get("logical_cores", pd.Series(np.nan, index=results.index)), errors="coerce")
        results["oversubscribed"] = (results["threads"] > cores).fillna(False).astype(bool)
    for column in ("unstable", "contended"):
        if column not in results.columns:
            results[column] = False
    return results
