"""The commands: `roost train`, `roost eval`, `roost export hf`, through typer's runner."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from roost.cli import app
from roost.workspace import Workspace

TINY = ["--preset", "tiny", "--set", "seq_len=32", "--set", "micro_batch=2", "--set", "global_batch=4"]
TINY += [
    "--set",
    "dtype=float32",
    "--set",
    "warmup_steps=1",
    "--set",
    "eval_sequences=8",
    "--set",
    "eval_every=2",
]


def invoke(ws: Workspace, *args: str):
    return CliRunner().invoke(app, ["--home", str(ws.home), *args])


def test_train_eval_export_from_the_command_line(train_ws: Workspace) -> None:
    done = invoke(train_ws, "train", "--run", "cli", "--max-steps", "2", *TINY, "--json")
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout[done.stdout.index("{") :])
    assert result["step"] == 2 and result["val_bpb"] > 0
    done = invoke(train_ws, "eval", "cli", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["loss"] > 0
    done = invoke(train_ws, "export", "hf", "cli")
    assert done.exit_code == 0, done.output
    assert (train_ws.export_dir / "cli" / "model.safetensors").exists()


def test_bad_config_is_one_line_not_a_traceback(train_ws: Workspace) -> None:
    done = invoke(train_ws, "train", "--run", "bad", *TINY, "--set", "model.dim=66")
    assert done.exit_code == 1
    assert "4 heads do not divide width 66" in done.output and "Traceback" not in done.output


def test_help_is_there(train_ws: Workspace) -> None:
    for command in (["train"], ["eval"], ["export", "hf"], ["export", "import-hf"]):
        done = invoke(train_ws, *command, "--help")
        assert done.exit_code == 0 and "Usage" in done.output
