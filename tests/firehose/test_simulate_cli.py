"""`roost simulate` through the real command: byte-identical output for a seed, files, zstd, reports."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import zstandard

from roost.posts import decode_event


def roost(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "roost", "--home", str(home), "simulate", *args]


def run(home: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(roost(home, *args), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()
    return done


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow  # two 100k-post runs: about 10 s on an idle 2-core box, more on a busy one
def test_same_seed_gives_byte_identical_output(tmp_path: Path) -> None:
    # The two 100k-post runs go in parallel; each is a separate process with its own interpreter.
    outs = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    procs = [
        subprocess.Popen(
            roost(tmp_path / f"home{i}", "--posts", "100000", "--seed", "1", "--out", str(out)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for i, out in enumerate(outs)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
    assert sha256(outs[0]) == sha256(outs[1])
    lines = outs[0].read_bytes().splitlines()
    assert sum(line.startswith(b'{"type":"post"') for line in lines) == 100_000
    assert decode_event(lines[-1]).type == "post"

    other = tmp_path / "c.jsonl"
    run(tmp_path / "home2", "--posts", "2000", "--seed", "2", "--out", str(other))
    assert other.read_bytes().splitlines()[:2000] != lines[:2000]


def test_stdout_zstd_and_json_report(tmp_path: Path) -> None:
    home = tmp_path / "home"
    plain = tmp_path / "s.jsonl"
    report = json.loads(run(home, "--posts", "3000", "--seed", "5", "--out", str(plain), "--json").stdout)
    assert report["posts"] == 3000 and report["out"] == str(plain)
    assert report["bytes"] == plain.stat().st_size

    packed = tmp_path / "s.jsonl.zst"
    run(home, "--posts", "3000", "--seed", "5", "--out", str(packed))
    assert zstandard.ZstdDecompressor().decompressobj().decompress(packed.read_bytes()) == plain.read_bytes()

    streamed = run(home, "--posts", "3000", "--seed", "5", "--json")  # events on stdout, report on stderr
    assert streamed.stdout == plain.read_bytes()
    assert json.loads(streamed.stderr)["posts"] == 3000
    assert not list(tmp_path.glob("*.partial"))


def test_seed_comes_from_the_config_and_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "roost.toml").write_text("[simulate]\nseed = 5\nusers = 3000\n")
    from_config = run(home, "--posts", "200").stdout
    (home / "roost.toml").write_text("[simulate]\nusers = 3000\n")
    assert run(home, "--posts", "200", "--seed", "5").stdout == from_config

    (home / "roost.toml").write_text("[simulate]\nlanguages = {pt = 1.0}\n")
    done = subprocess.run(roost(home, "--posts", "10"), capture_output=True, timeout=120)
    assert done.returncode != 0 and b"no grammar for language" in done.stderr
    assert b"Traceback" not in done.stderr
    (home / "roost.toml").write_text("[simulate]\nusres = 10\n")
    done = subprocess.run(roost(home, "--posts", "10"), capture_output=True, timeout=120)
    assert done.returncode != 0 and b"usres" in done.stderr and b"Traceback" not in done.stderr


def test_workers_write_the_bytes_one_process_writes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "roost.toml").write_text("[simulate]\nusers = 3000\n")
    one = tmp_path / "one.jsonl"
    two = tmp_path / "two.jsonl"
    run(home, "--posts", "20000", "--shards", "2", "--out", str(one))
    report = json.loads(run(home, "--posts", "20000", "--workers", "2", "--out", str(two), "--json").stdout)
    assert report["posts"] == 20000
    assert sha256(one) == sha256(two)
    unsharded = run(home, "--posts", "2000").stdout
    assert unsharded.splitlines()[:100] != one.read_bytes().splitlines()[:100]
    done = subprocess.run(
        roost(home, "--posts", "10", "--workers", "3", "--shards", "2"), capture_output=True, timeout=120
    )
    assert done.returncode != 0 and b"--workers 3" in done.stderr and b"Traceback" not in done.stderr
