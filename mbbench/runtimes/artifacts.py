"""What each runtime runs for an export, made on this machine before anything is measured, and checked.

For every (export, runtime) pair a measurement asks for, :func:`prepare_artifacts` returns either the file the
runtime opens or the reason it cannot (:class:`Refusal`), never both and never silently neither:

- **convert** where the runtime has a converter of its own (MNN, ncnn); OpenVINO and ONNX Runtime read the
  ``.onnx`` file itself, and for OpenVINO the same checks below still run (its CPU plugin compiles in bfloat16
  unless told otherwise: the check is what would see it);
- **prove it opens and computes what the export computes**: the artifact runs once on the seeded input every
  measurement uses (``--seed``) and its first output is compared with ONNX Runtime's output of the export (which
  export itself checked against PyTorch: its manifest's parity). Cosine similarity and the largest absolute
  difference are recorded in the cache, in the manifest next to the artifact and in every row; a float artifact
  below ``min_cosine`` (0.9999 by default, ``--min-cosine``) is refused;
- **cache** in ``<export's folder>/.artifacts/<runtime>/<sha256[:16]>-<fingerprint>/`` with ``artifact.json``,
  keyed by the export's sha256 and a fingerprint of the converter's version and the runtime module's source, so
  a second run converts nothing and a new converter converts again. A refusal is cached the same way.

The conversion and the check run in a child Python: a converter that crashes (a segfault in C++) becomes a
refusal naming the signal, not a dead benchmark.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mbbench._io import atomic_write_text

#: the folder, next to the exports, that holds every runtime's artifacts
CACHE_DIR = ".artifacts"
#: a float artifact whose output is further than this from the export's (cosine similarity) is refused
DEFAULT_MIN_COSINE = 0.9999
#: how long one conversion and its check may take before it is refused as hung (seconds)
CONVERT_TIMEOUT_S = 900
_FORMAT = 1


@dataclass(frozen=True)
class Conversion:
    """An artifact ready to measure: the file ``runtime`` opens (the export itself for a runtime that reads ONNX)
    and how closely it computes what the export computes."""

    runtime: str
    path: Path
    source: Path
    source_sha256: str
    converter: str
    cosine: float | None
    max_abs: float | None
    cached: bool
    seconds: float

    def columns(self) -> dict[str, Any]:
        return {"source_sha256": self.source_sha256, "conversion_cosine": self.cosine,
                "conversion_max_abs": self.max_abs}


@dataclass(frozen=True)
class Refusal:
    """A runtime that cannot run an export, and why (a cell "not supported: <reason>" in every table)."""

    runtime: str
    source: Path
    source_sha256: str
    reason: str
    cosine: float | None = None
    max_abs: float | None = None
    cached: bool = False
    #: the export's input, as bench's ``input_shape`` column writes it
    input_shape: str | None = None


def cache_folder(source: Path, source_sha256: str, runtime: str, fingerprint: str) -> Path:
    return source.parent / CACHE_DIR / runtime / f"{source_sha256[:16]}-{fingerprint}"


def fingerprint(runtime: str) -> str:
    """What a cached artifact of ``runtime`` depends on besides its source: the converter's version and the
    runtime module's code (and this module's), as 12 hex digits."""
    from mbbench.runtimes import RUNTIMES, get_runtime

    engine = get_runtime(runtime)
    digest = hashlib.sha256(f"{_FORMAT}:{engine.converter_version()}".encode())
    for module in (RUNTIMES[runtime], __name__, "mbbench.runtimes._base"):
        digest.update(Path(sys.modules[module].__file__).read_bytes() if module in sys.modules
                      else _module_file(module).read_bytes())
    return digest.hexdigest()[:12]


def _module_file(module: str) -> Path:
    import importlib.util

    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin
    return Path(spec.origin)


def prepare_artifacts(
    models: Sequence[Any],
    runtimes: Sequence[str],
    *,
    seed: int = 0,
    input_shapes: Sequence[str] = (),
    min_cosine: float = DEFAULT_MIN_COSINE,
    note: Callable[[str], None] | None = None,
) -> list[tuple[Any, Conversion | Refusal]]:
    """For each model (a :class:`~mbbench.bench.modelfile.ModelFile` of an ONNX export) and each runtime, in
    that order: its :class:`Conversion` or its :class:`Refusal`. ONNX Runtime's pair is the export itself, with
    no check (it is the reference). A runtime that is not installed is one :class:`RuntimeNotInstalled` naming
    the extra to install, before anything converts."""
    from mbbench.runtimes import get_runtime

    for runtime in runtimes:
        get_runtime(runtime).check_installed()
    out: list[tuple[Any, Conversion | Refusal]] = []
    for model in models:
        for runtime in runtimes:
            if runtime == "onnxruntime":
                out.append((model, Conversion("onnxruntime", model.path, model.path, model.sha256, "", None, None,
                                              True, 0.0)))
                continue
            out.append((model, artifact_for(model.path, model.sha256, runtime, seed=seed,
                                            input_shapes=input_shapes, min_cosine=min_cosine, note=note)))
    return out


def artifact_for(
    source: Path,
    source_sha256: str,
    runtime: str,
    *,
    seed: int = 0,
    input_shapes: Sequence[str] = (),
    min_cosine: float = DEFAULT_MIN_COSINE,
    note: Callable[[str], None] | None = None,
) -> Conversion | Refusal:
    """``source`` (an ONNX file) made ready for ``runtime``: from the cache when it holds this export for this
    converter, else converted and checked now (in a child process) and cached."""
    from mbbench.runtimes import get_runtime

    if not isinstance(min_cosine, (int, float)) or isinstance(min_cosine, bool) or not 0 <= min_cosine <= 1:
        from mbbench.errors import OptionError

        raise OptionError(f"min_cosine must be a number from 0 to 1, got {min_cosine!r}")
    source = Path(source)
    engine = get_runtime(runtime)
    folder = cache_folder(source, source_sha256, runtime, fingerprint(runtime))
    record = _read_record(folder, seed, tuple(input_shapes))
    cached = record is not None
    if record is None:
        if note:
            note(f"{runtime}: converting {source.name} ({engine.converter or 'reads ONNX; checking its output'})")
        record = _convert_in_child(source, runtime, folder, seed, tuple(input_shapes))
        record.update(source_sha256=source_sha256, source=source.name)
        _write_record(folder, record)
    if record.get("reason"):
        return Refusal(runtime, source, source_sha256, record["reason"], record.get("cosine"),
                       record.get("max_abs"), cached, record.get("input_shape"))
    cosine = record.get("cosine")
    if cosine is None or not math.isfinite(cosine) or cosine < min_cosine:
        shown = "not a number" if cosine is None or not math.isfinite(cosine) else f"{cosine:.6f}"
        return Refusal(runtime, source, source_sha256,
                       f"its output differs from the export's (cosine {shown}, max abs "
                       f"{record.get('max_abs')!s:.8}; below --min-cosine {min_cosine})",
                       cosine, record.get("max_abs"), cached, record.get("input_shape"))
    path = folder / record["file"] if record.get("file") else source
    return Conversion(runtime, path, source, source_sha256, record.get("converter", ""), cosine,
                      record.get("max_abs"), cached, float(record.get("seconds", 0.0)))


def _read_record(folder: Path, seed: int, shapes: tuple[str, ...]) -> dict[str, Any] | None:
    try:
        text = (folder / "artifact.json").read_text()
        record = json.loads(text) if len(text) < (1 << 20) else None
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        return None
    if record.get("seed") != seed or tuple(record.get("input_shapes") or ()) != shapes:
        return None  # checked on another input: check again
    if record.get("file") and not (folder / str(record["file"])).is_file():
        return None
    return record


def _write_record(folder: Path, record: dict[str, Any]) -> None:
    atomic_write_text(folder / "artifact.json", json.dumps(record, indent=1, sort_keys=True, default=str) + "\n")


def _convert_in_child(source: Path, runtime: str, folder: Path, seed: int, shapes: tuple[str, ...]) -> dict:
    """Convert and check in a child Python, into a temporary folder renamed to ``folder`` when done."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    job = {"source": str(source), "runtime": runtime, "workdir": str(work), "seed": seed, "input_shapes": shapes}
    started = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]),
                                                                    os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run([sys.executable, "-m", "mbbench.runtimes.artifacts", json.dumps(job)],
                              capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, env=env)
    except subprocess.TimeoutExpired:
        record = {"reason": f"the conversion did not end within {CONVERT_TIMEOUT_S} s"}
    else:
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode == 0 and lines:
            record = json.loads(lines[-1])
        elif done.returncode < 0:
            record = {"reason": f"the converter or runtime crashed (signal {-done.returncode})"}
        else:
            tail = " ".join(done.stderr.strip().splitlines()[-1:])[:300]
            record = {"reason": f"the conversion failed: {tail or 'exit status ' + str(done.returncode)}"}
    record.update(format=_FORMAT, runtime=runtime, seed=seed, input_shapes=list(shapes),
                  seconds=round(time.perf_counter() - started, 3))
    if record.get("reason"):
        record.pop("file", None)
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(work, folder)
    return record


# --- the child ---------------------------------------------------------------------------------------------------


def _fidelity(reference: Any, candidate: Any) -> tuple[float, float]:
    import numpy as np

    a = np.asarray(reference, dtype=np.float64).ravel()
    b = np.asarray(candidate, dtype=np.float64).ravel()
    if a.size != b.size:
        raise ValueError(f"its output has {b.size} values where the export's has {a.size}")
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    cosine = float(a @ b / denom) if denom else (1.0 if not a.any() and not b.any() else 0.0)
    return cosine, float(np.max(np.abs(a - b))) if a.size else 0.0


def _shaped(value: Any, shape: Any) -> Any:
    """The export's input in the shape the runtime's session declares, where that is the same values."""
    dims = tuple(shape or ())
    if dims and all(isinstance(d, int) and d > 0 for d in dims) and math.prod(dims) == value.size:
        return value.reshape(dims)
    return value


def _child(job: dict[str, Any]) -> dict[str, Any]:
    from mbbench.bench.options import parse_input_shapes
    from mbbench.bench.session import make_inputs
    from mbbench.runtimes import get_runtime
    from mbbench.runtimes._base import UnsupportedModel

    source, workdir = Path(job["source"]), Path(job["workdir"])
    engine = get_runtime(job["runtime"])
    ort = get_runtime("onnxruntime")
    reference = ort.open(str(source), 1, ort.check_options({}))
    feed, input_shape = make_inputs(reference.inputs, parse_input_shapes(job["input_shapes"]), job["seed"])
    reference.prepare(feed)
    expected = reference.outputs()[0]
    reference.close()
    record: dict[str, Any] = {"converter": engine.converter_version(), "input_shape": input_shape}
    try:
        files = engine.convert(source, workdir) if engine.converter else [source]
        session = engine.open(str(files[0]), 1, engine.check_options({}))
    except UnsupportedModel as exc:
        return {**record, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a runtime refuses a model in its own ways: one line
        return {**record, "reason": f"{engine.name} cannot open the converted model: {engine.error_text(exc)}"}
    try:
        session.prepare({spec.name: _shaped(value, spec.shape) for spec, value in zip(session.inputs, feed.values())})
        got = session.outputs()[0]
        cosine, max_abs = _fidelity(expected, got)
    except Exception as exc:  # noqa: BLE001
        return {**record, "reason": f"{engine.name} cannot run it: {engine.error_text(exc)}"}
    finally:
        session.close()
    record.update(cosine=cosine, max_abs=max_abs)
    if engine.converter:
        record["file"] = files[0].name
    return record


def _main() -> None:
    job = json.loads(sys.argv[1])
    try:
        record = _child(job)
    except Exception as exc:  # noqa: BLE001 - reported as the refusal's reason, in one line
        record = {"reason": f"{type(exc).__name__}: {exc}".splitlines()[0][:300]}
    sys.stdout.write("\n" + json.dumps(record, default=str) + "\n")


if __name__ == "__main__":
    _main()
