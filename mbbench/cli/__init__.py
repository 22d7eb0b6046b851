"""The ``mbbench`` command line: a thin click layer over the library.

Each command lives in its own module here and only parses options, calls one library function and renders the
result. Library errors (:class:`mbbench.errors.MbbenchError`) become one-line click errors.
"""

from __future__ import annotations

import click

from mbbench import __version__
from mbbench.cli._common import MbbenchGroup


@click.group(cls=MbbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mbbench")
def main() -> None:
    """Turn mobile vision backbones into trustworthy ONNX Runtime latency numbers.

    Pipeline: list -> export -> bench -> report.
    """


# Commands in pipeline order; each module is a thin layer over one library function.
from mbbench.cli import bench as _bench  # noqa: E402
from mbbench.cli import export as _export  # noqa: E402
from mbbench.cli import models as _models  # noqa: E402
from mbbench.cli import predict as _predict  # noqa: E402
from mbbench.cli import profile as _profile  # noqa: E402
from mbbench.cli import report as _report  # noqa: E402
from mbbench.cli import run as _run  # noqa: E402
from mbbench.cli import setup as _setup  # noqa: E402
from mbbench.cli import study as _study  # noqa: E402

for _command in (
    _models.list_cmd,
    _export.export_cmd,
    _bench.bench_cmd,
    _profile.profile_cmd,
    _report.report_cmd,
    _run.run_cmd,
    _study.study_group,
    _predict.predict_group,
    _setup.setup_cmd,
):
    main.add_command(_command)
