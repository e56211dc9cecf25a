import itertools
import os
import time

import pytest

from roost.firehose.live import append_live
from roost.firehose.log import Log, LogBusyError, LogWriter
from roost.posts import Event, encode
from tests.firehose.events import make_events


def _events(n: int, seed: int = 0) -> list[Event]:
    return list(itertools.islice(make_events(seed), n))


def test_append_assigns_consecutive_seqs_and_reads_back_the_same_bytes(tmp_path) -> None:
    events = _events(3000)
    with LogWriter(tmp_path, segment_bytes=64 << 10) as writer:
        assert writer.append(events[:100]) == 99
        for i in range(100, 3000, 100):
            assert writer.append(events[i : i + 100]) == i + 99
    log = Log(tmp_path)
    assert log.head == 2999 and log.stats().segments > 5
    read = list(log.iter_events())
    assert [e.seq for e in read] == list(range(3000))
    assert [encode(e) for e in read] == [encode(e) for e in events]
    assert [e.seq for e in log.read(1234, limit=5)] == [1234, 1235, 1236, 1237, 1238]
    chunk = log.read_chunk(2500, max_bytes=1)
    assert len(chunk) == 1 and chunk.first_seq == 2500  # always at least one event


def test_a_reader_sees_only_what_the_index_commits(tmp_path) -> None:
    with LogWriter(tmp_path) as writer:
        writer.append(_events(10))
        log = Log(tmp_path)
        assert log.head == 9
        # Bytes written to the data file but not yet committed to the index stay invisible.
        data = next(tmp_path.glob("*.log"))
        with open(data, "ab") as f:
            f.write(b'{"type":"delete","id":"x","post":null,"seq":10}\n')
        assert log.refresh() == 9 and log.read_chunk(10) is None


def test_one_writer_at_a_time(tmp_path) -> None:
    with LogWriter(tmp_path), pytest.raises(LogBusyError, match="another process"):
        LogWriter(tmp_path)


def test_recovery_drops_a_torn_last_line_and_keeps_the_rest(tmp_path) -> None:
    with LogWriter(tmp_path) as writer:
        writer.append(_events(100))
    data = next(tmp_path.glob("*.log"))
    size = data.stat().st_size
    os.truncate(data, size - 7)  # a crash in the middle of the last line
    idx = next(tmp_path.glob("*.idx"))
    os.truncate(idx, idx.stat().st_size - 16 * 3)  # and before the last entries reached the index
    with LogWriter(tmp_path) as writer:
        assert writer.next_seq == 99
        assert writer.append(_events(1, seed=5)) == 99
    assert [e.seq for e in Log(tmp_path).iter_events()] == list(range(100))
    assert next(tmp_path.glob("*.torn")).exists()  # the torn bytes are set aside, not lost


def test_recovery_rebuilds_a_lost_index_from_the_data(tmp_path) -> None:
    with LogWriter(tmp_path) as writer:
        writer.append(_events(50))
    os.truncate(next(tmp_path.glob("*.idx")), 0)
    with LogWriter(tmp_path) as writer:
        assert writer.head == 49
    assert Log(tmp_path).head == 49


def test_compaction_drops_deleted_bodies_and_keeps_every_tombstone(tmp_path) -> None:
    events = _events(4000)
    deleted = {e.id for e in events if e.type == "delete"}
    with LogWriter(tmp_path, segment_bytes=32 << 10) as writer:
        writer.append(events)
        writer.append(_events(1, seed=9))  # rolls past the segment holding the last deletes
        report = writer.compact()
    assert report.posts_dropped == len(deleted & {e.id for e in events if e.type == "post"}) > 0
    assert report.bytes_after < report.bytes_before
    after = [e for e in Log(tmp_path).iter_events() if e.seq < 4000]
    assert not any(e.type == "post" and e.id in deleted for e in after)
    assert {e.id for e in after if e.type == "delete"} == deleted
    # What remains keeps its seq numbers.
    by_seq = {e.seq: encode(e) for e in events}
    assert all(by_seq[e.seq] == encode(e) for e in after)


def test_retention_by_size_moves_the_horizon_and_keeps_deletes(tmp_path) -> None:
    events = _events(6000)
    with LogWriter(
        tmp_path, segment_bytes=64 << 10, retention_bytes=256 << 10, compact_seconds=1e9
    ) as writer:
        for i in range(0, 6000, 500):
            writer.append(events[i : i + 500])
        writer.compact()
    log = Log(tmp_path)
    assert 0 < log.horizon <= log.head
    below = [e for e in log.iter_events() if e.seq < log.horizon]
    assert below and all(e.type == "delete" for e in below)
    assert {e.id for e in below} == {e.id for e in events[: log.horizon] if e.type == "delete"}
    assert [e.seq for e in log.iter_events(log.horizon)] == list(range(log.horizon, 6000))
    assert log.stats().bytes <= (256 << 10) + 2 * (64 << 10)


def test_retention_by_age(tmp_path) -> None:
    with LogWriter(tmp_path, segment_bytes=16 << 10, retention_seconds=3600) as writer:
        writer.append(_events(300))
        old = time.time() - 7200
        for path in tmp_path.glob("*.log"):
            os.utime(path, (old, old))
        writer.append(_events(300, seed=1))  # a fresh segment, not old
        report = writer.compact()
    assert report.horizon > 0 and Log(tmp_path).horizon == report.horizon


def test_append_live_stops_at_its_limit(tmp_path) -> None:
    with LogWriter(tmp_path) as writer:
        assert append_live(writer, make_events(0), rate=100_000, limit=777) == 777
        assert writer.head == 776


def test_a_reader_following_a_writer_across_segment_rolls_misses_nothing(tmp_path) -> None:
    events = _events(4000)
    with LogWriter(tmp_path, segment_bytes=8 << 10) as writer:
        log = Log(tmp_path)
        seen: list[int] = []
        for i in range(0, 4000, 37):  # odd batch sizes: rolls land anywhere
            writer.append(events[i : i + 37])
            if i % 3 == 0:
                log.refresh()
                for chunk in log.iter_chunks(seen[-1] + 1 if seen else 0):
                    seen.extend(chunk.seqs)
        log.refresh(relist=True)
        for chunk in log.iter_chunks(seen[-1] + 1):
            seen.extend(chunk.seqs)
    assert seen == list(range(4000))
    assert log.stats().segments > 20
