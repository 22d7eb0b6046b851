"""Building a predictor on a device, and predicting with one.

:func:`build_predictor` generates random architecture variants (:mod:`mbbench.predict.variants`), exports each
here (simplified and checked against PyTorch like every mbbench export), profiles it on the device with the same
isolated worker and statistics as ``mbbench profile`` (here, or over ``--target`` on a phone), and learns from
every kernel the profile shows. The first variants are drawn in turn from each family; after them, each round
holds three exported candidates and profiles the one the predictor is least sure of (the widest spread of its trees,
relative to the prediction) while the others wait for the next round: adaptive sampling, until the time
budget is spent. The fusion patterns are read off
the profiles as they come (the runtime's, on that device).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mbbench.errors import OptionError, UserInputError
from mbbench.predict.kernels import kernels, patterns_from_profiles
from mbbench.predict.model import Prediction, Predictor
from mbbench.predict.variants import Variant, build, iter_variants

MAX_BUDGET_MINUTES = 24 * 60
#: variants profiled before the predictor chooses (two of each family)
WARM_START = 6
#: candidates waiting to be chosen in each adaptive round (the least certain is profiled, the others wait for the
#: next round: each round exports one new variant)
CANDIDATES = 3
#: variants measured between two fits of the forests that choose the next one
REFIT_EVERY = 5


@dataclasses.dataclass
class BuildReport:
    predictor: Predictor
    profiled: list[str]
    seconds: float


def check_budget(minutes: Any) -> float:
    if isinstance(minutes, bool) or not isinstance(minutes, (int, float)) or not 0 < minutes <= MAX_BUDGET_MINUTES:
        raise OptionError(f"budget must be above 0 and at most {MAX_BUDGET_MINUTES} minutes, not {minutes!r}")
    return float(minutes)


def build_predictor(
    *,
    budget_minutes: float = 15.0,
    threads: int = 1,
    runtime: str = "onnxruntime",
    remote=None,
    seed: int = 0,
    rounds: int = 10,
    warmup: int = 3,
    workdir: str | Path | None = None,
    note: Callable[[str], None] | None = None,
    max_variants: int | None = None,
) -> BuildReport:
    """Measure variants on the device (``remote``: a :class:`~mbbench.remote.fleet.RemoteRun` with one target;
    None: this machine) until ``budget_minutes`` are spent (or ``max_variants`` were profiled)."""
    budget = check_budget(budget_minutes)
    if runtime != "onnxruntime":
        raise UserInputError(f"predict learns from ONNX Runtime's profiler; --runtime {runtime} cannot be profiled "
                             "yet (use --runtime onnxruntime)")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise OptionError(f"threads must be a whole number of at least 1, not {threads!r}")
    if remote is not None and len(remote.targets) != 1:
        raise UserInputError("a predictor is one device's: give exactly one --target")
    say = note or (lambda message: None)
    started = time.monotonic()
    deadline = started + budget * 60
    pool = iter_variants(seed)
    predictor: Predictor | None = None
    profiled: list[str] = []
    with tempfile.TemporaryDirectory(prefix="mbbench-predict-", dir=workdir) as tmp:
        folder = Path(tmp)

        def done() -> bool:
            return time.monotonic() >= deadline or (max_variants is not None and len(profiled) >= max_variants)

        scorer, scored_at = None, 0
        waiting: list[tuple[Variant, Path]] = []  # exported, not yet profiled: scored again next round
        while not done():
            if predictor is None or len(profiled) < WARM_START:
                chosen = export_variant(next(pool), folder, seed)
            else:
                if scorer is None or len(profiled) - scored_at >= REFIT_EVERY:
                    # the candidates are scored by a copy fitted now and then, not after every variant
                    scorer, scored_at = Predictor.from_dict(predictor.to_dict()), len(profiled)
                    scorer.fit()
                while len(waiting) < CANDIDATES:
                    waiting.append(export_variant(next(pool), folder, seed))
                chosen = max(waiting, key=lambda c: scorer.predict(c[1]).uncertainty)
                waiting.remove(chosen)
            variant, path = chosen
            profile = _profile(path, threads, rounds, warmup, remote)
            measured = float(np.median(profile.plain_ms)) if profile.plain_ms else profile.end_to_end_ms
            if predictor is None:
                predictor = Predictor(device=_device(profile), runtime={"name": runtime,
                                      "version": profile.onnxruntime_version}, threads=threads, patterns=[],
                                      seed=seed)  # fmt: skip
            predictor.patterns = sorted(set(predictor.patterns) | set(patterns_from_profiles([profile])),
                                        key=lambda p: (-len(p), p))
            predictor.add(kernels(path, predictor.patterns), profile, measured, variant.name)
            profiled.append(variant.name)
            say(f"[{len(profiled)}] {variant.name}: {measured:.2f} ms measured, "
                f"{len(predictor.samples)} kernels learned, {(deadline - time.monotonic()) / 60:.1f} min left")
            path.unlink()
            path.with_suffix(".json").unlink(missing_ok=True)
    if predictor is None:
        raise UserInputError("the budget ended before one variant was measured; give a larger --budget")
    predictor.fit()
    return BuildReport(predictor, profiled, time.monotonic() - started)


def export_variant(variant: Variant, folder: Path, seed: int = 0) -> tuple[Variant, Path]:
    """The variant as a verified ONNX file in ``folder`` (seeded, latency-faithful init; opset 17)."""
    from mbbench.export import export_onnx
    from mbbench.models.init import initialize

    module = initialize(build(variant, seed), seed=seed, calibration_size=16)
    path = folder / f"{variant.name}.onnx"
    export_onnx(module, path, name=variant.name, resolution=variant.resolution)
    return variant, path


def _profile(path: Path, threads: int, rounds: int, warmup: int, remote):
    from mbbench.bench.modelfile import inspect_model
    from mbbench.measure import profile

    model = inspect_model(path)
    (result,) = profile([model], remote=remote, threads=[threads], rounds=rounds, warmup=warmup, reference=True)
    return result


def _device(profile) -> dict[str, Any]:
    return {"cpu_model": profile.cpu_model, "host": profile.host, "cores": profile.cores,
            "target": profile.target}


def predict_models(paths: Sequence[str | Path], predictor: Predictor | str | Path,
                   labels: Sequence[str] | None = None) -> list[Prediction]:
    """Predicted latency of each ONNX file (none is run)."""
    if not isinstance(predictor, Predictor):
        predictor = Predictor.load(predictor)
    predictor.fit()
    labels = list(labels) if labels is not None else [None] * len(paths)
    return [predictor.predict(path, label) for path, label in zip(paths, labels)]
