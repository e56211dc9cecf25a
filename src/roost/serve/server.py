"""`roost serve` as a function: load the model, start the engine, serve the API with uvicorn until
interrupted, then stop the engine."""

from __future__ import annotations

import logging
from typing import Any

import uvicorn

from roost.apikeys import ApiKeyStore
from roost.serve.engine import Engine
from roost.serve.openai_api import create_app
from roost.workspace import Workspace


def serve(ws: Workspace, source: str | None = None, *, log_level: str = "info", **overrides: Any) -> None:
    """Serve `source` (run or export; default [serve] model) with [serve] settings, `overrides` winning
    (host, port, max_batch, ...)."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    engine = Engine.from_workspace(ws, source, **overrides)
    keys = ApiKeyStore(ws.api_keys_db)
    if not keys.list():
        logging.getLogger(__name__).warning(
            "no API keys yet: every request will get 401; run `roost keys add`"
        )
    app = create_app(engine, keys)
    config = uvicorn.Config(
        app, host=engine.config.host, port=engine.config.port, log_level=log_level, access_log=False
    )
    try:
        uvicorn.Server(config).run()
    finally:
        engine.close()
        keys.close()
