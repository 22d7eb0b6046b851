"""``run_pipeline`` (and the reproduce study built on it) on one small registry model, threads 1, 2 rounds."""

from __future__ import annotations

import math

import pytest

import mbbench.export
from mbbench.errors import MbbenchError, UserInputError
from mbbench.pipeline import STUDY_OPSETS, resolve_opsets, run_pipeline
from mbbench.studies import reproduce_study

from .test_studies import assert_png, header

TINY = dict(threads=1, rounds=2, warmup=0, isolate=False)


@pytest.fixture
def shared_models(tmp_path_factory):
    """One models folder for the whole session: an export already made there is reused, not redone."""
    folder = tmp_path_factory.getbasetemp() / "shared-models"
    folder.mkdir(exist_ok=True)
    return folder


def test_opsets_default_to_the_study_and_can_be_overridden():
    names = ["mobileone-s0", "mobilevit-xxs", "mobilevitv2-050"]
    assert resolve_opsets(names) == dict(zip(names, STUDY_OPSETS.values()))
    assert set(resolve_opsets(names, 17).values()) == {17}
    chosen = resolve_opsets(names, {"mobilevitv2": 17, "mobileone_s0": 13})
    assert chosen == {"mobileone-s0": 13, "mobilevit-xxs": 17, "mobilevitv2-050": 17}
    with pytest.raises(UserInputError, match="opset 7"):
        resolve_opsets(names, 7)


def test_pipeline_exports_benches_and_reports(tmp_path, shared_models):
    result = run_pipeline(["mobileone_s0"], output_dir=tmp_path / "run", models_dir=shared_models,
                          layout="long", extra_columns=lambda e: {"tag": e.family}, **TINY)  # fmt: skip
    assert result.models == ["mobileone-s0"] and not result.failures
    (export,) = result.exports
    assert export.opset == 12 and export.resolution == 224 and export.reparameterized
    assert header(result.csv)[-1] == "tag"
    assert list(result.results["model"]) == ["mobileone-s0"] and list(result.results["tag"]) == ["mobileone"]
    assert list(result.results["opset"]) == [12]
    assert "| model | rounds | num_threads | mean (ms) | std (ms) |" in result.summary.read_text()
    assert set(result.correlations["against"]) == {"macs", "params"}
    assert_png(result.plot)
    again = run_pipeline(["mobileone-s0"], output_dir=tmp_path / "again", models_dir=shared_models, **TINY)
    assert again.exports[0].skipped  # the export is reused


def test_a_failed_export_is_reported_and_the_rest_still_run(tmp_path, shared_models, monkeypatch):
    real = mbbench.export.export_onnx

    def flaky(name, **kwargs):
        if name == "mobilevit-xxs":
            raise MbbenchError("could not export mobilevit-xxs: simulated")
        return real(name, **kwargs)

    monkeypatch.setattr(mbbench.export, "export_onnx", flaky)
    result = run_pipeline(["mobileone-s0", "mobilevit-xxs"], output_dir=tmp_path / "run", models_dir=shared_models,
                          **TINY)  # fmt: skip
    assert result.failures == [("mobilevit-xxs", "could not export mobilevit-xxs: simulated")]
    assert list(result.results["model"]) == ["mobileone-s0"]
    with pytest.raises(MbbenchError, match="no model could be exported"):
        run_pipeline(["mobilevit-xxs"], output_dir=tmp_path / "none", models_dir=shared_models, **TINY)


def test_reproduce_study_on_a_subset(tmp_path, shared_models):
    result = reproduce_study(models=["mobileone-s0"], output=tmp_path / "rep", models_dir=shared_models, **TINY)
    assert result.csv.name == "reproduce.csv" and result.layout == "long"
    row = result.results.iloc[0]
    assert (row["study"], row["factor"], row["value"], row["opset"]) == ("reproduce", "family", "mobileone", 12)
    assert math.isfinite(row["mean_ms"])


def test_reproduce_settings():
    from mbbench.studies import reproduce

    assert reproduce.study_models()[:5] == [f"mobileone-s{i}" for i in range(5)]
    assert len(reproduce.study_models()) == 15
    assert (reproduce.THREADS, reproduce.ROUNDS) == ("1-4", 30)
    assert (list(reproduce.QUICK_MODELS), reproduce.QUICK_THREADS, reproduce.QUICK_ROUNDS) == (
        ["mobileone-s0", "mobilevit-xxs", "mobilevitv2-050"], "1,2", 10)
