"""`roost config`: where the config file is, and every section's effective values."""

from __future__ import annotations

import importlib
from typing import Any

import typer

from roost.cli.common import JsonOption, console, emit, workspace
from roost.workspace import Workspace, config_defaults_toml

app = typer.Typer(help="Show the workspace's configuration (roost.toml).", no_args_is_help=True)

#: Each roost.toml section and the struct (module:name) that its stage reads it into.
SECTIONS: dict[str, str] = {
    "firehose": "roost.firehose.config:FirehoseConfig",
    "simulate": "roost.firehose.simulate:SimConfig",
    "curate": "roost.curate.config:CurateConfig",
    "plan": "roost.plan.config:PlanConfig",
    "train": "roost.train.config:TrainConfig",
    "serve": "roost.serve.config:ServeConfig",
    "search": "roost.search.config:SearchConfig",
    "ads": "roost.ads.config:AdsConfig",
}


def effective_config(ws: Workspace) -> dict[str, Any]:
    """Every section as its stage sees it: the file's values over the stage's defaults."""
    result = {}
    for section, target in SECTIONS.items():
        module_name, _, type_name = target.partition(":")
        kind = getattr(importlib.import_module(module_name), type_name)
        result[section] = ws.config(section, kind)
    return result


@app.command("path")
def path(ctx: typer.Context) -> None:
    """Print the path of roost.toml."""
    console.print(str(workspace(ctx).config_path))


@app.command("show")
def show(ctx: typer.Context, as_json: bool = JsonOption) -> None:
    """Print every section's effective values (defaults filled in), as TOML or JSON."""
    config = effective_config(workspace(ctx))
    emit(config, as_json, lambda c: console.print(config_defaults_toml(c), markup=False))
