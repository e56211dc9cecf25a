"""The loader: windows over live tokens only, a seeded order, a position that survives checkpoints,
and the same global batches at any world size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from roost.curate.shards import ShardSet, ShardWriter, append_tombstones, write_index
from roost.train.data import IGNORE, DistributedLoader, TokenWindows, sequential_batches

EOT = 0


def write_numbered_shards(directory: Path, posts_per_shard: tuple[int, ...] = (40, 25)) -> ShardSet:
    """Post k is three copies of token k + 1 (then end-of-post), so every token says its post."""
    entries, k = [], 0
    for s, count in enumerate(posts_per_shard):
        writer = ShardWriter(directory, f"train-{s:05d}", np.uint16, EOT)
        for _ in range(count):
            k += 1
            writer.add(f"post{k}", [k, k, k])
        entries.append(writer.close())
    write_index(
        directory, {"dtype": "uint16", "vocab_size": 1000, "eot_id": EOT, "splits": {"train": entries}}
    )
    return ShardSet.open(directory)


def test_windows_cover_each_shard_in_order(tmp_path: Path) -> None:
    shards = write_numbered_shards(tmp_path).shards("train")
    windows = TokenWindows(shards, seq_len=8)
    assert len(windows) == (160 - 1) // 8 + (100 - 1) // 8  # no window spans two shards
    inputs, targets = windows.example(0)
    assert inputs.tolist() == [1, 1, 1, EOT, 2, 2, 2, EOT]
    assert targets.tolist() == [1, 1, EOT, 2, 2, 2, EOT, 3]
    first_of_second = windows.example(int(windows.cum[1]))[0]
    assert first_of_second[0] == 41  # the second shard's first post


def test_tombstoned_posts_never_reach_training(tmp_path: Path) -> None:
    shard_set = write_numbered_shards(tmp_path)
    deleted = {"post2", "post3", "post17", "post40", "post41", "post65"}
    append_tombstones(tmp_path, deleted)
    windows = TokenWindows(shard_set.shards("train"), seq_len=8, tombstones=shard_set.tombstones())
    for shard, (first, last) in enumerate(((1, 40), (41, 65))):
        live = [t for k in range(first, last + 1) if f"post{k}" not in deleted for t in (k, k, k, EOT)]
        covered = range(int(windows.cum[shard]), int(windows.cum[shard + 1]))
        assert len(covered) == (len(live) - 1) // 8
        for j, i in enumerate(covered):
            inputs, targets = windows.example(i)
            assert inputs.tolist() == live[j * 8 : j * 8 + 8]
            assert targets.tolist() == live[j * 8 + 1 : j * 8 + 9]
    assert windows.tokens == 4 * (65 - len(deleted))
    assert windows.example(0)[0].tolist() == [1, 1, 1, EOT, 4, 4, 4, EOT]  # 2 and 3 cut out


def global_batch(loaders: list[DistributedLoader]) -> list[list[int]]:
    """Every sample of the next step across `loaders` (one per rank), as sorted token lists."""
    rows = []
    for loader in loaders:
        for inputs, _ in loader.next_step():
            rows += [row.tolist() for row in inputs]
    return sorted(rows)


def make_loaders(windows: TokenWindows, dp_size: int, micro: int = 2) -> list[DistributedLoader]:
    return [
        DistributedLoader(windows, global_batch=8, micro_batch=micro, dp_rank=r, dp_size=dp_size, seed=7)
        for r in range(dp_size)
    ]


def test_a_step_is_the_same_samples_at_any_world_size(tmp_path: Path) -> None:
    windows = TokenWindows(write_numbered_shards(tmp_path, (40, 27)).shards("train"), seq_len=8)
    one, two, four = make_loaders(windows, 1), make_loaders(windows, 2), make_loaders(windows, 4, micro=1)
    for _ in range(6):  # past one epoch (32 windows / 8 per step = 4 steps)
        reference = global_batch(one)
        assert global_batch(two) == reference
        assert global_batch(four) == reference


def test_epochs_are_permutations_and_seeded(tmp_path: Path) -> None:
    windows = TokenWindows(write_numbered_shards(tmp_path, (40, 27)).shards("train"), seq_len=8)
    assert len(windows) == 32  # four global batches of 8
    (loader,) = make_loaders(windows, 1)
    epoch = [row for _ in range(4) for row in global_batch([loader])]
    assert sorted(epoch) == sorted(windows.example(i)[0].tolist() for i in range(len(windows)))
    (again,) = make_loaders(windows, 1)
    assert global_batch([again]) == sorted(epoch[:8])
    other = DistributedLoader(windows, global_batch=8, micro_batch=2, seed=8)
    assert global_batch([other]) != sorted(epoch[:8])


def test_position_resumes_exactly_and_resplits(tmp_path: Path) -> None:
    windows = TokenWindows(write_numbered_shards(tmp_path).shards("train"), seq_len=8)
    two = make_loaders(windows, 2)
    for _ in range(3):
        global_batch(two)
    state = two[0].state_dict()
    assert state["samples_seen"] == 24
    one = make_loaders(windows, 1)
    one[0].load_state_dict(state)
    for _ in range(3):
        assert global_batch(one) == global_batch(two)


def test_a_loader_says_when_the_batch_does_not_split() -> None:
    with pytest.raises(ValueError, match="not a multiple"):
        DistributedLoader(np.zeros(10), global_batch=6, micro_batch=4)  # type: ignore[arg-type]


def test_validation_set_is_the_same_at_any_world_size(tmp_path: Path) -> None:
    windows = TokenWindows(write_numbered_shards(tmp_path).shards("train"), seq_len=8)

    def rows(dp_size: int) -> tuple[list, list[int]]:
        collected, counts = [], []
        for rank in range(dp_size):
            batches = sequential_batches(windows, count=11, micro_batch=2, dp_rank=rank, dp_size=dp_size)
            counts.append(len(batches))
            for inputs, targets in batches:
                kept = (targets != IGNORE).all(dim=1)
                collected += [row.tolist() for row in inputs[kept]]
        return sorted(collected), counts

    reference, _ = rows(1)
    assert len(reference) == 11
    for dp_size in (2, 4):
        collected, counts = rows(dp_size)
        assert collected == reference
        assert len(set(counts)) == 1  # every rank runs as many forward passes
    assert torch.equal(
        sequential_batches(windows, count=3, micro_batch=2)[0][0][0], torch.from_numpy(windows.example(0)[0])
    )
