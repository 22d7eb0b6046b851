"""Which ONNX files a sweep measures, and the facts about each file that go into a row.

Standard library only: the opset is read straight from the protobuf wire format so that a phone without the
``onnx`` package still records it. The measuring core knows no model zoo: a registry name is turned into its
canonical name by the ``resolve`` callable the caller passes (the CLI and the library pass
``mbbench.models.resolve_name``); without one, only paths are accepted.

Only regular files are models: a folder is globbed for ``*.onnx`` and anything that is not a regular file there
(a folder named ``x.onnx``, a dangling link, a FIFO, a link to a device) is skipped with a note naming it and
never opened, because reading a FIFO hangs and reading ``/dev/zero`` never ends.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbbench.bench.schema import MANIFEST_COLUMNS
from mbbench._io import file_kind, sha256_file
from mbbench.errors import UserInputError

Note = Callable[[str], None]


@dataclass(frozen=True)
class RegistryName:
    """A registry model as name resolution needs it: its canonical name and the defaults of its exports."""

    name: str
    #: the model's default input resolution (what ``mbbench export`` writes without ``--resolution``)
    resolution: int | None = None
    #: the opset ``mbbench export`` writes without ``--opset``
    opset: int | None = None


#: Turns a registry name or alias into a :class:`RegistryName` (or just the canonical name); raises a
#: UserInputError when the name is unknown.
Resolve = Callable[[str], "RegistryName | str"]


@dataclass(frozen=True)
class ExportSelection:
    """Which of a model's exports a registry name stands for; None means the rule's default.

    The rule: precision fp32, the model's default resolution, the default opset, the re-parameterized form,
    and of MobileViT v2's fold forms the one ``export --fold auto`` prefers (col2im, then pixel, then reshape).
    """

    precision: str | None = None
    opset: int | None = None
    resolution: int | None = None

    def describe(self, name: RegistryName) -> str:
        resolution = self.resolution or name.resolution
        opset = self.opset or name.opset
        parts = [self.precision or "fp32"]
        if resolution:
            parts.append(f"{resolution}x{resolution}")
        if opset:
            parts.append(f"opset {opset}")
        return ", ".join(parts)


#: ``--fold auto``'s preference among MobileViT v2's fold forms (a file without a fold comes first: other models).
FOLD_PREFERENCE = (None, "col2im", "pixel", "unfold", "reshape")


class ModelNotFoundError(UserInputError):
    """A MODEL argument names no file, folder or exported registry model."""


@dataclass(frozen=True)
class ModelFile:
    """One ONNX file to measure. ``label`` is the ``model`` column (see :func:`assign_labels`)."""

    path: Path
    label: str
    sha256: str
    opset: int | None
    manifest: Mapping[str, Any] | None = None
    #: the runtime that runs this file (an export is onnxruntime's; a converted artifact names its own)
    runtime: str = "onnxruntime"
    #: for a runtime's artifact: the export it was made from (what extra columns and the label follow)
    source: Path | None = None
    #: for a runtime's artifact: ``source_sha256`` and its fidelity to the export (``conversion_cosine``, ...)
    conversion: Mapping[str, Any] | None = None

    @property
    def refusal(self) -> str | None:
        """Why the runtime cannot run this model (a recorded "not supported" cell), or None."""
        return (self.conversion or {}).get("unsupported")

    @property
    def origin(self) -> Path:
        """The export this row's numbers belong to: the file itself, or the export an artifact was made from."""
        return self.source or self.path

    def conversion_columns(self) -> dict[str, Any]:
        columns = {"source_sha256": self.sha256, "conversion_cosine": None, "conversion_max_abs": None,
                   **(self.conversion or {})}
        columns.pop("unsupported", None)
        columns.pop("input_shape", None)
        return columns

    def manifest_columns(self) -> dict[str, Any]:
        """The manifest facts joined into every row of this file (all None for a foreign ONNX file)."""
        facts = self.manifest or {}
        return {column: facts.get(column) for column in MANIFEST_COLUMNS}


#: Protobuf's limit for one message: a single-file ONNX model cannot be larger (bigger models keep their weights
#: in external data files). Nothing bigger is hashed or opened.
MAX_MODEL_BYTES = 2**31 - 1
#: A manifest is a few kB; reading more is not reading a manifest.
MAX_MANIFEST_BYTES = 1 << 20


def inspect_model(path: str | Path, note: Note | None = None) -> ModelFile:
    """Hash the file, read its default-domain opset and its export manifest if one sits next to it.

    Bounded whatever the file holds: at most :data:`MAX_MODEL_BYTES` are hashed, in chunks, and the opset is read
    from the top-level fields alone (the graph is skipped by its length, not read).
    """
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise ModelNotFoundError(
            f"{path} is {size:,} bytes, more than the 2 GiB a single-file ONNX model can hold; pass an ONNX model "
            "(one with external data keeps its weights in other files)"
        )
    sha = sha256_file(path)
    manifest = read_manifest(path, note)
    opset = read_opset_file(path)
    if opset is None and manifest and _integer(manifest.get("opset")):
        opset = manifest["opset"]
    if manifest and manifest.get("sha256") and manifest["sha256"] != sha and note:
        note(f"{path}: its manifest was written for a different file (sha256 differs); its facts may be stale")
    label = manifest["model"] if manifest and _label(manifest.get("model")) else path.stem
    return ModelFile(path=path, label=label, sha256=sha, opset=opset, manifest=manifest)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


def _label(value: object) -> bool:
    """A manifest's model name as mbbench writes them (it becomes the ``model`` column, so nothing else)."""
    return isinstance(value, str) and bool(_LABEL.match(value))


def read_manifest(onnx_path: str | Path, note: Note | None = None) -> dict[str, Any] | None:
    """The mbbench export manifest ``<stem>.json`` next to an ONNX file, or None if there is none.

    A manifest is trusted only for plain facts: one larger than :data:`MAX_MANIFEST_BYTES`, nested deeper than
    JSON needs, or not an object is ignored with a note, and a fact that is not a plain number, string or bool
    is dropped (it would land in a results column).
    """
    path = Path(onnx_path).with_suffix(".json")
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_MANIFEST_BYTES + 1)
        if len(raw) > MAX_MANIFEST_BYTES:
            raise ValueError(f"larger than {MAX_MANIFEST_BYTES >> 10} KiB")
        data = json.loads(raw.decode("utf-8"))
    except RecursionError:
        if note:
            note(f"{path}: ignored, it is nested too deeply to be a manifest")
        return None
    except (OSError, ValueError) as exc:
        if note:
            note(f"{path}: ignored, it is not a readable JSON manifest ({str(exc)[:120]})")
        return None
    if not isinstance(data, dict):
        if note:
            note(f"{path}: ignored, a manifest must be a JSON object")
        return None
    return {key: value for key, value in data.items() if isinstance(key, str) and _plain_fact(value)}


def _plain_fact(value: object, depth: int = 0) -> bool:
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return len(value) <= 4096
    if isinstance(value, list) and depth < 2:
        return len(value) <= 64 and all(_plain_fact(v, depth + 1) for v in value)
    if isinstance(value, dict) and depth < 2:
        return len(value) <= 64 and all(isinstance(k, str) and _plain_fact(v, depth + 1) for k, v in value.items())
    return False


def read_opset(model_bytes: bytes) -> int | None:
    """The default-domain (``ai.onnx``) opset of a serialized ModelProto, or None if it cannot be read.

    ModelProto field 8 is ``opset_import`` (OperatorSetIdProto: 1 = domain, 2 = version); the graph (field 7)
    is skipped by its length prefix, so this costs one pass over the top-level fields only.
    """
    try:
        for number, wire, value in protobuf_fields(model_bytes):
            if number == 8 and wire == 2:
                version = _opset_version(value)
                if version is not None:
                    return version
    except (ValueError, IndexError):
        return None
    return None


def _opset_version(entry: bytes | memoryview) -> int | None:
    domain, version = "", None
    for sub_number, sub_wire, sub_value in protobuf_fields(entry):
        if sub_number == 1 and sub_wire == 2:
            domain = bytes(sub_value).decode("utf-8", "replace")
        elif sub_number == 2 and sub_wire == 0:
            version = sub_value
    return int(version) if domain in ("", "ai.onnx") and version is not None else None


#: ModelProto has about a dozen top-level fields (a few opset imports and metadata entries, local functions):
#: a file with more is not one, whatever its size.
_MAX_TOP_FIELDS = 10_000
_MAX_OPSET_ENTRY = 1 << 16


def read_opset_file(path: str | Path) -> int | None:
    """:func:`read_opset` straight from the file: top-level fields only, the graph and every other long field
    skipped by seeking past it, so the time and memory are bounded whatever the file holds (a zero-filled or
    sparse multi-GB file ends at its first invalid field)."""
    try:
        with open(path, "rb") as handle:
            for _ in range(_MAX_TOP_FIELDS):
                key = _file_varint(handle)
                if key is None:
                    return None
                number, wire = key >> 3, key & 7
                if number == 0:
                    return None  # field 0 does not exist: not a protobuf message
                if wire == 0:
                    if _file_varint(handle) is None:
                        return None
                elif wire == 1:
                    handle.seek(8, os.SEEK_CUR)
                elif wire == 5:
                    handle.seek(4, os.SEEK_CUR)
                elif wire == 2:
                    length = _file_varint(handle)
                    if length is None:
                        return None
                    if number == 8 and length <= _MAX_OPSET_ENTRY:
                        version = _opset_version(handle.read(length))
                        if version is not None:
                            return version
                    else:
                        handle.seek(length, os.SEEK_CUR)
                else:
                    return None
    except (OSError, ValueError, IndexError):
        return None
    return None


def _file_varint(handle) -> int | None:
    result = shift = 0
    while shift <= 63:
        byte = handle.read(1)
        if not byte:
            return None
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
    return None


def _varint(buf: bytes | memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def protobuf_fields(buf: bytes | memoryview) -> Iterable[tuple[int, int, Any]]:
    """(field number, wire type, value) of a serialized protobuf message, one level deep.

    Varints as ints, length-delimited values as memoryviews into ``buf`` (no copy: a nested message is read by
    calling this again on its value), fixed-size values as None. Raises ValueError on a malformed message.
    """
    view = memoryview(buf)
    pos, end = 0, len(view)
    while pos < end:
        key, pos = _varint(view, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0: not a protobuf message")  # zero-filled data would loop forever
        if wire == 0:
            value, pos = _varint(view, pos)
        elif wire == 1:
            value, pos = None, pos + 8
        elif wire == 2:
            length, pos = _varint(view, pos)
            value, pos = view[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = None, pos + 4
        else:  # groups are not used by onnx.proto; anything else is not a ModelProto
            raise ValueError(f"unexpected wire type {wire}")
        if pos > end:
            raise ValueError("truncated message")
        yield number, wire, value


def resolve_models(
    args: Iterable[str | Path] | str | Path | None,
    models_dir: str | Path = "models",
    note: Note | None = None,
    resolve: Resolve | None = None,
    select: ExportSelection | None = None,
) -> list[ModelFile]:
    """Turn MODEL arguments into ONNX files to measure, labelled (see :func:`assign_labels`).

    An argument is an ``.onnx`` file, a folder (its ``*.onnx``, not recursive) or a registry name such as
    ``mobileone-s0``. A name resolves through ``resolve`` (the registry, passed by the layer above) to one of
    the files that ``mbbench export`` wrote for it in ``models_dir``, by the rule of :class:`ExportSelection`
    (fp32, the model's default resolution, the default opset, unless ``select`` asks otherwise): never the
    newest file, never silently one of several. With no argument, every ``*.onnx`` in ``models_dir``. The same
    file given twice is measured once.
    """
    models_dir = Path(models_dir)
    if args is None or isinstance(args, (str, Path)):
        args = [] if args is None else [args]
    args = list(args)
    paths: list[Path] = []
    if not args:
        if not models_dir.is_dir():
            raise ModelNotFoundError(
                f"no MODEL given and there is no {models_dir}/ folder; pass .onnx files or run 'mbbench export' first"
            )
        paths = onnx_files(models_dir, note)
        if not paths:
            raise ModelNotFoundError(
                f"no MODEL given and {models_dir}/ has no .onnx files; pass .onnx files or run 'mbbench export' first"
            )
    for arg in args:
        paths.extend(_resolve_one(arg, models_dir, note, resolve, select or ExportSelection()))
    first: dict[Path, Path] = {}
    for p in paths:
        first.setdefault(p.resolve(), p)  # the first spelling of a file wins (a link after its target is a repeat)
    unique = list(first.values())
    return assign_labels([inspect_model(p, note) for p in unique])


def onnx_files(folder: Path, note: Note | None = None) -> list[Path]:
    """The regular ``*.onnx`` files of ``folder`` (links to regular files count); the rest skipped with a note."""
    found = []
    for path in sorted(folder.glob("*.onnx")):
        kind = file_kind(path)
        if kind is None:
            found.append(path)
        elif note:
            note(f"skipped {path}: it is {kind}, not a regular file")
    return found


def _resolve_one(arg: str | Path, models_dir: Path, note: Note | None, resolve: Resolve | None,
                 select: ExportSelection) -> list[Path]:
    path = Path(arg)
    if path.is_dir():
        found = onnx_files(path, note)
        if not found:
            raise ModelNotFoundError(f"the folder {path} has no .onnx files; pass a folder of exported models")
        return found
    kind = file_kind(path)
    if kind is None:
        if path.suffix.lower() != ".onnx":
            raise ModelNotFoundError(f"{path} is not an .onnx file; pass an ONNX model, a folder or a model name")
        return [path]
    if kind not in ("missing", "a dangling link"):
        raise ModelNotFoundError(f"{path} is {kind}, not a regular file; pass an ONNX model file")
    text = str(arg)
    if kind == "a dangling link":
        raise ModelNotFoundError(f"{text} is a dangling link; point it at an .onnx file")
    if "/" in text or "\\" in text or path.suffix.lower() == ".onnx":
        raise ModelNotFoundError(f"no such file or folder: {text}; check the path")
    return [_exported_file(text, models_dir, note, resolve, select)]


_STEM = re.compile(r"^(?P<name>.+?)-(?P<resolution>\d+)-opset(?P<opset>\d+)(?P<rest>(-[a-z0-9]+)*)$")
_PRECISION_SUFFIXES = ("int8-dynamic", "int8", "fp16")


def export_facts(path: Path, manifest: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What defines an export (model, precision, resolution, opset, reparameterized, fold): from its manifest,
    else from an ``mbbench export`` file name; None when neither tells."""
    if manifest and _label(manifest.get("model")):
        return {
            "model": manifest.get("model"),
            "precision": manifest.get("precision") or "fp32",
            "resolution": manifest.get("resolution"),
            "opset": manifest.get("opset"),
            "reparameterized": manifest.get("reparameterized", True),
            "fold": manifest.get("fold"),
        }
    match = _STEM.match(path.stem)
    if match is None:
        return None
    rest = match["rest"]
    precision = "fp32"
    for suffix in _PRECISION_SUFFIXES:
        if rest.endswith(f"-{suffix}"):
            precision, rest = suffix, rest[: -len(suffix) - 1]
            break
    words = [w for w in rest.split("-") if w]
    fold = next((w for w in words if w in FOLD_PREFERENCE), None)
    return {"model": match["name"], "precision": precision, "resolution": int(match["resolution"]),
            "opset": int(match["opset"]), "reparameterized": "unfused" not in words, "fold": fold}


def _describe_export(facts: Mapping[str, Any]) -> str:
    parts = [str(facts["precision"]), f"{facts['resolution']}x{facts['resolution']}", f"opset {facts['opset']}"]
    if not facts["reparameterized"]:
        parts.append("unfused")
    if facts["fold"]:
        parts.append(f"fold {facts['fold']}")
    return ", ".join(parts)


def _listing(exports: list[tuple[Path, dict[str, Any]]], shown: int = 5) -> str:
    ordered = sorted(exports, key=lambda pf: pf[0].name)
    text = "; ".join(f"{p.name} ({_describe_export(f)})" for p, f in ordered[:shown])
    return text + (f"; and {len(ordered) - shown} more" if len(ordered) > shown else "")


def _exported_file(name: str, models_dir: Path, note: Note | None, resolve: Resolve | None,
                   select: ExportSelection) -> Path:
    """The export a registry name stands for, by the rule of :class:`ExportSelection` (never the newest file).

    When no export meets the rule the error lists the ones there are; when one does and others exist, ``note``
    says which was taken and what else is there.
    """
    if resolve is None:
        raise ModelNotFoundError(
            f"{name!r} is not a file or folder, and model names cannot be resolved here; pass an .onnx path"
        )
    resolved = resolve(name)
    registry = resolved if isinstance(resolved, RegistryName) else RegistryName(str(resolved))
    canonical = registry.name
    candidates: list[tuple[Path, dict[str, Any]]] = []
    for candidate in onnx_files(models_dir) if models_dir.is_dir() else []:
        facts = export_facts(candidate, read_manifest(candidate))
        if facts is not None and facts["model"] == canonical:
            candidates.append((candidate, facts))
    if not candidates:
        raise ModelNotFoundError(
            f"{canonical} has no exported file in {models_dir}/; run 'mbbench export {canonical}' first or pass a path"
        )
    wanted = {
        "precision": select.precision or "fp32",
        "resolution": select.resolution or registry.resolution,
        "opset": select.opset or registry.opset,
        "reparameterized": True,
    }
    matching = [(p, f) for p, f in candidates if all(v is None or f[k] == v for k, v in wanted.items())]
    rank = {fold: i for i, fold in enumerate(FOLD_PREFERENCE)}
    matching.sort(key=lambda pf: (rank.get(pf[1]["fold"], len(rank)), pf[0].name))
    rule = select.describe(registry)
    if not matching:
        raise ModelNotFoundError(
            f"{canonical} has no export in {models_dir}/ that is {rule}; there are: {_listing(candidates)}. "
            "Choose one with --precision, --opset or --resolution, or pass its path"
        )
    best = [pf for pf in matching if rank.get(pf[1]["fold"]) == rank.get(matching[0][1]["fold"])]
    if len(best) > 1:
        raise ModelNotFoundError(
            f"{canonical}: {len(best)} exports in {models_dir}/ are {rule} ({_listing(best)}); pass the path of the "
            "one to measure"
        )
    chosen = matching[0][0]
    others = [(p, f) for p, f in candidates if p != chosen]
    if others and note:
        how = "as asked" if (select.precision, select.opset, select.resolution) != (None, None, None) else (
            "the default for a model name")
        note(f"{name}: measuring {chosen.name} ({rule}: {how}); also in {models_dir}/: "
             f"{_listing(others)}; choose with --precision, --opset, --resolution or a path")
    return chosen


def assign_labels(files: list[ModelFile]) -> list[ModelFile]:
    """Give each file a readable ``model`` label that is unique within the run.

    The manifest's registry name (``mobileone-s0``) when no other file in the run has the same one; otherwise
    the file stem (``mobileone-s0-224-opset17-unfused``); when two files share a stem too (same name in two
    folders), their path without the ``.onnx`` suffix.
    """
    wanted = [f.label for f in files]
    counts = Counter(wanted)
    labels = [label if counts[label] == 1 else f.path.stem for label, f in zip(wanted, files)]
    counts = Counter(labels)
    labels = [label if counts[label] == 1 else f.path.with_suffix("").as_posix() for label, f in zip(labels, files)]
    return [
        f if f.label == label else dataclasses.replace(f, label=label)
        for f, label in zip(files, labels)
    ]
