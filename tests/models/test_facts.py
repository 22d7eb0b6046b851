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
