"""The simulated platform in several processes: each worker runs some of the config's shards and
sends their events as JSON lines; the parent merges them by (time, shard), as one process would.

The output depends on `SimConfig.shards`, never on the number of workers: a worker merges its own
shards the way `Simulator.shard_stream` does, and the parent merges the workers' streams by the same
key, so `--workers 2` writes the bytes that `--workers 1` writes for the same config.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import multiprocessing
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection

from roost.firehose.simulate import SimConfig, Simulator
from roost.posts import encode

#: Lines a worker sends at a time: large enough that pickling and the pipe cost little per line.
_BATCH = 1024

#: (time ms, shard, is a post, the event's JSON line); sorts in stream order.
Line = tuple[int, int, bool, bytes]


def parallel_lines(simulator: Simulator, workers: int) -> Iterator[tuple[bytes, bool]]:
    """(JSON line, is a post) of the whole stream, the shards run by `workers` processes.

    Endless: close the generator to stop the workers (`write_lines` does). Forked workers inherit
    the simulator and its world; where fork is missing each worker builds the world again.
    """
    shards = simulator.config.shards
    if not 1 <= workers <= shards:
        raise ValueError(f"workers must be between 1 and shards ({shards}), got {workers}")
    method = "fork" if sys.platform == "linux" else "spawn"
    context = multiprocessing.get_context(method)
    receivers, processes = [], []
    try:
        for worker in range(workers):
            receiver, sender = context.Pipe(duplex=False)
            mine = list(range(worker, shards, workers))
            # A forked worker inherits the simulator; a spawned one gets the config to rebuild it from.
            source = simulator if method == "fork" else simulator.config
            process = context.Process(target=_work, args=(source, mine, sender), daemon=True)
            process.start()
            sender.close()  # the parent keeps only the reading end, so a dead worker reads as EOF
            receivers.append(receiver)
            processes.append(process)
        merged = heapq.merge(*(_received(receiver) for receiver in receivers))
        for _, _, is_post, line in merged:
            yield line, is_post
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join()
        for receiver in receivers:
            receiver.close()


def _work(source: Simulator | SimConfig, shards: list[int], sender: Connection) -> None:
    """A worker: its shards' lines, a batch at a time, until the parent stops reading."""
    # What a forked worker inherited (the world, above all) lives as long as the worker: out of the
    # collector's sight, a collection neither walks it nor writes to (and so copies) its pages. The
    # stream makes no reference cycles (a collection after 100k events finds none), so collecting
    # rarely costs no memory and saves about 5% of the time.
    gc.freeze()
    gc.set_threshold(100_000)
    simulator = Simulator(source) if isinstance(source, SimConfig) else source
    stream = simulator.shard_stream(shards)
    while True:
        batch: list[Line] = []
        for t, shard, event, _ in itertools.islice(stream, _BATCH):
            batch.append((t, shard, event.post is not None, encode(event)))
        sender.send(batch)


def _received(receiver: Connection) -> Iterator[Line]:
    while True:
        try:
            batch = receiver.recv()
        except EOFError:
            raise RuntimeError("a simulator worker stopped unexpectedly; see its error above") from None
        yield from batch
