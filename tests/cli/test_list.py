import json
import subprocess
import sys

from click.testing import CliRunner

from mbbench import __version__
from mbbench.cli import main
from mbbench.models import list_models


def test_list_table_names_every_model():
    result = CliRunner().invoke(main, ["list"], terminal_width=200)
    assert result.exit_code == 0, result.output
    for name in list_models():
        assert name in result.output
    assert "275.1M" in result.output  # mobileone-s0 deploy MACs at 224
    assert "2.08M" in result.output  # and its deploy parameters


def test_list_json_has_the_facts():
    result = CliRunner().invoke(main, ["list", "--json"])
    assert result.exit_code == 0
    rows = json.loads(result.output)
    assert [r["name"] for r in rows] == list_models()
    s4 = next(r for r in rows if r["name"] == "mobileone-s4")
    assert s4 == {
        "name": "mobileone-s4",
        "family": "mobileone",
        "params": 14_838_352,
        "params_train": 14_951_248,
        "macs": s4["macs"],
        "resolution": 224,
        "reparameterizable": True,
    }
    assert abs(s4["macs"] - 2979.3e6) < 0.1e6
    v2 = next(r for r in rows if r["name"] == "mobilevitv2-100")
    assert v2["resolution"] == 256 and v2["reparameterizable"] is False


def test_list_family_filter():
    result = CliRunner().invoke(main, ["list", "--family", "mobilevit", "--json"])
    assert [r["name"] for r in json.loads(result.output)] == ["mobilevit-xxs", "mobilevit-xs", "mobilevit-s"]


def test_bad_option_is_one_clear_error_without_traceback():
    result = CliRunner().invoke(main, ["list", "--family", "resnet"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert "'resnet' is not one of" in result.output


def test_version():
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_python_dash_m_entry_point():
    proc = subprocess.run([sys.executable, "-m", "mbbench", "--version"], capture_output=True, text=True, check=True)
    assert __version__ in proc.stdout


def test_importing_mbbench_does_not_import_torch():
    # The portable bench core runs where torch cannot be installed.
    code = "import sys, mbbench; print('torch' in sys.modules, 'pandas' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.split() == ["False", "False"]


def test_list_answers_without_importing_torch():
    # The facts are data: listing the zoo must not pay for torch (6-12 s when it built every model).
    code = (
        "import runpy, sys\nsys.argv = ['mbbench', 'list', '--json']\n"
        "try:\n    runpy.run_module('mbbench', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stderr.strip().splitlines()[-1] == "False"
    assert len(json.loads(proc.stdout)) == len(list_models())


def test_family_choices_come_from_the_registry():
    from mbbench.models import model_info

    families = list(dict.fromkeys(model_info(n).family for n in list_models()))
    for family in families:
        result = CliRunner().invoke(main, ["list", "--family", family, "--json"])
        assert [r["name"] for r in json.loads(result.output)] == list_models(family)
    result = CliRunner().invoke(main, ["list", "--help"])
    assert "[" + "|".join(families) + "]" in result.output
