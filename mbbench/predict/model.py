"""The predictor: kernel measurements from one device, one regressor per kernel family, and what it predicts.

A predictor file is data, not code: the device and runtime it was measured on, the fusion patterns that
runtime showed, every measured kernel (family, features, milliseconds) and every measured model (its kernels'
measured sum and its end-to-end latency). Loading it fits the regressors again (scikit-learn random forests,
seeded, in about a second), so a file shared with someone who has the same phone and runtime predicts the same
numbers for them, and nothing in it is ever unpickled or executed.

How a model's latency is predicted: its kernels (:func:`mbbench.predict.kernels.kernels`, under the device's
fusion patterns), each kernel's time from its family's forest, summed; then a linear correction fitted on the
measured models maps that sum (and the kernel count) to end-to-end latency, which also holds what no kernel
shows (the runtime's own work between kernels, the layout conversions it inserts). Each tree of a forest is one
plausible predictor: the spread of the trees' model totals is the prediction's own uncertainty.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mbbench._io import atomic_write_text
from mbbench.errors import UserInputError
from mbbench.predict.kernels import CONV, MATMUL, OTHER, Kernel, ModelKernels, kernels

FORMAT = "mbbench-predictor/1"
FAMILIES = (CONV, MATMUL, OTHER)
#: a kernel measured at 0 ms (folded by the runtime) is learned as this, so logarithms stay finite
FLOOR_MS = 1e-4
TREES = 200


@dataclass(frozen=True)
class KernelTime:
    kernel: str
    pattern: str
    family: str
    predicted_ms: float


@dataclass(frozen=True)
class Prediction:
    model: str
    file: str
    predicted_ms: float
    #: the 10th and 90th percentile of the trees' totals (the prediction's own uncertainty)
    low_ms: float
    high_ms: float
    kernels: tuple[KernelTime, ...]
    macs: float
    predictor: str

    @property
    def uncertainty(self) -> float:
        """Half the 10-90% range, relative to the prediction."""
        return (self.high_ms - self.low_ms) / 2 / self.predicted_ms if self.predicted_ms > 0 else math.nan

    def by_pattern(self) -> list[tuple[str, float, int]]:
        """(pattern, predicted ms, kernels) summed over the model, largest first."""
        found: dict[str, list[float]] = {}
        for k in self.kernels:
            found.setdefault(k.pattern, []).append(k.predicted_ms)
        return sorted(((p, sum(v), len(v)) for p, v in found.items()), key=lambda t: -t[1])

    def to_dict(self, breakdown: bool = True) -> dict[str, Any]:
        data = {"model": self.model, "file": self.file, "predicted_ms": self.predicted_ms, "low_ms": self.low_ms,
                "high_ms": self.high_ms, "macs": self.macs, "predictor": self.predictor}
        if breakdown:
            data["kernels"] = [{"pattern": p, "predicted_ms": ms, "count": n} for p, ms, n in self.by_pattern()]
        return data


@dataclass
class Predictor:
    """See the module docstring. ``device`` and ``runtime`` say what it was measured on."""

    device: dict[str, Any]
    runtime: dict[str, Any]
    threads: int
    patterns: list[tuple[str, ...]]
    samples: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    seed: int = 0
    _fitted: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    # -- what it is ---------------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """``<cpu>-<runtime>-<version>-<n>t``: the file name it is saved under by default."""
        cpu = str(self.device.get("cpu_model") or self.device.get("machine") or "cpu")
        text = f"{cpu}-{self.runtime.get('name')}-{self.runtime.get('version')}-{self.threads}t"
        return "".join(c if c.isalnum() or c in ".-" else "-" for c in text).strip("-").lower()

    def add(self, model_kernels: ModelKernels, profile, measured_ms: float, name: str) -> int:
        """Learn from one measured model: each of its kernels with the time the profile gives it (the time of
        every runtime kernel that covers one of its nodes), and the model's end to end ``measured_ms``."""
        owner = {}
        for index, kernel in enumerate(model_kernels.kernels):
            for source in kernel.sources:
                owner[source] = index
        times = [0.0] * len(model_kernels.kernels)
        inserted = 0.0
        for node in profile.nodes:
            hits = {owner[s] for s in node.sources if s in owner}
            if not hits:
                inserted += node.mean_ms
                continue
            for index in hits:  # one runtime kernel over two of ours: shared out evenly
                times[index] += node.mean_ms / len(hits)
        for kernel, ms in zip(model_kernels.kernels, times):
            self.samples.append({"family": kernel.family, "pattern": kernel.pattern, "features": kernel.features,
                                 "ms": ms})
        self.models.append({"name": name, "kernels": len(model_kernels.kernels), "kernel_ms": sum(times),
                            "inserted_ms": inserted, "measured_ms": measured_ms, "macs": model_kernels.macs})
        self._fitted = None
        return len(model_kernels.kernels)

    # -- fitting --------------------------------------------------------------------------------------------

    def fit(self) -> None:
        from sklearn.ensemble import RandomForestRegressor

        if not self.samples or not self.models:
            raise UserInputError("the predictor has no measurements yet; build it with 'mbbench predict build'")
        forests, columns = {}, {}
        for family in FAMILIES:
            rows = [s for s in self.samples if s["family"] == family]
            if not rows:
                continue
            keys = sorted({k for s in rows for k in s["features"]})
            x = _matrix(rows, keys)
            # the forest learns the time per unit of work (how efficient a kernel of that shape is), which stays in
            # a narrow range, rather than the time itself, which a forest cannot extrapolate to larger kernels
            y = np.log(np.maximum([s["ms"] for s in rows], FLOOR_MS)) - np.log(_work(rows))
            forest = RandomForestRegressor(n_estimators=TREES, min_samples_leaf=2, max_features=0.6,
                                           random_state=self.seed, n_jobs=1)
            forests[family], columns[family] = forest.fit(x, y), keys
        self._fitted = {"forests": forests, "columns": columns}
        # the correction from the kernels' predicted sum to end to end, fitted on the measured models' own
        # measured kernel sums (so it does not learn the forests' errors)
        a = np.array([[m["kernel_ms"], m["kernels"], 1.0] for m in self.models])
        b = np.array([m["measured_ms"] for m in self.models])
        coef, *_ = np.linalg.lstsq(a, b, rcond=None)
        if coef[0] <= 0:  # a degenerate fit (one model): end to end is the kernels' sum, scaled
            coef = np.array([float(b.sum() / max(a[:, 0].sum(), 1e-9)), 0.0, 0.0])
        self._fitted["correction"] = [float(c) for c in coef]

    def _trees(self, items: Sequence[Kernel]) -> np.ndarray:
        """Per tree, each kernel's predicted ms: shape (trees, kernels)."""
        if self._fitted is None:
            self.fit()
        out = np.zeros((TREES, len(items)))
        for family in FAMILIES:
            index = [i for i, k in enumerate(items) if k.family == family]
            if not index:
                continue
            forest = self._fitted["forests"].get(family)
            if forest is None:  # a family never measured: the mean of all measured kernels, no spread
                out[:, index] = float(np.mean([s["ms"] for s in self.samples]))
                continue
            x = _matrix([{"features": items[i].features} for i in index], self._fitted["columns"][family])
            per_tree = np.stack([tree.predict(x) for tree in forest.estimators_])
            out[:, index] = np.exp(per_tree) * _work([{"features": items[i].features} for i in index])
        return out

    def predict_kernels(self, model_kernels: ModelKernels, label: str | None = None) -> Prediction:
        items = list(model_kernels.kernels)
        if not items:
            raise UserInputError(f"{model_kernels.path}: no kernel to predict (an empty graph?)")
        trees = self._trees(items)
        a, b, c = self._fitted["correction"]
        totals = a * trees.sum(axis=1) + b * len(items) + c
        # each kernel's time: the geometric mean of the trees' (the forests model log time, so this is their
        # central estimate; the arithmetic mean lets one tree's wild guess for a rare kernel lift the total)
        mean = np.exp(np.log(trees).mean(axis=0))
        total = float(a * mean.sum() + b * len(items) + c)
        return Prediction(
            model=label or Path(model_kernels.path).stem, file=model_kernels.path, predicted_ms=total,
            low_ms=float(np.percentile(totals, 10)), high_ms=float(np.percentile(totals, 90)),
            kernels=tuple(KernelTime(k.name, k.pattern, k.family, float(a * ms)) for k, ms in zip(items, mean)),
            macs=model_kernels.macs, predictor=self.name)  # fmt: skip

    def predict(self, path: str | Path, label: str | None = None, fused: bool = True) -> Prediction:
        """The predicted latency of the ONNX file ``path`` (``fused=False``: every op its own kernel, the
        baseline without fusion detection)."""
        return self.predict_kernels(kernels(path, self.patterns if fused else ()), label)

    # -- as data --------------------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "device": self.device, "runtime": self.runtime, "threads": self.threads,
                "seed": self.seed, "patterns": [list(p) for p in self.patterns], "models": self.models,
                "samples": self.samples}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # compact: a predictor holds thousands of kernels (an indented file of 15k kernels is 480k lines)
        atomic_write_text(path, json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Predictor:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise UserInputError(f"predictor {path} does not exist; build one with 'mbbench predict build'") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise UserInputError(f"predictor {path} is not a predictor file ({type(exc).__name__})") from None
        return cls.from_dict(data, path)

    @classmethod
    def from_dict(cls, data: Any, where: object = "the predictor") -> Predictor:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise UserInputError(f"{where} is not an {FORMAT} file")
        try:
            samples = [{"family": str(s["family"]), "pattern": str(s["pattern"]), "ms": _finite(s["ms"]),
                        "features": {str(k): _finite(v) for k, v in dict(s["features"]).items()}}
                       for s in data["samples"]]
            models = [{"name": str(m["name"]), "kernels": int(m["kernels"]), "kernel_ms": _finite(m["kernel_ms"]),
                       "inserted_ms": _finite(m.get("inserted_ms", 0.0)), "measured_ms": _finite(m["measured_ms"]),
                       "macs": _finite(m.get("macs", 0.0))} for m in data["models"]]
            patterns = [tuple(str(op) for op in p) for p in data["patterns"]]
            threads = int(data["threads"])
        except (KeyError, TypeError, ValueError) as exc:
            raise UserInputError(f"{where} is damaged: {type(exc).__name__} {exc}") from None
        if any(s["family"] not in FAMILIES for s in samples):
            raise UserInputError(f"{where} names a kernel family this mbbench does not know")
        return cls(device=dict(data.get("device") or {}), runtime=dict(data.get("runtime") or {}), threads=threads,
                   patterns=patterns, samples=samples, models=models, seed=int(data.get("seed", 0)))


def _finite(value: Any) -> float:
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} is not a finite, non-negative number")
    return number


def _work(rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """A kernel's amount of work: its multiply-accumulates, or for a kernel without any the elements it reads
    and writes (in millions, at least one)."""
    return np.array([max(1.0, (f.get("macs") or 0.0) + f.get("in_elems", 0.0) + f.get("out_elems", 0.0)) / 1e6
                     for f in (r["features"] for r in rows)])


def _matrix(rows: Sequence[Mapping[str, Any]], keys: Sequence[str]) -> np.ndarray:
    return np.log1p(np.array([[float(r["features"].get(k, 0.0)) for k in keys] for r in rows], dtype=np.float64))
