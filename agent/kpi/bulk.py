"""Bulk writes of computed rows in one statement, without per-value work in SQLAlchemy.

A run stores tens of thousands of KPI values.  Through ``connection.execute(insert(table), dicts)``
SQLAlchemy processes every value of every row, and psycopg 3 sends an executemany row by row; both cost
more than the insert itself.  Here SQLite gets one executemany of plain tuples already in the form
SQLAlchemy would store, and PostgreSQL a COPY.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection


def insert_rows(connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
    """Insert ``rows`` (tuples in the order of ``columns``); returns how many."""
    if not rows:
        return 0
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, rows)
    else:
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({placeholders})"
        connection.exec_driver_sql(sql, [tuple(_sqlite_value(value) for value in row) for row in rows])
    return len(rows)


def _copy(connection: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """PostgreSQL's COPY on the connection's own transaction: psycopg writes the rows in C, where an
    array per column (``unnest``) spent more time escaping strings in Python than the server inserting."""
    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


def _sqlite_value(value: Any) -> Any:
    """A value as SQLAlchemy stores it in SQLite (``UTCDateTime``: UTC text without offset, microseconds)."""
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: computed instants are aware UTC")
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value
