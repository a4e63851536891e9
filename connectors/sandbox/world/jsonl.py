"""Worlds as directories of JSON Lines: `<table>.jsonl`, one record per line (docs/sandbox-world.md).

Users reproduce a case with a hand-written world; `dump_world` writes any world (a generated one too) in
the same form. Loading streams the files (a large dump loads with flat memory) and stops at the first bad
line with an error that names the file, the line and the key.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from connectors.sandbox.world.schema import BOOL, TABLE_ORDER, TABLES, WORLD_COLUMNS, column_names
from connectors.sandbox.world.store import World, WorldError, coerce_value

WORLD_FILE = "world.jsonl"
BATCH_ROWS = 2_000


class WorldFileError(WorldError):
    """A bad line in a world directory: the message starts with 'file:line:'."""


def load_world(directory: Path, path: Path) -> World:
    """A world at `path` (SQLite, replaced if present) from the JSON Lines files in `directory`."""
    directory = Path(directory)
    if not directory.is_dir():
        raise WorldFileError(f"{directory}: no such directory; a world directory holds <table>.jsonl files")
    _refuse_unknown_files(directory)
    world = World.create(path, **_world_settings(directory / WORLD_FILE))
    try:
        for table in TABLE_ORDER:
            file = directory / f"{table}.jsonl"
            if file.exists():
                _load_table(world, table, file)
        world.derive_crm()
    except BaseException:
        world.close()
        raise
    return world


def dump_world(world: World, directory: Path) -> list[Path]:
    """Write `world` as JSON Lines into `directory` (created if needed); returns the files written.

    Keys with no value are left out, booleans are written as true/false, the derived `crm` is not written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = [directory / WORLD_FILE]
    settings = {"seed": world.seed, "size": world.size, "home_currency": world.home_currency,
                "timezone": world.timezone, "now": world.reference_now}
    written[0].write_text(json.dumps({k: v for k, v in settings.items() if v is not None}) + "\n")
    for table in TABLE_ORDER:
        if world.count(table) == 0:
            continue
        columns = [column for column in TABLES[table] if not column.derived]
        names = ", ".join(column.name for column in columns)
        file = directory / f"{table}.jsonl"
        with file.open("w", encoding="utf-8") as stream:
            for row in world.iter_query(f"SELECT {names} FROM {table} ORDER BY id"):
                record = {column.name: (bool(row[column.name]) if column.type == BOOL else row[column.name])
                          for column in columns if row[column.name] is not None}
                stream.write(json.dumps(record, ensure_ascii=False, separators=(", ", ": ")) + "\n")
        written.append(file)
    return written


def _refuse_unknown_files(directory: Path) -> None:
    for file in sorted(directory.glob("*.jsonl")):
        table = file.stem
        if file.name != WORLD_FILE and table not in TABLES:
            raise WorldFileError(f"{file}: no world table {table!r}; the files are world.jsonl and "
                                 + ", ".join(f"{name}.jsonl" for name in TABLE_ORDER))


def _world_settings(file: Path) -> dict[str, Any]:
    if not file.exists():
        return {}
    lines = list(_records(file))
    if len(lines) != 1:
        raise WorldFileError(f"{file}: holds {len(lines)} records; it must hold exactly one line")
    number, record = lines[0]
    known = {column.name: column for column in WORLD_COLUMNS}
    settings: dict[str, Any] = {}
    for key, value in record.items():
        if key not in known:
            raise WorldFileError(f"{file}:{number}: key {key!r}: the world line has no such key "
                                 f"(keys: {', '.join(known)})")
        if key == "size" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        try:
            settings[key] = coerce_value("world", known[key], value)
        except WorldError as error:
            raise WorldFileError(f"{file}:{number}: key {key!r}: {error}") from None
    settings = {key: value for key, value in settings.items() if value is not None}
    if "home_currency" in settings:
        settings["home_currency"] = str(settings["home_currency"]).upper()
    return settings


def _records(file: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, record) for each non-blank line; bad JSON or a non-object raises with file:line."""
    with file.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise WorldFileError(f"{file}:{number}: not valid JSON ({error.msg} at column {error.colno})") \
                    from None
            if not isinstance(record, dict):
                raise WorldFileError(f"{file}:{number}: each line must be a JSON object, not "
                                     f"{type(record).__name__}")
            yield number, record


def _load_table(world: World, table: str, file: Path) -> None:
    names = column_names(table)
    batch: list[tuple[int, tuple[Any, ...]]] = []
    for number, record in _records(file):
        try:
            row = world.normalize(table, record)
        except WorldError as error:
            raise WorldFileError(f"{file}:{number}: {_with_key(str(error), record)}") from None
        batch.append((number, tuple(row[name] for name in names)))
        if len(batch) >= BATCH_ROWS:
            _insert(world, table, file, names, batch)
            batch = []
    if batch:
        _insert(world, table, file, names, batch)


def _with_key(message: str, record: dict[str, Any]) -> str:
    """The store's message, prefixed with the key it is about (so every error names its key)."""
    for key in record:
        if f"'{key}'" in message or f".{key} " in message:
            return f"key {key!r}: {message}"
    if "missing required key" in message:
        return f"key {message.rsplit(' ', 1)[-1]}: {message}"
    return message


def _insert(world: World, table: str, file: Path, names: list[str], batch: list[tuple[int, tuple]]) -> None:
    try:
        world.insert_rows(table, names, [row for _number, row in batch])
    except sqlite3.IntegrityError:
        # insert_rows rolled the batch back. Find the line: the batch is small, so retry it row by row.
        for number, row in batch:
            try:
                world.insert_rows(table, names, [row])
            except sqlite3.IntegrityError:
                raise WorldFileError(f"{file}:{number}: key 'id': id {row[0]} is used twice in {table}") \
                    from None
