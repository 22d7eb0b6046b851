"""The portable core pushed to a device is self-contained: its modules import from the pushed files alone.

The loopback tests' remote Python is this very venv, where an editable install could quietly supply a module the
push forgot; here that finder is removed, as on a phone where mbbench is not installed at all.
"""

import io
import subprocess
import sys
import tarfile

from mbbench.remote.fleet import portable_core

ENTRY_POINTS = ("mbbench.bench.agent", "mbbench.bench._worker", "mbbench.bench.runner", "mbbench.bench.device",
                "mbbench.bench.profiling", "mbbench.runtimes.onnxruntime")


def test_every_entry_point_imports_from_the_pushed_files_alone(tmp_path):
    core_id, data = portable_core()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "core" / core_id
    code = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]\n"
        "sys.path_hooks[:] = [h for h in sys.path_hooks if 'editable' not in repr(h).lower()]\n"
        f"sys.path.insert(0, {str(root)!r})\n"
        "import importlib\n"
        f"for name in {ENTRY_POINTS!r}:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(root)!r}), module.__file__\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pandas', 'click', 'rich', 'onnx'))\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_the_pushed_core_knows_the_version_of_the_host_that_pushed_it(tmp_path):
    """On a device there is no package metadata for the core (python -S: none is found here either), and the
    rows it writes must still carry the version that measured them, not 0.1.0+unknown (issue 26)."""
    import mbbench

    core_id, data = portable_core()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(tmp_path, filter="data")
    root = tmp_path / "core" / core_id
    code = f"import sys; sys.path.insert(0, {str(root)!r}); import mbbench; print(mbbench.__version__)"
    proc = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == mbbench.__version__, proc.stderr
    assert "+unknown" not in mbbench.__version__  # this checkout's version comes from its metadata
