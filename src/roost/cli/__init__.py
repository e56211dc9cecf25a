"""The `roost` command: one sub-command per stage, each a thin layer over that stage's code.

Each stage's commands live in their own module here (`cli/<stage>.py`) so the layer stays thin and
a stage's commands can be read in one place; this module only puts them together. Heavy imports
(torch, tantivy, ...) happen inside the commands, so `roost --help` stays instant.
"""

from __future__ import annotations

from pathlib import Path

import typer

from roost.cli import ads, config, curate, demo, firehose, imports, plan, search, serve, simulate, train
from roost.cli.common import HomeState
from roost.workspace import DEFAULT_HOME

app = typer.Typer(
    name="roost",
    help="roost: a social platform's own generative-AI stack, from firehose to search and ads.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main(
    ctx: typer.Context,
    home: Path = typer.Option(
        DEFAULT_HOME, "--home", envvar="ROOST_HOME", help="Workspace directory (holds roost.toml)."
    ),
) -> None:
    ctx.obj = HomeState(home)


app.add_typer(config.app, name="config")
app.add_typer(firehose.app, name="firehose")
app.command("import")(imports.import_command)
app.command("simulate")(simulate.simulate)
app.command("curate")(curate.curate_command)
app.add_typer(curate.tokenizer_app, name="tokenizer")
app.command("plan")(plan.plan_command)
app.command("train")(train.train)
app.command("eval")(train.evaluate)
app.add_typer(train.export_app, name="export")
app.command("serve")(serve.serve_command)
app.command("chat")(serve.chat_command)
app.add_typer(serve.keys_app, name="keys")
app.command("search")(search.search_command)
app.add_typer(search.index_app, name="index")
app.add_typer(ads.app, name="ads")
app.command("demo")(demo.demo_command)


def main() -> None:
    app()
