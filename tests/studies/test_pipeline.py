"""``run_pipeline`` (and the reproduce study built on it) on one small registry model, threads 1, 2 rounds."""

from __future__ import annotations

import math

import pytest

import mbbench.export
from mbbench.errors import MbbenchError, UserInputError
from mbbench.pipeline import STUDY_OPSETS, plan_run, resolve_opsets, run_pipeline
from mbbench.studies import reproduce_study
from mbbench.studies.reproduce import reproduce_plan

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
    assert "| model | rounds | num_threads | p50 (ms) |" in result.summary.read_text()
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


def families_in_registry_order() -> list[str]:
    """The original study's families (the zoo's later families are not in its default runs), registry order."""
    from mbbench.models import list_models, model_info

    study = {"mobileone", "mobilevit", "mobilevitv2"}
    return [f for f in dict.fromkeys(model_info(m).family for m in list_models()) if f in study]


def summary(plan) -> list[tuple[str, int, int]]:
    return [(t.model, t.opset, t.resolution) for t in plan.targets]


def test_reproduce_plans_every_zoo_model_at_the_study_opsets_threads_1_to_4():
    from mbbench.models import list_models, model_info

    plan = reproduce_plan()
    # the README's promise: MobileOne at opset 12, MobileViT v1 at 17, MobileViT v2 at 18, all at 224x224
    by_family = {"mobileone": 12, "mobilevit": 17, "mobilevitv2": 18}
    study = [m for m in list_models() if model_info(m).family in by_family]
    assert summary(plan) == [(m, by_family[model_info(m).family], 224) for m in study]
    assert len(plan.targets) == 15
    assert (plan.config.threads, plan.config.rounds, plan.layout, plan.name) == ((1, 2, 3, 4), 30, "long", "reproduce")


def test_reproduce_quick_plans_the_smallest_model_of_each_family_at_threads_1_2():
    from mbbench.models import list_models

    plan = reproduce_plan(quick=True)
    assert [t.model for t in plan.targets] == [list_models(f)[0] for f in families_in_registry_order()]
    assert [t.opset for t in plan.targets] == [12, 17, 18]
    assert (plan.config.threads, plan.config.rounds, plan.layout) == ((1, 2), 10, "long")
    # what the user passes wins over the study's settings, a model still at its family's study opset
    chosen = reproduce_plan(quick=True, threads="1", rounds=3, models=["mobilevit_xs"], warmup=0, isolate=False)
    assert summary(chosen) == [("mobilevit-xs", 17, 224)]
    assert (chosen.config.threads, chosen.config.rounds, chosen.config.warmup, chosen.config.isolate) == (
        (1,), 3, 0, False)


def test_run_without_models_plans_one_small_model_per_family_with_the_study_preset():
    from mbbench.models import list_models

    plan = plan_run()  # what `mbbench run` with no MODEL hands to export and bench
    assert [t.model for t in plan.targets] == [list_models(f)[0] for f in families_in_registry_order()]
    assert summary(plan) == [(t.model, o, 224) for t, o in zip(plan.targets, (12, 17, 18))]
    assert (plan.config.threads, plan.config.rounds, plan.layout, plan.name) == ((1, 2), 30, "wide", "run")
    assert summary(plan_run(["mobileone-s1"], opsets=17, resolution=256)) == [("mobileone-s1", 17, 256)]


def test_bad_plans_fail_before_anything_is_written(tmp_path):
    with pytest.raises(UserInputError, match="unknown layout 'tall'"):
        plan_run(layout="tall")
    with pytest.raises(UserInputError, match="resolution must be a whole number"):
        plan_run(resolution="224")
    with pytest.raises(UserInputError, match="rounds"):
        run_pipeline(["mobileone-s0"], rounds=1, output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_pareto_preset_plans_two_sizes_of_every_family_and_unknown_presets_are_refused():
    from mbbench.models import list_models, model_info
    from mbbench.pipeline import plan_run

    plan = plan_run(preset="pareto", threads=1)
    families = [model_info(t.model).family for t in plan.targets]
    assert sorted(set(families)) == sorted({model_info(m).family for m in list_models()})
    assert all(families.count(f) == 2 for f in set(families))
    assert {t.resolution for t in plan.targets} == {224}
    with pytest.raises(UserInputError, match="unknown preset 'fast'"):
        plan_run(preset="fast")
