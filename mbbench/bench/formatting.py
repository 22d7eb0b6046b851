"""How mbbench shows a number to a person: one latency format, one set of flag marks, one thread-count label.

Every front end (bench's summary, the portable runner, report, the studies, the CLI) imports these, so the same
row reads the same everywhere (pyperf's ``_formatter``). Standard library only: the portable core uses it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

#: The flags a results row can carry, in the order their marks are shown, with the mark and what it means.
FLAGS: tuple[tuple[str, str, str], ...] = (
    ("oversubscribed", "†", "more threads than the cores this process could use: the row measures contention"),
    ("unstable", "!", "the rounds vary too much (cv above the limit, or a fast and a slow cluster) to trust"),
    ("contended", "‡", "other processes used a meaningful share of the cores during the measurement"),
)
OVERSUBSCRIBED_MARK, UNSTABLE_MARK, CONTENDED_MARK = (mark for _, mark, _ in FLAGS)


def decimals(value: float) -> int:
    """Decimals for a latency in ms: 1 from 100 ms, 2 from 1 ms, three significant digits below 1 ms."""
    magnitude = abs(value)
    if magnitude >= 100:
        return 1
    if magnitude >= 1 or magnitude == 0:
        return 2
    return max(3, 2 - math.floor(math.log10(magnitude)))


def _finite(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def format_ms(value: object, like: object = None) -> str:
    """A latency in ms (``-`` when missing or not finite); with ``like``, as many decimals as ``like`` gets."""
    number = _finite(value)
    if number is None:
        return "-"
    reference = _finite(like)
    return f"{number:.{decimals(number if reference is None else reference)}f}"


def format_latency(mean: object, std: object) -> str:
    """``mean ± std`` in ms, the std with the mean's decimals (``?`` when it is unknown)."""
    std_text = format_ms(std, like=mean)
    return f"{format_ms(mean)} ± {'?' if std_text == '-' else std_text}"


def threads_label(count: object) -> str:
    """``1 thread``, ``2 threads``: the one spelling of a thread count in headers and lines."""
    text = str(count)
    try:
        text = str(int(count))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        pass
    return f"{text} thread" if text == "1" else f"{text} threads"


def is_true(value: object) -> bool:
    """A flag as the CSV spells it (``True``), as pandas reads it (a bool), or as numpy holds it."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    try:
        return bool(value) and value == value  # NaN is not a flag
    except (TypeError, ValueError):
        return False


def flag_marks(row: Mapping[str, object]) -> str:
    """The marks of the flags set on ``row``, each preceded by a space (empty when none is set)."""
    return "".join(f" {mark}" for name, mark, _ in FLAGS if is_true(row.get(name)))


def flag_legend(present: set[str] | frozenset[str]) -> list[str]:
    """One line per flag in ``present`` (names from :data:`FLAGS`): its mark, its name and what it means."""
    return [f"{mark} {name}: {meaning}." for name, mark, meaning in FLAGS if name in present]


# --- what a row measured, in its label ----------------------------------------------------------------------

#: ``mbbench export``'s file stem: ``<name>-<resolution>-opset<N>[-unfused][-<fold>][-<precision>]`` (bench labels
#: a file by its stem when several files of one network are in a run).
_STEM = re.compile(r"^(?P<name>.+?)-(?P<size>\d+)-opset(?P<opset>\d+)(?P<rest>(?:-[a-z0-9]+)*)$")
_PRECISION_WORDS = ("int8-dynamic", "int8", "fp16", "fp32")
_FOLD_WORDS = ("col2im", "unfold", "pixel", "reshape")


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _size(input_shape: str) -> str:
    """``224`` for a ``1x3x224x224`` input, ``224x320`` for a non-square one, "" when not one image input."""
    dims = input_shape.split("x") if input_shape and ";" not in input_shape and ":" not in input_shape else []
    if len(dims) != 4 or not all(d.isdigit() for d in dims):
        return ""
    return dims[2] if dims[2] == dims[3] else f"{dims[2]}x{dims[3]}"


def row_facts(row: Mapping[str, object]) -> dict[str, str]:
    """What defines the file a row measured, as text ("" when unknown): the network's name (the label without
    the export-name suffixes), precision, input size, opset, fold, ``unfused`` and the file's sha256."""
    label = _text(row.get("model"))
    facts = {
        "name": label,
        "precision": _text(row.get("precision")).lower(),
        "size": _size(_text(row.get("input_shape"))),
        "opset": _text(row.get("opset")),
        "fold": _text(row.get("fold")),
        "unfused": "unfused" if _text(row.get("reparameterized")).lower() in ("false", "0") else "",
        "sha256": _text(row.get("sha256")),
        # a CSV from before runtimes were an axis measured ONNX Runtime
        "runtime": _text(row.get("runtime")) or "onnxruntime",
    }
    match = _STEM.match(label)
    if match and (not facts["opset"] or facts["opset"] == match["opset"]):
        words = [w for w in match["rest"].split("-") if w]
        rest = match["rest"]
        for word in _PRECISION_WORDS:
            if rest.endswith(f"-{word}"):
                facts["precision"] = facts["precision"] or word
                rest = rest[: -len(word) - 1]
                break
        words = [w for w in rest.split("-") if w]
        if all(w in _FOLD_WORDS or w == "unfused" for w in words):
            facts["name"] = match["name"]
            facts["size"] = facts["size"] or match["size"]
            facts["opset"] = facts["opset"] or match["opset"]
            facts["fold"] = facts["fold"] or next((w for w in words if w in _FOLD_WORDS), "")
            facts["unfused"] = facts["unfused"] or ("unfused" if "unfused" in words else "")
    return facts


#: The facts every row's label carries where the rows disagree on them, and how each is written.
_MIXED = (("precision", "{}"), ("size", "{}px"), ("opset", "opset {}"), ("runtime", "{}"))
#: The facts that tell two files of one network apart when all of the above agree.
_SEPARATING = (("fold", "fold {}"), ("unfused", "{}"), ("sha256", "sha256 {:.8}"))


def _settings(row: Mapping[str, object]) -> dict[str, str]:
    """The runtime settings a row read back (``applied_settings``: ``arena=off;mem_pattern=on``) as a dict."""
    text = _text(row.get("applied_settings"))
    return dict(part.split("=", 1) for part in text.split(";") if "=" in part)


def _qualify_settings(rows, facts, qualifiers) -> None:
    """Where rows that read the same so far ran with different runtime settings (``--runtime-option
    enable_cpu_mem_arena=0`` beside the default), add the settings that differ among them (``arena=off``)."""
    groups: dict[tuple, list[int]] = {}
    for i, (f, q) in enumerate(zip(facts, qualifiers)):
        groups.setdefault((f["name"], tuple(q)), []).append(i)
    for members in groups.values():
        settings = {i: _settings(rows[i]) for i in members}
        known = [s for s in settings.values() if s]
        keys = sorted({k for s in known for k in s})
        differing = [k for k in keys if len({s.get(k, "") for s in known}) > 1]
        for i in members:
            if differing and settings[i]:
                qualifiers[i].append(("settings", ", ".join(f"{k}={settings[i].get(k, '-')}" for k in differing)))


def variant_labels(rows: Sequence[Mapping[str, object]]) -> tuple[list[str], list[str], list[str]]:
    """What to call each row so that it says what it measured: ``(labels, networks, shared)``.

    A label is the network's name, then in parentheses the precision, input size and opset wherever the rows
    disagree on them (``mobileone-s0 (int8)`` beside ``mobileone-s0 (fp32)``), then the fold, ``unfused`` or the
    sha256 where two files of one network would otherwise read the same, then the runtime settings that differ
    between rows that would still read the same (``arena=off``). ``networks`` are the labels without
    the precision (what a precision comparison groups by); ``shared`` says in words what every row has in common
    (``fp32``, ``224x224 input``, ``opset 17``), for a table's title or notes.
    """
    facts = [row_facts(r) for r in rows]
    qualifiers: list[list[tuple[str, str]]] = [[] for _ in rows]
    shared = []
    for key, form in _MIXED:
        values = [f[key] for f in facts]
        known = set(values) - {""}
        if len(known) == 1 and "" not in values:
            value = next(iter(known))
            shared.append({"size": f"{value}x{value} input" if value.isdigit() else f"{value} input",
                           "opset": f"opset {value}", "runtime": f"runtime {value}"}.get(key, value))
        elif known:
            for q, value in zip(qualifiers, values):
                if value:
                    q.append((key, form.format(value)))
    for key, form in _SEPARATING:
        files: dict[tuple, set[str]] = {}
        for f, q in zip(facts, qualifiers):
            files.setdefault((f["name"], tuple(q)), set()).add(f["sha256"] or f["name"])
        clash = {k for k, shas in files.items() if len(shas) > 1}
        for f, q in zip(facts, qualifiers):
            if (f["name"], tuple(q)) in clash and f[key]:
                q.append((key, form.format(f[key])))
    _qualify_settings(rows, facts, qualifiers)
    labels, networks = [], []
    for f, q in zip(facts, qualifiers):
        labels.append(f"{f['name']} ({', '.join(text for _, text in q)})" if q else f["name"])
        rest = [text for key, text in q if key != "precision"]
        networks.append(f"{f['name']} ({', '.join(rest)})" if rest else f["name"])
    return labels, networks, shared
