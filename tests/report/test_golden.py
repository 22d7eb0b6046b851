"""The markdown report of a fixed CSV, byte for byte (issue 11): a refactor of the report must not change it.

After a deliberate change of the output, regenerate the expected file and review its diff:
``python -m tests.report.test_golden``.
"""

from __future__ import annotations

from pathlib import Path

from mbbench.report import load, render

DATA = Path(__file__).parent / "data"


def golden_markdown() -> bytes:
    # Loaded by its bare name from its own folder so the "Sources:" line does not depend on the checkout path.
    import os

    cwd = os.getcwd()
    os.chdir(DATA)
    try:
        return render(load("golden.csv"), "markdown").encode("utf-8")
    finally:
        os.chdir(cwd)


def test_markdown_report_is_byte_identical():
    assert golden_markdown() == (DATA / "golden.md").read_bytes()


if __name__ == "__main__":
    (DATA / "golden.md").write_bytes(golden_markdown())
