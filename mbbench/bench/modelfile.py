"""Which ONNX files a sweep measures, and the facts about each file that go into a row.

Standard library only: the opset is read straight from the protobuf wire format so that a phone without the
``onnx`` package still records it, and the registry (which imports torch) is imported only when an argument
is neither a file nor a folder.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbbench.bench.schema import MANIFEST_COLUMNS
from mbbench.errors import UserInputError

Note = Callable[[str], None]


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
        for number, wire, value in _fields(model_bytes, keep={8}):
            if number == 8 and wire == 2:
                domain, version = "", None
                for sub_number, sub_wire, sub_value in _fields(value, keep={1}):
                    if sub_number == 1 and sub_wire == 2:
                        domain = sub_value.decode("utf-8", "replace")
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


def _fields(buf: bytes | memoryview, keep: set[int]) -> Iterable[tuple[int, int, Any]]:
    """(field number, wire type, value) of a protobuf message; length-delimited values only for ``keep``."""
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
            value, pos = bytes(view[pos : pos + length]) if number in keep else None, pos + length
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
) -> list[ModelFile]:
    """Turn MODEL arguments into ONNX files to measure, labelled (see :func:`assign_labels`).

    An argument is an ``.onnx`` file, a folder (its ``*.onnx``, not recursive) or a registry name such as
    ``mobileone-s0``. A name resolves through ``mbbench.models.resolve_name`` to the files that ``mbbench
    export`` wrote for it in ``models_dir``; when there are several (other opsets, resolutions, unfused or
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
        paths = sorted(models_dir.glob("*.onnx"))
        if not paths:
            raise ModelNotFoundError(
                f"no MODEL given and {models_dir}/ has no .onnx files; pass .onnx files or run 'mbbench export' first"
            )
    for arg in args:
        paths.extend(_resolve_one(arg, models_dir, note))
    unique = list({p.resolve(): p for p in paths}.values())
    return assign_labels([inspect_model(p, note) for p in unique])


def _resolve_one(arg: str | Path, models_dir: Path, note: Note | None) -> list[Path]:
    path = Path(arg)
    if path.is_dir():
        found = sorted(path.glob("*.onnx"))
        if not found:
            raise ModelNotFoundError(f"the folder {path} has no .onnx files; pass a folder of exported models")
        return found
    if path.is_file():
        if path.suffix.lower() != ".onnx":
            raise ModelNotFoundError(f"{path} is not an .onnx file; pass an ONNX model, a folder or a model name")
        return [path]
    text = str(arg)
    if "/" in text or "\\" in text or path.suffix.lower() == ".onnx":
        raise ModelNotFoundError(f"no such file or folder: {text}; check the path")
    return [_exported_file(text, models_dir, note)]


def _exported_file(name: str, models_dir: Path, note: Note | None) -> Path:
    try:
        from mbbench.models import resolve_name  # imports torch: only when a name really needs it
    except ImportError as exc:
        raise ModelNotFoundError(
            f"{name!r} is not a file or folder, and model names cannot be resolved here ({exc}); pass an .onnx path"
        ) from None
    canonical = resolve_name(name)
    pattern = re.compile(rf"^{re.escape(canonical)}-\d+-opset\d+(-.+)?$")
    matches = []
    for candidate in sorted(models_dir.glob("*.onnx")) if models_dir.is_dir() else []:
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
