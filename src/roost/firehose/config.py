"""The `[firehose]` section of roost.toml: the log's segments and retention, and the stream server."""

from __future__ import annotations

import msgspec


class FirehoseConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Every setting has a default that works on one machine; set only what you change."""

    host: str = "127.0.0.1"
    port: int = 8750
    # The log. 64 MiB segments: big enough that opening one is rare, small enough that recovery
    # (which re-reads only the last one) takes a fraction of a second.
    segment_bytes: int = 64 << 20
    retention_bytes: int = 0  # keep whole at most this much of the log (0: no limit)
    retention_hours: float = 0.0  # keep whole at most this long (0: no limit); deletes stay forever
    compact_hours: float = 1.0  # drop deleted posts' bodies at most this often, when a segment fills
    # The stream. A consumer that is caught up hears a heartbeat this often (the issue: <= 15 s).
    heartbeat_seconds: float = 10.0
    poll_seconds: float = 0.004  # how often the server looks for newly committed events
    write_bytes: int = 1 << 20  # the most bytes one write to a connection carries
    cache_bytes: int = 64 << 20  # the newest events kept in memory, shared by every connection
    # consumer_too_slow needs both: this far behind, and no progress for this long.
    slow_lag_events: int = 1_000_000
    slow_stall_seconds: float = 30.0
    # The consumer (`roost firehose consume`).
    consumer_name: str = "firehose"  # the cursor's name in the raw store
    backoff_initial_seconds: float = 0.2
    backoff_max_seconds: float = 30.0
    read_timeout_seconds: float = 45.0  # no bytes for this long (3 missed heartbeats): reconnect
