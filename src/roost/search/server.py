"""`roost index serve` as a function: open the index, follow the firehose into it on a thread, and
serve /search with uvicorn until interrupted; searches see each post as soon as it is applied,
since indexing and serving share the process (as an Earlybird did)."""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import uvicorn

from roost.apikeys import ApiKeyStore
from roost.search.answer import Answerer
from roost.search.api import create_app
from roost.search.config import SearchConfig
from roost.search.follow import follow_log, follow_stream
from roost.search.index import SearchIndex
from roost.search.retrieve import Retriever
from roost.workspace import Workspace

log = logging.getLogger(__name__)


def load_generator(ws: Workspace, choice: str) -> Any | None:
    """The engine that writes answers and suggestions ([search] generator): a run or export,
    "" for the newest run (None when there is none), "none" for none."""
    if choice == "none":
        return None
    if not choice and not any((p / "config.json").exists() for p in ws.runs_dir.glob("*")):
        return None
    from roost.search.embedder import engine_for

    return engine_for(ws, choice, cuda_graphs=False)


def serve(
    ws: Workspace,
    *,
    host: str = "127.0.0.1",
    port: int = 8100,
    url: str | None = None,
    key: str | None = None,
    log_level: str = "info",
) -> None:
    """Follow the local log (or the stream at `url` with consumer `key`) and serve /search."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = ws.config("search", SearchConfig)
    index = SearchIndex.open(ws)
    generator = load_generator(ws, config.generator)
    keys = ApiKeyStore(ws.api_keys_db)
    stop = threading.Event()
    if url:
        follower = threading.Thread(target=follow_stream, args=(index, url, key or ""), kwargs={"stop": stop})
    else:
        follower = threading.Thread(target=follow_log, args=(index, ws.firehose_dir), kwargs={"stop": stop})
    follower.start()
    retriever = Retriever(index, generator)
    app = create_app(retriever, Answerer(retriever, generator), keys)
    # uvicorn re-raises the SIGINT/SIGTERM it stopped on once it has shut down; with the default
    # handlers that kills the process before the index is closed, so these catch it instead.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level=log_level, access_log=False)).run()
    finally:
        stop.set()
        follower.join()
        index.close()
        if generator is not None:
            generator.close()
        keys.close()
