"""Training configuration: files, overrides and precedence; bad configurations fail at once, with
the reason, before any model is built or any file is written."""

from __future__ import annotations

import json
import shutil

import pytest

from roost.model.config import preset
from roost.train.config import (
    TrainConfig,
    check,
    load_config_file,
    model_config,
    parse_assignment,
    resolve_mesh,
)
from roost.train.prepare import prepare_config
from roost.train.run import RunDir
from roost.train.trainer import train
from roost.workspace import ConfigError, Workspace
from tests.train.conftest import tiny


def test_config_file_toml_table_or_top_level_and_json(tmp_path) -> None:
    (tmp_path / "a.toml").write_text('[train]\npreset = "tiny"\nlr = 3e-4\nmodel = {n_layers = 3}\n')
    (tmp_path / "b.toml").write_text('preset = "125m"\nseq_len = 2048\n')
    (tmp_path / "c.json").write_text(json.dumps({"tp": 2, "dp_shard": 4, "compile": True}))
    assert load_config_file(tmp_path / "a.toml") == {"preset": "tiny", "lr": 3e-4, "model": {"n_layers": 3}}
    assert load_config_file(tmp_path / "b.toml") == {"preset": "125m", "seq_len": 2048}
    assert load_config_file(tmp_path / "c.json")["tp"] == 2


def test_assignments_parse_toml_values() -> None:
    assert parse_assignment("lr=3e-4") == {"lr": 3e-4}
    assert parse_assignment("dtype=float32") == {"dtype": "float32"}  # a bare word is a string
    assert parse_assignment("compile=true") == {"compile": True}
    assert parse_assignment("model.n_layers=6") == {"model": {"n_layers": 6}}
    with pytest.raises(ConfigError, match="key=value"):
        parse_assignment("lr")


def test_precedence_toml_then_file_then_preset_then_set_then_flags(ws: Workspace, tmp_path) -> None:
    ws.config_path.write_text("[train]\nlr = 0.01\nseq_len = 64\nmodel = {n_layers = 3}\n")
    (tmp_path / "run.toml").write_text("seq_len = 128\nmicro_batch = 4\nmodel = {dim = 128}\n")
    config = prepare_config(
        ws,
        "new",
        config_file=tmp_path / "run.toml",
        preset="tiny",
        assignments=["micro_batch=2", "model.n_heads=8"],
        max_steps=5,
    )
    assert (config.lr, config.seq_len, config.micro_batch, config.max_steps, config.preset) == (
        0.01,
        128,
        2,
        5,
        "tiny",
    )
    assert config.model == {"n_layers": 3, "dim": 128, "n_heads": 8}


def test_an_existing_run_starts_from_its_own_config(ws: Workspace) -> None:
    RunDir(ws.runs_dir / "old").write_config(tiny(lr=0.005), preset("tiny"))
    assert prepare_config(ws, "old").lr == 0.005
    assert prepare_config(ws, "old", assignments=["lr=0.002"]).lr == 0.002


def test_unknown_settings_are_errors(ws: Workspace, tmp_path) -> None:
    (tmp_path / "typo.toml").write_text("learning_rate = 0.1\n")
    with pytest.raises(ConfigError, match="learning_rate"):
        prepare_config(ws, "r", config_file=tmp_path / "typo.toml")
    with pytest.raises(ConfigError, match="unknown model field"):
        model_config(tiny(model={"width": 3}), 512)


def test_mesh_degrees_must_multiply_to_the_world() -> None:
    assert resolve_mesh(TrainConfig(tp=2), 8).dp_shard == 4
    with pytest.raises(ConfigError, match="= 4 does not divide the 6 launched"):
        resolve_mesh(TrainConfig(tp=4), 6)
    with pytest.raises(ConfigError, match=r"= 4 ranks, but 2 were launched"):
        resolve_mesh(TrainConfig(dp_replicate=2, dp_shard=2), 2)


@pytest.mark.parametrize(
    ("changes", "world", "message"),
    [
        ({"tp": 3}, 3, "tensor parallel degree 3 does not divide 4 query heads"),
        ({"tp": 4}, 4, "tensor parallel degree 4 does not divide 2 key/value heads"),
        ({"global_batch": 6}, 2, "global_batch 6 is not a multiple of micro_batch 2 × 2 data-parallel ranks"),
        ({"seq_len": 4096}, 1, "seq_len 4096 exceeds the model's max_seq_len 128"),
        ({"tp": 2, "dp_replicate": 2, "dp_shard": 1}, 4, "does not combine with tp"),
        ({"warmup_steps": -1}, 1, "warmup_steps must not be negative"),
    ],
)
def test_check_names_the_problem(changes: dict, world: int, message: str) -> None:
    config = resolve_mesh(tiny(**changes), world)
    with pytest.raises(ConfigError, match=message):
        check(config, model_config(config, 512))


def test_training_refuses_bad_configs_before_any_compute(train_ws: Workspace) -> None:
    cases = [
        (tiny(model={"dim": 66}), "4 heads do not divide width 66"),
        (tiny(tp=2), "does not divide the 1 launched rank"),
        (tiny(preset="7b"), "unknown model preset"),
        (tiny(objective="sft"), "needs init_from"),
        (tiny(init_from="nope"), "no run 'nope'"),
    ]
    for config, message in cases:
        with pytest.raises((ConfigError, FileNotFoundError), match=message):
            train(train_ws, config, "bad")
        assert not (train_ws.runs_dir / "bad").exists()


def test_missing_shards_fail_with_what_to_do(train_ws: Workspace) -> None:
    (train_ws.shards_dir / "train-00001.bin").unlink()
    with pytest.raises(ConfigError, match=r"missing from .*: train-00001"):
        train(train_ws, tiny(), "r")
    shutil.rmtree(train_ws.shards_dir)
    with pytest.raises(ConfigError, match=r"no token shards in .*run `roost curate` first"):
        train(train_ws, tiny(), "r")
    assert not (train_ws.runs_dir / "r").exists()
