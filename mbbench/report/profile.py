"""What ``mbbench profile`` writes and shows: profiles side by side, as tables, a CSV, a plot and ORT's traces.

:func:`build_document` turns :class:`~mbbench.bench.profiling.Profile` objects into the report's
:class:`~mbbench.report.document.Document` (the same renderers as ``mbbench report``: markdown, rich), so the
terminal and ``profile.md`` say the same thing. :func:`write_profile` writes ``profile.csv``, ``profile.md``,
``profile.png`` and the raw traces into one folder, all staged first and renamed into place together.
:func:`compare_ops` diffs the profiles with an earlier ``profile.csv``, op type by op type.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from mbbench._io import clean_stale_temps, stage_bytes
from mbbench.bench.formatting import decimals, flag_legend, flag_marks, format_latency, format_ms, threads_label
from mbbench.bench.profiling import BETWEEN_OPS, BY, Profile
from mbbench.errors import UserInputError
from mbbench.report.document import Document, Section, Table, to_markdown

CSV_NAME, SUMMARY_NAME, PLOT_NAME = "profile.csv", "profile.md", "profile.png"
PROFILE_FILES = (CSV_NAME, SUMMARY_NAME, PLOT_NAME)
#: One row per (model, threads, node), then one "(between ops)" row per (model, threads): the shares of a
#: (model, threads) add up to 1.
CSV_COLUMNS = (
    "model", "threads", "node", "op_type", "block", "mean_ms", "share", "calls", "covers", "path", "domain",
    "provider", "inherited", "end_to_end_ms", "target", "file", "sha256", "rounds", "depth",
)  # fmt: skip
#: Node time should cover at least this share of the end-to-end time; below it the summary says why.
COVERAGE_GOAL = 0.90
END_TO_END = "end to end"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # a spreadsheet runs a cell that starts with one of these


# --- the folder ---------------------------------------------------------------------------------------------


def default_folder(parent: str | os.PathLike = "results") -> Path:
    """``results/profile-<host>-<local time>`` (:func:`mbbench._paths.default_results_folder`)."""
    from mbbench._paths import default_results_folder as run_folder

    return run_folder("profile", parent)


def prepare_folder(output: str | os.PathLike | None = None) -> Path:
    """Create the output folder (default :func:`default_folder`) and check it can take the files, before any
    measurement: a folder that already holds a profile is refused (nothing is ever overwritten)."""
    folder = Path(output) if output is not None else default_folder()
    if folder.exists() and not folder.is_dir():
        raise UserInputError(f"--output {folder} is a file; pass a folder for the profile")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot create the folder {folder} ({exc.strerror or exc}); choose another "
                             "--output") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserInputError(f"the folder {folder} is not writable; choose another --output")
    taken = [folder / name for name in PROFILE_FILES if (folder / name).exists()]
    if taken:
        raise UserInputError(f"{taken[0]} already exists; choose another --output folder or delete the old profile")
    return folder


# --- data ---------------------------------------------------------------------------------------------------


def profile_label(profile: Profile) -> str:
    """``mobilevit-xxs, 1 thread`` (``... on ssh://phone``): one profile's column header."""
    return f"{profile.label}, {threads_label(profile.threads)}"


def csv_rows(profiles: Iterable[Profile]) -> list[dict[str, object]]:
    """The rows of ``profile.csv`` (keys: :data:`CSV_COLUMNS`)."""
    rows = []
    for p in profiles:
        common = {"model": p.model, "threads": p.threads, "end_to_end_ms": p.end_to_end_ms, "target": p.target or "",
                  "file": p.file, "sha256": p.sha256, "rounds": p.rounds, "depth": p.depth}  # fmt: skip
        for n in p.nodes:
            rows.append({**common, "node": n.node, "op_type": n.op_type, "block": n.block, "mean_ms": n.mean_ms,
                         "share": n.share, "calls": n.calls, "covers": "+".join(n.covers), "path": n.path,
                         "domain": n.domain, "provider": n.provider, "inherited": n.inherited})  # fmt: skip
        rows.append({**common, "node": BETWEEN_OPS, "op_type": BETWEEN_OPS, "block": BETWEEN_OPS,
                     "mean_ms": p.between_ops_ms, "share": p.between_ops_share, "calls": "", "covers": "",
                     "path": "", "domain": "", "provider": "", "inherited": ""})  # fmt: skip
    return rows


def _cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    return value


def to_csv(profiles: Iterable[Profile]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in csv_rows(profiles):
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def to_json(profiles: Iterable[Profile]) -> str:
    """Every profile (without its raw trace) with its sums: end to end, node time, coverage, by op, by block."""

    def plain(value):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        return value

    out = []
    for p in profiles:
        data = p.to_dict(trace=False)
        data.update(end_to_end_ms=p.end_to_end_ms, node_ms=p.node_ms, coverage=p.coverage,
                    between_ops_ms=p.between_ops_ms, plain_ms_mean=p.plain_ms_mean,
                    by_op=[g.__dict__ for g in p.by_op()], by_block=[g.__dict__ for g in p.by_block()])
        out.append(plain(data))
    return json.dumps(out, indent=2) + "\n"


# --- comparison ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpComparison:
    """One profile against its counterpart in a base ``profile.csv``: ms per op type, base and now."""

    label: str
    base_label: str
    #: (op type, base ms, ms); NaN where one side has no such kernel; "(between ops)" and "end to end" last
    rows: tuple[tuple[str, float, float], ...]


def read_profile_csv(folder: str | os.PathLike) -> list[dict[str, str]]:
    """The rows of ``<folder>/profile.csv`` (what ``--compare`` reads); one-line errors for what cannot be used."""
    folder = Path(folder)
    path = folder / CSV_NAME if folder.is_dir() else folder
    if not path.is_file():
        raise UserInputError(f"--compare {folder}: there is no {CSV_NAME} there; pass the folder an earlier "
                             "'mbbench profile' wrote")
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("model", "threads", "op_type", "mean_ms", "end_to_end_ms")
                       if c not in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise UserInputError(f"--compare: cannot read {path} ({exc}); pass a folder written by 'mbbench profile'") \
            from None
    if missing:
        raise UserInputError(f"--compare: {path} is not a profile CSV (no column {missing[0]!r})")
    for row in rows:
        try:
            int(row["threads"])
            float(row["mean_ms"])
        except (TypeError, ValueError):
            raise UserInputError(f"--compare: {path} has a row with threads {row.get('threads')!r} and mean_ms "
                                 f"{row.get('mean_ms')!r}; it is not a profile CSV") from None
    if not rows:
        raise UserInputError(f"--compare: {path} holds no profile")
    return rows


def _base_profiles(rows: Sequence[Mapping[str, str]]) -> dict[tuple[str, int, str], dict]:
    found: dict[tuple[str, int, str], dict] = {}
    for row in rows:
        key = (row["model"], int(row["threads"]), row.get("target") or "")
        entry = found.setdefault(key, {"ops": {}, "end_to_end": _float(row.get("end_to_end_ms"))})
        entry["ops"][row["op_type"]] = entry["ops"].get(row["op_type"], 0.0) + float(row["mean_ms"])
    return found


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan


def compare_ops(profiles: Sequence[Profile], base_rows: Sequence[Mapping[str, str]]) -> list[OpComparison]:
    """Pair each profile with the base profile of the same model, threads and target (else the same model and
    threads; else, when each side holds exactly one profile, those two) and list ms per op type on both sides."""
    base = _base_profiles(base_rows)
    pairs = []
    for p in profiles:
        key = (p.model, p.threads, p.target or "")
        match = key if key in base else next((k for k in base if k[:2] == key[:2]), None)
        if match is not None:
            pairs.append((p, match))
    if not pairs and len(profiles) == 1 and len(base) == 1:
        pairs = [(profiles[0], next(iter(base)))]
    if not pairs:
        ours = ", ".join(profile_label(p) for p in profiles)
        theirs = ", ".join(f"{m}, {threads_label(t)}" for m, t, _ in base)
        raise UserInputError(f"--compare: nothing to pair: this run has {ours}, the base has {theirs}")
    out = []
    for p, key in pairs:
        ops = {g.name: g.mean_ms for g in p.by_op()}
        ops[BETWEEN_OPS] = p.between_ops_ms
        old = base[key]["ops"]
        names = sorted((set(ops) | set(old)) - {BETWEEN_OPS}, key=lambda n: -max(ops.get(n, 0.0), old.get(n, 0.0)))
        rows = [(n, old.get(n, math.nan), ops.get(n, math.nan)) for n in names]
        rows.append((BETWEEN_OPS, old.get(BETWEEN_OPS, math.nan), ops[BETWEEN_OPS]))
        rows.append((END_TO_END, base[key]["end_to_end"], p.end_to_end_ms))
        model, threads, target = key
        base_label = f"{model}{f' on {target}' if target else ''}, {threads_label(threads)}"
        out.append(OpComparison(profile_label(p), base_label, tuple(rows)))
    return out


# --- the document -------------------------------------------------------------------------------------------


def _rounds(count: int) -> str:
    return f"{count} round" if count == 1 else f"{count} rounds"


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%" if math.isfinite(share) else "-"


def _calls(calls: float) -> str:
    return f"{calls:g}"


def _merged_order(sequences: Iterable[Sequence[str]]) -> list[str]:
    """One order for the names of several sequences (execution orders): a name the order lacks goes right before
    the first name after it in its own sequence that the order has, else at the end."""
    merged: list[str] = []
    for sequence in sequences:
        sequence = list(sequence)
        for i, name in enumerate(sequence):
            if name in merged:
                continue
            after = next((n for n in sequence[i + 1 :] if n in merged), None)
            merged.insert(merged.index(after) if after is not None else len(merged), name)
    return merged


def _end_to_end_table(profiles: Sequence[Profile]) -> Table:
    rows: list[list[str]] = []

    def row(name: str, cells: Iterable[str]) -> None:
        rows.append([name, *cells])

    row("end to end, ms (mean ± std)", (format_latency(p.stats.mean_ms, p.stats.std_ms) for p in profiles))
    row("without the profiler, ms", (format_latency(p.plain_ms_mean, _std(p.plain_ms)) if p.plain_ms else "-"
                                     for p in profiles))
    row("node time, ms", (format_ms(p.node_ms) for p in profiles))
    row("node time / end to end", (_pct(p.coverage) for p in profiles))
    row("between ops, ms", (f"{format_ms(p.between_ops_ms)} ({_per_kernel_us(p):.1f} µs a kernel)" for p in profiles))
    row("kernels per run", (_kernels_text(p) for p in profiles))
    row("others' CPU use", (f"{p.others_cpu_pct:.0f}%" if p.others_cpu_pct is not None else "-" for p in profiles))
    notes = [why for p in profiles for why in coverage_notes(p)]
    notes += list(dict.fromkeys(f"{profile_label(p)}: {n}" for p in profiles for n in p.notes))
    flags = {name for p in profiles for name, value in _flags(p).items() if value}
    notes += flag_legend(flags)
    if any(p.others_cpu_pct is not None for p in profiles):
        notes.append("Others' CPU use: what other processes used during the profiled rounds, as a percent of the "
                     "cores the run could use.")
    headers = [""] + [profile_label(p) + flag_marks(_flags(p)) for p in profiles]
    return Table("End to end", headers, rows, ["left"] + ["right"] * len(profiles), notes)


def _std(values: Sequence[float]) -> float:
    if len(values) < 2:
        return math.nan
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _flags(p: Profile) -> dict[str, object]:
    return {"oversubscribed": p.oversubscribed, "unstable": p.stats.unstable, "contended": p.contended}


def _per_kernel_us(p: Profile) -> float:
    return p.between_ops_ms * 1e3 / p.kernels_per_run if p.kernels_per_run else math.nan


def _kernels_text(p: Profile) -> str:
    fused = sum(1 for n in p.nodes if n.fused)
    inserted = sum(1 for n in p.nodes if not n.covers)
    parts = [f"{fused} fused"] if fused else []
    if inserted:
        parts.append(f"{inserted} inserted by ORT")
    return f"{_calls(p.kernels_per_run)}" + (f" ({', '.join(parts)})" if parts else "")


def coverage_notes(p: Profile, goal: float = COVERAGE_GOAL) -> list[str]:
    """Why node time covers less than ``goal`` of the end-to-end time, from what was measured (empty above it)."""
    if not math.isfinite(p.coverage) or p.coverage >= goal:
        return []
    parts = [
        f"{profile_label(p)}: node time covers {_pct(p.coverage)} of the end-to-end time (below {goal:.0%}). The "
        f"{format_ms(p.between_ops_ms)} ms between ops are {_per_kernel_us(p):.1f} µs for each of "
        f"{_calls(p.kernels_per_run)} kernels"
    ]
    outside = p.outside_executor_ms
    if math.isfinite(outside):
        parts.append(f"{format_ms(outside)} ms of them outside ORT's executor (run()'s own input and output "
                     "handling), the rest between kernels: ORT's allocations and dispatch, and the profiler's own "
                     "bookkeeping after each kernel")
    if p.plain_ms and math.isfinite(p.plain_ms_mean) and p.plain_ms_mean > 0:
        parts.append(f"the same rounds took {format_ms(p.plain_ms_mean)} ms without the profiler against "
                     f"{format_ms(p.end_to_end_ms)} ms with it")
    if p.contended:
        parts.append(f"other processes used {p.others_cpu_pct:.0f}% of the cores meanwhile, and a thread they "
                     "preempt waits between kernels as well as inside them")
    if p.oversubscribed:
        parts.append(f"{threads_label(p.threads)} is more than the {p.cores} cores: threads wait for each other")
    return ["; ".join(parts) + "."]


def _side_by_side(profiles: Sequence[Profile], by: str) -> Table:
    """Per block (execution order) or per op type (largest first), ms, share and calls of each profile."""
    if by == "block":
        per = [{g.name: g for g in p.by_block()} for p in profiles]
        names = _merged_order([list(groups) for groups in per])
        title, head = f"By block (module path, depth {profiles[0].depth})", ["block"]
    else:
        per = [{g.name: g for g in p.by_op()} for p in profiles]
        names = sorted({n for groups in per for n in groups},
                       key=lambda n: -max(groups[n].share if n in groups else 0.0 for groups in per))
        title, head = "By op type (the kernel ORT ran)", ["op type", "covers"]
    headers = list(head)
    for p in profiles:
        headers += [f"{profile_label(p)}: ms", "share", "calls"]
    rows = []
    for name in names:
        cells = [name]
        if by == "op":
            cells.append(", ".join(dict.fromkeys(c for groups in per if name in groups for c in groups[name].covers)))
        for groups in per:
            g = groups.get(name)
            cells += [format_ms(g.mean_ms), _pct(g.share), _calls(g.calls)] if g else ["-", "-", "-"]
        rows.append(cells)
    pad = [""] * (len(head) - 1)
    rows.append([BETWEEN_OPS, *pad, *[c for p in profiles for c in (format_ms(p.between_ops_ms),
                                                                     _pct(p.between_ops_share), "")]])
    rows.append([END_TO_END, *pad, *[c for p in profiles for c in (format_ms(p.end_to_end_ms), _pct(1.0), "")]])
    notes = ["ms: mean per run over the profiled rounds; share: of the end-to-end mean (the rows, between ops "
             "included, add up to 100%); calls: kernel calls per run."]
    if by == "block":
        notes.append("A block is the module path the exporter wrote into the node names, cut at the depth; the "
                     "first level keeps its index (layer_3.1: block 1 of layer_3), deeper levels add up their "
                     "repeats (global_rep: all its layers). Kernels without a path in their names take the block "
                     "of the node whose output they read; (root) is the network's own forward.")
    else:
        notes.append("covers: the original ops ORT fused into that kernel; (inserted by ORT): a kernel with no "
                     "original node, such as a layout conversion (ReorderInput/ReorderOutput).")
    return Table(title, headers, rows, ["left"] * len(head) + ["right"] * (3 * len(profiles)), notes)


def _top_tables(profiles: Sequence[Profile], top: int) -> list[Table]:
    tables = []
    for p in profiles:
        rows = [[str(i), n.node, n.op_type, n.covers_text, n.block, format_ms(n.mean_ms), _pct(n.share)]
                for i, n in enumerate(p.top(top), start=1)]
        tables.append(Table(profile_label(p),
                            ["#", "node", "op type", "covers", "block", "ms", "share"], rows,
                            ["right", "left", "left", "left", "left", "right", "right"]))
    return tables


def _comparison_tables(comparisons: Sequence[OpComparison]) -> list[Table]:
    tables = []
    for c in comparisons:
        rows = []
        for name, old, new in c.rows:
            delta = new - old if math.isfinite(old) and math.isfinite(new) else math.nan
            ratio = new / old if math.isfinite(old) and math.isfinite(new) and old > 0 else math.nan
            rows.append([name, format_ms(old), format_ms(new),
                         f"{delta:+.{decimals(delta)}f}" if math.isfinite(delta) else "-",
                         f"{ratio:.2f}" if math.isfinite(ratio) else "-"])
        tables.append(Table(f"{c.label} against {c.base_label}", ["op type", "base ms", "ms", "change ms", "ratio"],
                            rows, ["left", "right", "right", "right", "right"]))
    return tables


def build_document(
    profiles: Sequence[Profile],
    by: str | None = None,
    top: int = 10,
    comparisons: Sequence[OpComparison] = (),
    base_label: str = "base",
) -> Document:
    """What a profile says: end to end, then by block, by op type and the top kernels (``by=None``, the summary
    file), or only the ``by`` view (``block``, ``op``, or ``node``: the top kernels); the comparison last."""
    if not profiles:
        raise UserInputError("no profile to show")
    if by is not None and by not in BY:
        raise UserInputError(f"--by must be one of {', '.join(BY)}, not {by!r}")
    first = profiles[0]
    setup = [
        f"ONNX Runtime's own profiler (onnxruntime {first.onnxruntime_version}, {first.provider}, graph "
        f"optimisation '{first.graph_opt}'). Per model and thread count: 1 cold run and {_rounds(first.warmup)} "
        f"of warm-up, then {_rounds(first.rounds)} profiled; end to end is ORT's model_run of those rounds, node "
        "time the kernels inside it, and what is left is shown as between ops."
    ]
    if all(p.plain_ms for p in profiles):
        setup[0] += " The same number of rounds was also timed without the profiler, as mbbench bench times them."
    machines = list(dict.fromkeys(f"{p.target or p.host} ({p.cpu_model}, {p.cores} cores)" for p in profiles))
    setup.append(f"Measured on {'; '.join(machines)}.")
    tables = [_end_to_end_table(profiles)]
    if by in (None, "block"):
        tables.append(_side_by_side(profiles, "block"))
    if by in (None, "op"):
        tables.append(_side_by_side(profiles, "op"))
    sections = [Section("Where the time goes", tables)]
    if by in (None, "node"):
        sections.append(Section(f"The {top} slowest kernels", _top_tables(profiles, top)))
    if comparisons:
        sections.append(Section(f"Compared with {base_label}", _comparison_tables(comparisons)))
    return Document("mbbench profile: where the milliseconds go", setup, sections)


# --- the plot -----------------------------------------------------------------------------------------------


def plot_profiles(profiles: Sequence[Profile], by: str = "block", most: int = 11):
    """A horizontal stacked bar per profile: its ms per run split by block (or op type, ``by="op"``), the ``most``
    largest groups named, the rest as "other", between ops hatched."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    from mbbench.report.plots import plain

    kind = "op" if by == "op" else "block"
    per = [{g.name: g.mean_ms for g in (p.by_op() if kind == "op" else p.by_block())} for p in profiles]
    largest = sorted({n for groups in per for n in groups},
                     key=lambda n: -max(groups.get(n, 0.0) / p.end_to_end_ms for groups, p in zip(per, profiles)))
    named = largest[:most]
    if kind == "block":
        named = [n for n in _merged_order([list(g) for g in per]) if n in named]
    fig = Figure(figsize=(11, 1.6 + 0.55 * len(profiles)), layout="constrained")
    ax = fig.subplots()
    colours = [colormaps["tab20"](i % 20) for i in range(len(named))]
    y = list(range(len(profiles)))[::-1]
    left = [0.0] * len(profiles)
    segments = [(n, [groups.get(n, 0.0) for groups in per], {"color": colours[i]}) for i, n in enumerate(named)]
    other = [sum(v for n, v in groups.items() if n not in named) for groups in per]
    if any(other):
        segments.append(("other", other, {"color": "#bbbbbb"}))
    segments.append((BETWEEN_OPS, [p.between_ops_ms for p in profiles],
                     {"color": "white", "edgecolor": "#777777", "hatch": "//"}))
    for name, widths, style in segments:
        ax.barh(y, widths, left=left, height=0.6, label=plain(name), **style)
        left = [a + b for a, b in zip(left, widths)]
    for yi, p in zip(y, profiles):
        ax.text(p.end_to_end_ms, yi, f"  {format_ms(p.end_to_end_ms)} ms, nodes {_pct(p.coverage)}",
                va="center", fontsize=8)
    ax.set_yticks(y, [plain(profile_label(p)) for p in profiles])
    ax.set_xlabel("ms per run (mean of the profiled rounds)")
    ax.set_xlim(0, max(p.end_to_end_ms for p in profiles) * 1.3)
    ax.set_title(f"Where the milliseconds go, by {'op type' if kind == 'op' else 'block'}")
    fig.legend(loc="outside right upper", fontsize=8)
    return fig


def _png(fig) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    return buffer.getvalue()


# --- writing ------------------------------------------------------------------------------------------------


def trace_names(profiles: Sequence[Profile]) -> list[str]:
    """``trace-<model>-<threads>t.json`` per profile (the target added, and a counter where two would clash)."""
    names, seen = [], set()
    for p in profiles:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", p.label).strip("-") or "model"
        name, n = f"trace-{stem}-{p.threads}t.json", 1
        while name in seen:
            n += 1
            name = f"trace-{stem}-{p.threads}t-{n}.json"
        seen.add(name)
        names.append(name)
    return names


def write_profile(
    profiles: Sequence[Profile],
    folder: str | os.PathLike,
    by: str = "block",
    top: int = 10,
    comparisons: Sequence[OpComparison] = (),
    base_label: str = "base",
    traces: bool = True,
) -> list[Path]:
    """Write ``profile.csv``, ``profile.md``, ``profile.png`` (stacked by ``by``: block, or op type) and, with
    ``traces``, each raw ORT trace into ``folder`` (see :func:`prepare_folder`); every file is staged first and
    renamed into place at the end, so an error leaves none of them half-written. Returns the paths written."""
    folder = Path(folder)
    document = build_document(profiles, None, top, comparisons, base_label)
    files: dict[Path, bytes] = {
        folder / CSV_NAME: to_csv(profiles).encode("utf-8"),
        folder / SUMMARY_NAME: to_markdown(document).encode("utf-8"),
        folder / PLOT_NAME: _png(plot_profiles(profiles, by)),
    }
    for p, name in zip(profiles, trace_names(profiles)):
        if p.trace and traces:
            files[folder / name] = p.trace.encode("utf-8")
    clean_stale_temps(folder)
    staged: list[tuple[Path, Path]] = []
    try:
        for path, data in files.items():
            staged.append((stage_bytes(path, data), path))
        for tmp, path in staged:
            os.replace(tmp, path)
    except BaseException:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    return list(files)
