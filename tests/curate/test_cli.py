"""`roost curate` and `roost tokenizer train` through the real command line (in process)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from roost.cli import app
from roost.curate.corpus import read_manifest
from roost.curate.shards import ShardSet
from roost.tokenizer import tokenizer_hash
from tests.curate.handmade import chatter, small_config, store_posts


def test_curate_then_retrain_the_tokenizer(ws) -> None:
    small_config(ws)
    store_posts(ws, chatter(700, seed=8))
    runner = CliRunner()

    result = runner.invoke(app, ["--home", str(ws.home), "curate", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["read"] == 700 and report["kept"] + sum(report["removed"].values()) == 700
    assert report["tokens"]["train"] > 0 and not report["up_to_date"]

    human = runner.invoke(app, ["--home", str(ws.home), "curate"])
    assert human.exit_code == 0 and "Nothing to curate" in human.stdout

    before = tokenizer_hash(ws.tokenizer_dir)
    trained = runner.invoke(
        app, ["--home", str(ws.home), "tokenizer", "train", "--vocab-size", "400", "--json"]
    )
    assert trained.exit_code == 0, trained.output
    after = json.loads(trained.stdout)
    assert after["sha256"] != before and after["sha256"] == tokenizer_hash(ws.tokenizer_dir)
    shards = ShardSet.open(ws.shards_dir)
    # 400 learned, plus the placeholder tokens roost.tokenizer adds after training.
    assert (
        shards.index["tokenizer_sha256"] == after["sha256"] and shards.vocab_size == after["vocab_size"] < 410
    )
    assert read_manifest(ws.corpus_dir)["tokenizer"]["sha256"] == after["sha256"]
    assert sum(s.n_posts for split in ("train", "val") for s in shards.shards(split)) == report["kept"]


def test_summary_table_and_clear_errors(ws) -> None:
    small_config(ws)
    store_posts(ws, chatter(300, seed=9))
    runner = CliRunner()
    result = runner.invoke(app, ["--home", str(ws.home), "curate"])
    assert result.exit_code == 0
    for label in ("posts in", "kept", "tokens (train)", "posts/s"):
        assert label in result.stdout
    bad = runner.invoke(app, ["--home", str(ws.home), "curate", "--rank", "3", "--world-size", "2"])
    assert bad.exit_code != 0 and "rank 3" in bad.output and "Traceback" not in bad.output
    ws.config_path.write_text('[curate]\nsteps = ["normalize", "nonsense"]\n')
    bad = runner.invoke(app, ["--home", str(ws.home), "curate"])
    assert bad.exit_code != 0 and "nonsense" in bad.output


def test_tokenizer_train_needs_a_corpus(ws) -> None:
    result = CliRunner().invoke(app, ["--home", str(ws.home), "tokenizer", "train"])
    assert result.exit_code != 0 and "roost curate" in result.output


def test_roost_train_reads_the_curated_shards(ws) -> None:
    small_config(ws)
    store_posts(ws, chatter(700, seed=10))
    runner = CliRunner()
    assert runner.invoke(app, ["--home", str(ws.home), "curate", "--json"]).exit_code == 0
    tiny = ["--preset", "tiny", "--set", "seq_len=32", "--set", "micro_batch=2", "--set", "global_batch=4"]
    tiny += ["--set", "dtype=float32", "--set", "warmup_steps=1", "--set", "eval_every=0"]
    tiny += ["--set", "keep_checkpoints=0"]
    trained = runner.invoke(
        app, ["--home", str(ws.home), "train", "--run", "curated", "--max-steps", "1", *tiny, "--json"]
    )
    assert trained.exit_code == 0, trained.output
    result = json.loads(trained.stdout[trained.stdout.index("{") :])
    assert result["step"] == 1 and result["loss"] > 0
