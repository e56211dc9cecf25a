"""The workspace: where every stage reads and writes, and its one config file, `roost.toml`.

Each stage owns a section of `roost.toml` and declares it as a msgspec struct with defaults;
`Workspace.config(section, Type)` reads that section, fills what is missing from the defaults and
rejects keys the stage does not know, so a typo in the config is an error, not a silent default.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, TypeVar

import msgspec

DEFAULT_HOME = Path("roost-home")
CONFIG_NAME = "roost.toml"

T = TypeVar("T")


class ConfigError(ValueError):
    """roost.toml cannot be read, or a section does not fit what its stage expects."""


class Workspace:
    """Paths inside one roost home, and its config."""

    def __init__(self, home: Path | str = DEFAULT_HOME) -> None:
        self.home = Path(home).expanduser().resolve()
        self._table: dict[str, Any] | None = None

    # -- paths (the blueprint's table) -------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.home / CONFIG_NAME

    @property
    def firehose_dir(self) -> Path:
        return self.home / "firehose"

    @property
    def consumers_db(self) -> Path:
        return self.home / "consumers.db"

    @property
    def raw_dir(self) -> Path:
        return self.home / "raw"

    @property
    def quarantine_dir(self) -> Path:
        return self.home / "quarantine"

    @property
    def corpus_dir(self) -> Path:
        return self.home / "corpus"

    @property
    def tokenizer_dir(self) -> Path:
        return self.home / "tokenizer"

    @property
    def shards_dir(self) -> Path:
        return self.home / "shards"

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def export_dir(self) -> Path:
        return self.home / "export"

    @property
    def index_dir(self) -> Path:
        return self.home / "index"

    @property
    def ads_db(self) -> Path:
        return self.home / "ads.db"

    @property
    def api_keys_db(self) -> Path:
        """Bearer keys of the HTTP API (/v1, /search, /ads): roost.apikeys."""
        return self.home / "keys.db"

    # -- config ------------------------------------------------------------------------------
    def ensure(self) -> Workspace:
        """Create the home and an empty-but-commented roost.toml if they are missing."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.config_path.exists():
            _write_atomic(self.config_path, _CONFIG_HEADER)
        return self

    def table(self) -> dict[str, Any]:
        """The parsed roost.toml (empty when there is none)."""
        if self._table is None:
            if self.config_path.exists():
                try:
                    self._table = tomllib.loads(self.config_path.read_text(encoding="utf-8"))
                except tomllib.TOMLDecodeError as exc:
                    raise ConfigError(f"{self.config_path}: {exc}") from exc
            else:
                self._table = {}
        return self._table

    def config(self, section: str, kind: type[T]) -> T:
        """Section `section` of roost.toml as `kind`, defaults filling whatever is not set."""
        raw = self.table().get(section, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"{self.config_path}: [{section}] must be a table")
        try:
            return msgspec.convert(raw, kind)
        except msgspec.ValidationError as exc:
            raise ConfigError(f"{self.config_path}: in [{section}]: {exc}") from exc


def config_defaults_toml(sections: dict[str, Any]) -> str:
    """TOML text for the given section structs, for `roost config show`."""
    lines: list[str] = []
    for name, value in sections.items():
        lines.append(f"[{name}]")
        for key, item in msgspec.to_builtins(value).items():
            if item is not None:
                lines.append(f"{key} = {_toml_value(item)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return msgspec.json.encode(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


_CONFIG_HEADER = """\
# roost configuration. Every setting has a default that works; set only what you change.
# `roost config show` prints every section with its current values; docs/configuration.md explains them.
"""
