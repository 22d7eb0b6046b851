"""``mbbench list``: the model zoo (from :func:`mbbench.models.zoo_facts`, without importing torch)."""

from __future__ import annotations

import json

import click
from rich.table import Table

from mbbench.cli._common import MbbenchCommand, console
from mbbench.models.facts import FAMILIES, zoo_facts


@click.command("list", cls=MbbenchCommand)
@click.option("--family", type=click.Choice(FAMILIES), help="Only this family.")
@click.option("--json", "as_json", is_flag=True, help="Print the same facts as JSON.")
@click.option("--runtimes", "runtimes", is_flag=True,
              help="List the runtimes instead: installed or not (and the extra to install), versions, options.")
def list_cmd(family: str | None, as_json: bool, runtimes: bool) -> None:
    """List the registry models with parameters and MACs (--runtimes: the runtimes).

    Parameters are those of the deploy form (re-parameterized for MobileOne); MACs count convolutions,
    linear layers and attention matmuls at the default resolution.
    """
    if runtimes:
        _list_runtimes(as_json)
        return
    rows = zoo_facts(family)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="mbbench model zoo")
    table.add_column("name", style="bold")
    table.add_column("family")
    table.add_column("params", justify="right")
    table.add_column("MACs", justify="right")
    table.add_column("resolution", justify="right")
    table.add_column("re-param", justify="center")
    for row in rows:
        table.add_row(
            row["name"],
            row["family"],
            f"{row['params'] / 1e6:.2f}M",
            f"{row['macs'] / 1e6:.1f}M",
            str(row["resolution"]),
            "yes" if row["reparameterizable"] else "-",
        )
    console().print(table)


def _list_runtimes(as_json: bool) -> None:
    from mbbench.runtimes import runtime_facts

    rows = runtime_facts()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = Table(title="mbbench runtimes (--runtime NAME; --runtime-option [NAME.]KEY=VALUE)")
    for column in ("name", "installed", "runs", "converter", "options (default)"):
        table.add_column(column)
    for row in rows:
        installed = row["version"] or f"[yellow]no[/]: pip install 'mbbench[{row['extra']}]'"
        options = "; ".join(f"{k}={o['default']}" + (f" ({'/'.join(o['choices'])})" if o["choices"] else "")
                            for k, o in row["options"].items())
        table.add_row(row["name"], installed, row["artifact"], row["converter"], options or "-")
    console().print(table)
