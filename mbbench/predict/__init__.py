"""``mbbench predict``: a model's latency on a device, predicted from kernels measured once on that device.

:mod:`~mbbench.predict.kernels` reads a model as the kernels the runtime runs (its fusions learned from the
device's profiles), :mod:`~mbbench.predict.model` holds the measurements and the regressors,
:mod:`~mbbench.predict.variants` generates the architectures it learns from (never the zoo's own models), and
:mod:`~mbbench.predict.build` measures them on the device within a time budget, sampling where the predictor is
least sure.
"""

from mbbench._lazy import lazy_attributes

_LAZY = {
    "Predictor": "mbbench.predict.model",
    "Prediction": "mbbench.predict.model",
    "kernels": "mbbench.predict.kernels",
    "build_predictor": "mbbench.predict.build",
    "predict_models": "mbbench.predict.build",
    "random_variants": "mbbench.predict.variants",
}

__all__ = sorted(_LAZY)

__getattr__, __dir__ = lazy_attributes(__name__, globals(), _LAZY)
