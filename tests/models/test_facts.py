"""The facts table that ``mbbench list`` prints without torch must equal what the real models count."""

import pytest

from mbbench.models import list_models, model_info, model_stats
from mbbench.models.facts import FAMILIES, generate, zoo_facts


def test_table_names_every_registry_model_in_registry_order():
    assert [row["name"] for row in zoo_facts()] == list_models()
    assert list(FAMILIES) == list(dict.fromkeys(model_info(n).family for n in list_models()))


@pytest.mark.parametrize("row", zoo_facts(), ids=lambda row: row["name"])
def test_each_row_equals_the_built_model(row):
    info = model_info(row["name"])
    stats = model_stats(row["name"])  # builds the model on the meta device and counts
    assert row == {
        "name": info.name,
        "family": info.family,
        "params": stats["params"],
        "params_train": stats["params_train"],
        "macs": stats["macs"],
        "resolution": info.default_resolution,
        "reparameterizable": info.reparameterizable,
    }


def test_generate_reproduces_the_literal():
    from pathlib import Path

    import mbbench.models.facts as facts

    assert generate() in Path(facts.__file__).read_text()


def test_unknown_family_is_refused():
    from mbbench.errors import UserInputError

    with pytest.raises(UserInputError, match="choose one of mobilenetv3, mobileone, fastvit, mobilevit, mobilevitv2"):
        zoo_facts("resnet")


def test_every_family_fact_lives_in_one_table():
    """The report's order, the plot colours, the calibration recipe and the study opsets all read FAMILY_TABLE."""
    from mbbench.export.calibration import PREPROCESSING
    from mbbench.models.facts import FAMILY_TABLE, STUDY_OPSETS
    from mbbench.pipeline import STUDY_OPSETS as PIPELINE_OPSETS
    from mbbench.report.load import FAMILY_ORDER, family_of
    from mbbench.report.plots import _FAMILY_CMAPS

    assert tuple(FAMILY_TABLE) == FAMILIES == FAMILY_ORDER
    assert set(_FAMILY_CMAPS) == set(PREPROCESSING) == set(FAMILIES)  # Mobile-Former included
    assert "Reds" not in _FAMILY_CMAPS.values()  # red is the flagged ring's colour
    assert len(set(_FAMILY_CMAPS.values())) == len(FAMILIES)
    assert PIPELINE_OPSETS == STUDY_OPSETS == {"mobileone": 12, "mobilevit": 17, "mobilevitv2": 18}
    assert [family_of(name) for name in ("mobilevitv2-050", "mobilevit-xs", "mobileformer-26m", "resnet")] == [
        "mobilevitv2", "mobilevit", "mobileformer", "other"]


def test_the_registry_imports_no_family():
    """timm's layout: the families import the registry and register themselves; the zoo imports the families."""
    import ast
    from pathlib import Path

    import mbbench.models.registry as registry

    tree = ast.parse(Path(registry.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
                and node.module.startswith("mbbench.models") for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not imported & set(FAMILIES) and not {f"mbbench.models.{f}" for f in FAMILIES} & imported
