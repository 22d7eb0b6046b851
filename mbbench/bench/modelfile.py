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

import hashlib
import json
import os
import re
import stat
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbbench.bench.schema import MANIFEST_COLUMNS
from mbbench.errors import UserInputError

Note = Callable[[str], None]
#: Turns a registry name or alias into the canonical registry name (raises a UserInputError when unknown).
Resolve = Callable[[str], str]


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

    def manifest_columns(self) -> dict[str, Any]:
        """The manifest facts joined into every row of this file (all None for a foreign ONNX file)."""
        facts = self.manifest or {}
        return {column: facts.get(column) for column in MANIFEST_COLUMNS}


def inspect_model(path: str | Path, note: Note | None = None) -> ModelFile:
    """Hash the file, read its default-domain opset and its export manifest if one sits next to it."""
    path = Path(path)
    data = path.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    manifest = read_manifest(path, note)
    opset = read_opset(data)
    if opset is None and manifest and isinstance(manifest.get("opset"), int):
        opset = manifest["opset"]
    if manifest and manifest.get("sha256") and manifest["sha256"] != sha and note:
        note(f"{path}: its manifest was written for a different file (sha256 differs); its facts may be stale")
    label = str(manifest["model"]) if manifest and manifest.get("model") else path.stem
    return ModelFile(path=path, label=label, sha256=sha, opset=opset, manifest=manifest)


def read_manifest(onnx_path: str | Path, note: Note | None = None) -> dict[str, Any] | None:
    """The mbbench export manifest ``<stem>.json`` next to an ONNX file, or None if there is none."""
    path = Path(onnx_path).with_suffix(".json")
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        if note:
            note(f"{path}: ignored, it is not a readable JSON manifest ({exc})")
        return None
    if not isinstance(data, dict):
        if note:
            note(f"{path}: ignored, a manifest must be a JSON object")
        return None
    return data


def read_opset(model_bytes: bytes) -> int | None:
    """The default-domain (``ai.onnx``) opset of a serialized ModelProto, or None if it cannot be read.

    ModelProto field 8 is ``opset_import`` (OperatorSetIdProto: 1 = domain, 2 = version); the graph (field 7)
    is skipped by its length prefix, so this costs one pass over the top-level fields only.
    """
    try:
        for number, wire, value in protobuf_fields(model_bytes):
            if number == 8 and wire == 2:
                domain, version = "", None
                for sub_number, sub_wire, sub_value in protobuf_fields(value):
                    if sub_number == 1 and sub_wire == 2:
                        domain = bytes(sub_value).decode("utf-8", "replace")
                    elif sub_number == 2 and sub_wire == 0:
                        version = sub_value
                if domain in ("", "ai.onnx") and version is not None:
                    return int(version)
    except (ValueError, IndexError):
        return None
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
) -> list[ModelFile]:
    """Turn MODEL arguments into ONNX files to measure, labelled (see :func:`assign_labels`).

    An argument is an ``.onnx`` file, a folder (its ``*.onnx``, not recursive) or a registry name such as
    ``mobileone-s0``. A name resolves through ``resolve`` (e.g. ``mbbench.models.resolve_name``) to the files
    that ``mbbench export`` wrote for it in ``models_dir``; when there are several (other opsets, resolutions, unfused or
    fold variants) the newest by modification time is used and ``note`` names the others, because the
    latest export is almost always the one just made. With no argument, every ``*.onnx`` in ``models_dir``.
    The same file given twice is measured once.
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
        paths.extend(_resolve_one(arg, models_dir, note, resolve))
    first: dict[Path, Path] = {}
    for p in paths:
        first.setdefault(p.resolve(), p)  # the first spelling of a file wins (a link after its target is a repeat)
    unique = list(first.values())
    return assign_labels([inspect_model(p, note) for p in unique])


def onnx_files(folder: Path, note: Note | None = None) -> list[Path]:
    """The regular ``*.onnx`` files of ``folder`` (links to regular files count); the rest skipped with a note."""
    found = []
    for path in sorted(folder.glob("*.onnx")):
        kind = _file_kind(path)
        if kind is None:
            found.append(path)
        elif note:
            note(f"skipped {path}: it is {kind}, not a regular file")
    return found


def _file_kind(path: Path) -> str | None:
    """None for a regular file (or a link to one), else what it is, in words."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "a dangling link" if os.path.islink(path) else "missing"
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _resolve_one(arg: str | Path, models_dir: Path, note: Note | None, resolve: Resolve | None) -> list[Path]:
    path = Path(arg)
    if path.is_dir():
        found = onnx_files(path, note)
        if not found:
            raise ModelNotFoundError(f"the folder {path} has no .onnx files; pass a folder of exported models")
        return found
    kind = _file_kind(path)
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
    return [_exported_file(text, models_dir, note, resolve)]


def _exported_file(name: str, models_dir: Path, note: Note | None, resolve: Resolve | None) -> Path:
    if resolve is None:
        raise ModelNotFoundError(
            f"{name!r} is not a file or folder, and model names cannot be resolved here; pass an .onnx path"
        )
    canonical = resolve(name)
    pattern = re.compile(rf"^{re.escape(canonical)}-\d+-opset\d+(-.+)?$")
    matches = []
    for candidate in onnx_files(models_dir) if models_dir.is_dir() else []:
        manifest = read_manifest(candidate)
        owner = manifest.get("model") if manifest else None
        if owner == canonical or (owner is None and pattern.match(candidate.stem)):
            matches.append(candidate)
    if not matches:
        raise ModelNotFoundError(
            f"{canonical} has no exported file in {models_dir}/; run 'mbbench export {canonical}' first or pass a path"
        )
    # newest first; the name breaks mtime ties so the choice never depends on directory order
    matches.sort(key=lambda p: (-p.stat().st_mtime_ns, p.name))
    if len(matches) > 1 and note:
        others = ", ".join(p.name for p in matches[1:])
        note(f"{name}: using {matches[0]} (the newest of {len(matches)} exports; also {others}); pass a path to pick")
    return matches[0]


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
        f if f.label == label else ModelFile(f.path, label, f.sha256, f.opset, f.manifest)
        for f, label in zip(files, labels)
    ]
