"""`roost plan`: the report, --json, --emit-config read back by the trainer's own config code,
and --compare on the published cases."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from roost.cli import app
from roost.train.config import TrainConfig, check, load_config_file, merge, model_config, resolve_mesh
from tests.conftest import SCALE_CASES, need

runner = CliRunner()


def roost(tmp_path, *args: str):
    return runner.invoke(app, ["--home", str(tmp_path / "home"), *args])


def test_plan_prints_tables_and_json(tmp_path):
    shown = roost(tmp_path, "plan", "--gpu", "h100", "--gpus", "512", "--model", "8b", "--days", "7")
    assert shown.exit_code == 0, shown.output
    for heading in (
        "Layouts, fastest first",
        "One step of the best layout",
        "Memory on the busiest GPU",
        "goodput",
        "GPU-hours",
    ):
        assert heading in shown.output
    result = roost(
        tmp_path, "plan", "--gpus", "512", "--model", "8b", "--days", "7", "--price", "3", "--json"
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["gpu"]["count"] == 512 and plan["model"]["name"] == "8b"
    best = plan["best"]["layout"]
    assert best["tp"] * best["pp"] * best["cp"] * best["dp"] == 512
    assert plan["training"]["days"] == pytest.approx(7)
    assert plan["training"]["cost"] == pytest.approx(plan["training"]["gpu_hours"] * 3)
    assert 0 < plan["reliability"]["goodput"] < 1


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_emitted_config_is_one_the_trainer_accepts(tmp_path, suffix):
    path = tmp_path / f"train{suffix}"
    result = roost(
        tmp_path, "plan", "--gpus", "256", "--params", "13B", "--tokens", "260B", "--emit-config", str(path)
    )
    assert result.exit_code == 0, result.output
    settings = load_config_file(path)
    config = merge(TrainConfig(), settings, str(path))
    resolved = resolve_mesh(config, world_size=256)
    check(resolved, model_config(resolved, vocab_size=128_256))  # raises on anything it cannot run
    assert resolved.dp_degree * resolved.tp == 256
    assert resolved.global_batch * resolved.seq_len * resolved.max_steps == pytest.approx(260e9, rel=0.01)
    assert resolved.model["n_layers"] > 0 and 0 < resolved.checkpoint_every <= resolved.max_steps


def test_emit_config_for_a_preset_names_it(tmp_path):
    path = tmp_path / "plan.toml"
    result = roost(
        tmp_path, "plan", "--gpus", "1024", "--model", "70b", "--days", "30", "--emit-config", str(path)
    )
    assert result.exit_code == 0, result.output
    text = path.read_text()
    assert text.startswith("# Written by `roost plan") and "[train]" in text
    settings = load_config_file(path)
    assert settings["preset"] == "70b" and settings["activation_checkpoint"] in ("none", "full")


def test_bad_input_is_a_one_line_error(tmp_path):
    result = roost(tmp_path, "plan", "--params", "lots", "--days", "1")
    assert result.exit_code == 1 and "not a number like 70B" in result.output
    result = roost(tmp_path, "plan", "--gpu", "v100", "--model", "8b", "--days", "1")
    assert result.exit_code == 1 and "unknown GPU 'v100'" in result.output
    assert "Traceback" not in result.output


def test_compare_reproduces_the_published_cases(tmp_path):
    result = roost(tmp_path, "plan", "--compare", str(need(SCALE_CASES)), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert len({c["case"] for c in report["comparisons"]}) == 52
    assert all(c["ok"] for c in report["comparisons"])
    assert set(report["summary"]) == {"throughput", "days", "memory", "compute_optimal", "interval"}
