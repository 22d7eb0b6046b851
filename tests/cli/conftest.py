import pytest


@pytest.fixture
def shared_models(tmp_path_factory):
    """One models folder for the whole session, so each registry model is exported once."""
    folder = tmp_path_factory.getbasetemp() / "shared-models"
    folder.mkdir(exist_ok=True)
    return folder
