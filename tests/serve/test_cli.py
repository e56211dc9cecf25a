"""`roost keys` and `roost chat`, run as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from typer.testing import CliRunner

from roost.cli import app


def test_keys_add_list_revoke(tmp_path) -> None:
    runner = CliRunner()
    home = ["--home", str(tmp_path / "home")]
    added = runner.invoke(app, [*home, "keys", "add", "--label", "search", "--json"])
    assert added.exit_code == 0, added.output
    record = json.loads(added.output)
    assert record["key"].startswith("rk_") and record["label"] == "search"
    listed = json.loads(runner.invoke(app, [*home, "keys", "list", "--json"]).output)
    assert [k["key_id"] for k in listed] == [record["key_id"]]
    assert "key" not in listed[0] and listed[0]["revoked_at"] is None
    assert runner.invoke(app, [*home, "keys", "revoke", record["key_id"]]).exit_code == 0
    assert json.loads(runner.invoke(app, [*home, "keys", "list", "--json"]).output)[0]["revoked_at"]
    missing = runner.invoke(app, [*home, "keys", "revoke", "0000000000000000"])
    assert missing.exit_code == 1 and "no API key" in missing.output


def test_chat_streams_a_conversation(server) -> None:
    with server.http() as http:
        expected = http.post(
            "/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "the cat"}], "temperature": 0, "max_tokens": 20},
        ).json()["choices"][0]["message"]["content"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "roost",
            "chat",
            "--url",
            server.url,
            "--temperature",
            "0",
            "--max-tokens",
            "20",
        ],
        input="the cat\nour bus\n\n",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROOST_API_KEY": server.key},
    )
    assert result.returncode == 0, result.stderr
    replies = [
        line.removeprefix("roost> ") for line in result.stdout.splitlines() if line.startswith("roost> ")
    ]
    assert len(replies) == 2 and replies[0] == expected


def test_chat_without_a_key_says_what_to_do(server) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ROOST_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "roost", "chat", "--url", server.url],
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 1 and "roost keys add" in " ".join(result.stderr.split())
