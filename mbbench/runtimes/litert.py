"""LiteRT, formerly TensorFlow Lite (``pip install 'mbbench[litert]'`` runs models; the converter is set up once with
``mbbench setup litert``): the ``.tflite`` file ``litert-torch`` makes from the PyTorch model behind an export.

LiteRT's converter converts PyTorch modules, not ONNX files, so an artifact is made from what the export's
manifest says defines its file: the registry model, its checkpoint (loaded with ``weights_only=True``), seed,
resolution, re-parameterisation and norm fusion. The fold of MobileViT v2's patches is the reshape form whatever
the export used: LiteRT lowers Col2Im to a ``stablehlo.scatter`` its CPU kernels cannot prepare (all three folds
compute the same function; the fidelity check against the export's output says whether it still does). A file
without an mbbench manifest cannot be converted: the refusal says so.

``litert-torch`` pins ``typing_extensions`` below the version torch and onnx want here, so it lives in an
environment of its own (``~/.cache/mbbench/converters/litert-torch-<version>``, ``$MBBENCH_CONVERTERS`` moves it)
that sees this environment's packages (torch included, not installed twice) after its own. Nothing is installed
at run time: ``mbbench setup litert`` makes it, and without it the runtime says to run that.

A session is ``ai_edge_litert``'s Interpreter with ``num_threads`` (its CPU kernels, XNNPACK included); LiteRT has
no read-back of the thread count, so ``applied_settings`` says ``threads_read_back=no``. Inputs are as the
converted model declares them (litert-torch keeps the module's NCHW); ``prepare`` writes them in the declared
layout, outside the timed region.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from mbbench.runtimes._base import InputSpec, ModelRunError, Runtime, RuntimeNotInstalled, Session, UnsupportedModel

#: the converter this module is written against (the version the setup installs)
CONVERTER_REQUIREMENT = "litert-torch==0.10.*"
CONVERTER_TIMEOUT_S = 900


def converter_env() -> Path:
    root = os.environ.get("MBBENCH_CONVERTERS") or Path.home() / ".cache" / "mbbench" / "converters"
    return Path(root) / "litert-torch-0.10"


def converter_python() -> Path:
    return converter_env() / "bin" / "python"


def setup_converter(note: Callable[[str], None] = print) -> Path:
    """Make :func:`converter_env` (once): a virtual environment that sees this one's packages after its own, with
    litert-torch installed from the package index, torch pinned to the one here. Returns its Python."""
    import torch

    env = converter_env()
    python = converter_python()
    if python.is_file() and _converter_version(python):
        return python
    note(f"making LiteRT's converter environment in {env} ({CONVERTER_REQUIREMENT}; about 1 GB, once)")
    if env.exists():  # what a failed or killed setup left
        shutil.rmtree(env)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, capture_output=True)
        purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        # after the environment's own site-packages: its typing_extensions wins, torch and numpy come from here
        Path(purelib, "zz_mbbench_base.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
        constraints = env / "constraints.txt"
        constraints.write_text(f"torch=={torch.__version__.split('+')[0]}\n")
        install = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                   CONVERTER_REQUIREMENT, "-c", str(constraints)]
        for attempt in (1, 2):  # a package index that drops a connection once is not a reason to give up
            done = subprocess.run(install, capture_output=True, text=True)
            if done.returncode == 0:
                break
        else:
            lines = [line for line in done.stderr.splitlines() if line.strip() and "is ignored" not in line]
            raise RuntimeNotInstalled(f"pip could not install {CONVERTER_REQUIREMENT} into {env}: "
                                      f"{(lines[-1] if lines else 'exit status ' + str(done.returncode))[:300]}")
    except (OSError, subprocess.CalledProcessError) as exc:
        shutil.rmtree(env, ignore_errors=True)
        raise RuntimeNotInstalled(f"could not make {env}: {exc}") from None
    except RuntimeNotInstalled:
        shutil.rmtree(env, ignore_errors=True)
        raise
    if not _converter_version(python):
        raise RuntimeNotInstalled(f"litert-torch did not install into {env}; remove it and run mbbench setup litert")
    return python


def _converter_version(python: Path) -> str | None:
    try:
        done = subprocess.run([str(python), "-c", "from importlib.metadata import version; print(version("
                               "'litert-torch'))"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


class LiteRtSession(Session):
    def __init__(self, interpreter, threads: int):
        self._it, self._threads = interpreter, threads
        self._in = interpreter.get_input_details()
        self._out = interpreter.get_output_details()
        self.inputs = [InputSpec(d["name"], tuple(int(x) for x in d["shape"]), np.dtype(d["dtype"])) for d in self._in]

    def prepare(self, feed: Mapping[str, np.ndarray]) -> None:
        for detail, spec in zip(self._in, self.inputs):
            self._it.set_tensor(detail["index"], np.ascontiguousarray(feed[spec.name], dtype=spec.dtype))
        self.run = self._it.invoke  # type: ignore[method-assign]

    def run(self) -> None:  # replaced by prepare()
        self._it.invoke()

    def outputs(self) -> list[np.ndarray]:
        self._it.invoke()
        return [np.array(self._it.get_tensor(d["index"]), copy=True) for d in self._out]

    def applied(self) -> dict[str, Any]:
        dtypes = sorted({np.dtype(d["dtype"]).name for d in self._in + self._out})
        return {"threads": self._threads, "precision": "fp32" if dtypes == ["float32"] else "+".join(dtypes),
                "threads_read_back": "no"}

    def close(self) -> None:
        self._it = None


class LiteRt(Runtime):
    name = "litert"
    artifact = "LiteRT (.tflite)"
    suffix = ".tflite"
    package = "ai_edge_litert"
    extra = "litert"
    options: dict = {}
    converter = "litert-torch (from the PyTorch model, in its own environment)"

    def version(self) -> str | None:
        try:
            from importlib.metadata import version

            __import__("ai_edge_litert.interpreter")
            return version("ai-edge-litert")
        except Exception:  # noqa: BLE001 - not installed, or installed broken: not usable either way
            return None

    def check_installed(self) -> str:
        found = self.version()
        if found is None:
            raise RuntimeNotInstalled("LiteRT is not installed here; install it with pip install 'mbbench[litert]'")
        return found

    def open(self, path: str, threads: int, options: Mapping[str, str]) -> Session:
        from ai_edge_litert.interpreter import Interpreter

        try:
            interpreter = Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
        except Exception as exc:  # noqa: BLE001
            raise ModelRunError(f"LiteRT cannot open {Path(path).name}: {self.error_text(exc)}") from None
        return LiteRtSession(interpreter, threads)

    def converter_version(self) -> str:
        python = converter_python()
        made = _converter_version(python) if python.is_file() else None
        return f"ai-edge-litert {self.check_installed()}, litert-torch {made or 'not set up'}"

    def convert(self, source: Path, workdir: Path) -> list[Path]:
        from mbbench.bench.modelfile import read_manifest

        python = converter_python()
        if not (python.is_file() and _converter_version(python)):
            raise UnsupportedModel("LiteRT's converter is not set up here: run 'mbbench setup litert' once")
        manifest = read_manifest(source)
        if not manifest or not manifest.get("model"):
            raise UnsupportedModel("LiteRT converts from the PyTorch model, and this file has no mbbench manifest "
                                   "naming it: pass an mbbench export")
        target = workdir / "model.tflite"
        job = {key: manifest.get(key) for key in ("model", "weights", "seed", "resolution", "batch",
                                                   "reparameterized", "norms_fused")}
        job["output"] = str(target)
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": root, "TF_CPP_MIN_LOG_LEVEL": "3"}
        try:
            done = subprocess.run([str(python), "-c", _CONVERT, json.dumps(job)], capture_output=True, text=True,
                                  timeout=CONVERTER_TIMEOUT_S, env=env, cwd=workdir)
        except subprocess.TimeoutExpired:
            raise UnsupportedModel(f"litert-torch did not finish within {CONVERTER_TIMEOUT_S} s") from None
        if done.returncode != 0 or not target.is_file():
            lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
            raise UnsupportedModel(f"litert-torch could not convert it: {(lines[-1] if lines else '')[:240]}")
        return [target]


# Runs in the converter's environment: the module as the export built it, converted and written.
_CONVERT = r"""
import json, sys
import torch
from mbbench.models import create_model, deploy
job = json.loads(sys.argv[1])
module = create_model(job["model"], weights=job["weights"], seed=job["seed"] or 0)
if job["reparameterized"]:
    module = deploy(module, reparameterize=True)
if job["norms_fused"]:
    module = deploy(module, reparameterize=False, fuse_norms=True)
module = deploy(module, reparameterize=False, fold="reshape").eval()
import litert_torch
example = torch.randn(job["batch"] or 1, 3, job["resolution"], job["resolution"])
litert_torch.convert(module, (example,)).export(job["output"])
"""

RUNTIME = LiteRt()
