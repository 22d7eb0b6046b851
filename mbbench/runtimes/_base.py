"""The one small interface every runtime implements, and what every measurement sees of a runtime.

Standard library and numpy only: the measuring core (the sweep, the isolated worker, the device agent) reaches a
runtime only through :class:`Runtime` and :class:`Session`, so it never imports a runtime package it does not
drive, and a phone with only one runtime installed runs the core.

A runtime module defines one :class:`Runtime` subclass (registered by name in :mod:`mbbench.runtimes`):

- ``name``, the ``artifact`` format it runs and its file ``suffix``, the pip ``extra`` that installs it;
- :meth:`Runtime.version` (None when the package is not installed) and :meth:`Runtime.check_installed`, which
  raises one line naming the extra to install;
- :meth:`Runtime.open`: an artifact, a thread count and the runtime's own options -> a :class:`Session` whose input
  preparation (layout, binding) happens in :meth:`Session.prepare`, outside the timed region, and whose
  :meth:`Session.run` is the timed call; :meth:`Session.applied` reads back the settings the runtime really
  applied (threads, precision, streams), never echoes what was asked;
- conversion from the exported ONNX file (or the PyTorch model) to the runtime's artifact lives in
  :mod:`mbbench.runtimes.convert`, on the host, where torch and the converters are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from mbbench.errors import MbbenchError, OptionError


class ModelRunError(MbbenchError):
    """A model could not be loaded or run; the sweep reports it in one line and skips the model."""


class RuntimeNotInstalled(MbbenchError):
    """The runtime's package is not importable here; the message names the extra that installs it."""


class UnsupportedModel(MbbenchError):
    """The runtime cannot run this model (its converter or loader refuses it): a recorded cell, not a crash."""


class RuntimeOptionError(OptionError):
    """A ``--runtime-option KEY=VALUE`` this runtime does not know, or a value it cannot take."""


@dataclass(frozen=True)
class InputSpec:
    """One input as the session sees it: its name, declared shape (ints, or names/None for dynamic axes) and
    numpy dtype."""

    name: str
    shape: tuple[Any, ...]
    dtype: np.dtype


@dataclass(frozen=True)
class OptionSpec:
    """A runtime option: its default (as text, "" for the runtime's own), its choices (empty: free text) and help."""

    default: str
    choices: tuple[str, ...] = ()
    help: str = ""


class Session(ABC):
    """One opened artifact. Exactly one session is alive at a time (the sweep drops it before the next)."""

    #: the inputs, in the runtime's own layout (an NHWC runtime lists NHWC shapes)
    inputs: list[InputSpec]

    @abstractmethod
    def prepare(self, feed: Mapping[str, np.ndarray]) -> None:
        """Bind ``feed`` (NCHW arrays named by the exported ONNX file's inputs) for the runs that follow; any layout
        change or copy into the runtime's own tensors happens here, outside the timed region."""

    @abstractmethod
    def run(self) -> None:
        """One inference on the prepared inputs: the timed call, nothing else."""

    @abstractmethod
    def outputs(self) -> list[np.ndarray]:
        """The outputs of the last run, as numpy arrays in the exported model's layout (for fidelity checks)."""

    @abstractmethod
    def applied(self) -> dict[str, Any]:
        """The settings the runtime reports it applied, read back from it: at least ``threads`` (the compute threads
        it uses, None when the runtime cannot tell) and ``precision`` (the inference precision)."""

    def close(self) -> None:
        """Drop the runtime's objects (their threads must not spin beside the next session)."""


class Runtime(ABC):
    """One runtime: how to open its artifacts and what it is. Subclasses are stateless."""

    name: str = ""
    #: the format it runs, in words ("ONNX", "OpenVINO IR or ONNX", "MNN", "ncnn param/bin", "TFLite flatbuffer")
    artifact: str = ""
    #: the artifact's file suffix (the ``.onnx`` export itself for runtimes that read ONNX)
    suffix: str = ".onnx"
    #: the import name whose ``__version__`` is the runtime's version
    package: str = ""
    #: ``pip install 'mbbench[<extra>]'`` installs it
    extra: str = ""
    #: the options ``--runtime-option KEY=VALUE`` takes, with defaults
    options: Mapping[str, OptionSpec] = MappingProxyType({})

    def version(self) -> str | None:
        """The installed version, or None when the package cannot be imported here."""
        from importlib import import_module

        try:
            module = import_module(self.package)
        except Exception:  # noqa: BLE001 - a broken install is "not installed" with its reason in check_installed
            return None
        return str(getattr(module, "__version__", "unknown"))

    def check_installed(self) -> str:
        """The version, or :class:`RuntimeNotInstalled` in one line naming the extra."""
        from importlib import import_module

        try:
            module = import_module(self.package)
        except Exception as exc:  # noqa: BLE001
            raise RuntimeNotInstalled(
                f"{self.name} is not installed here ({type(exc).__name__}: {str(exc)[:120]}); install it with "
                f"pip install 'mbbench[{self.extra}]'") from None
        return str(getattr(module, "__version__", "unknown"))

    def check_options(self, given: Mapping[str, str]) -> dict[str, str]:
        """``given`` checked against :attr:`options` and completed with the defaults (one line for a bad one)."""
        out = {key: spec.default for key, spec in self.options.items()}
        for key, value in given.items():
            spec = self.options.get(key)
            if spec is None:
                known = ", ".join(self.options) or "none"
                raise RuntimeOptionError(f"{self.name} has no option {key!r}; its options are: {known}")
            if spec.choices and value not in spec.choices:
                raise RuntimeOptionError(f"{self.name} option {key}={value!r}: choose one of {', '.join(spec.choices)}")
            out[key] = value
        return out

    def error_text(self, exc: BaseException) -> str:
        """The runtime's own error as one line (a runtime module trims its boilerplate here)."""
        from mbbench.errors import first_line

        return first_line(exc, limit=300)

    @abstractmethod
    def open(self, path: str, threads: int, options: Mapping[str, str]) -> Session:
        """Open ``path`` (this runtime's artifact) to compute with ``threads`` threads and ``options`` (checked by
        :meth:`check_options`). Raises :class:`ModelRunError` when it cannot, :class:`UnsupportedModel` when the
        runtime refuses the model itself."""

    #: what makes this runtime's artifact from an export (None: the runtime reads the ``.onnx`` file itself)
    converter: str | None = None

    def convert(self, source: Path, workdir: Path) -> list[Path]:
        """Host side: the artifact for the ONNX file ``source``, written into the empty folder ``workdir``; its
        files, the one to open first. Raises :class:`UnsupportedModel` with the reason the runtime refuses it.
        Caching, the proof that it opens and computes what the export computes are
        :mod:`mbbench.runtimes.artifacts`' job."""
        raise NotImplementedError(f"{self.name} runs the ONNX file itself")

    def converter_version(self) -> str:
        """What a cached artifact's validity depends on besides its source (the converter and its version)."""
        return f"{self.name} {self.check_installed()}"

    def profile(self, path: str, threads: int, options: Mapping[str, str], rounds: int, warmup: int,
                feed: Mapping[str, np.ndarray]) -> list[dict[str, Any]] | None:
        """Per-op times where the runtime has a profiler of its own (``[{"node", "op_type", "ms"}...]`` per run);
        None when it has none."""
        return None
