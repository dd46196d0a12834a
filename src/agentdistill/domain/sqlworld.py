"""An in-memory SQLite world: the plumbing every built-in domain's `World` shares.

A subclass generates its tables from a seed and says which tools act on it (`toolbox`) and which state counts
for success (`state_hash`); forking per conversation, the never-raising tool envelope, read-only queries and
sequential ids are the same everywhere.
"""

from __future__ import annotations

import hashlib
import sqlite3
from typing import Any

from agentdistill.domain.toolkit import Toolbox


def dict_factory(cursor: sqlite3.Cursor, row: tuple) -> dict[str, Any]:
    return {col[0]: row[i] for i, col in enumerate(cursor.description)}


def connect() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.row_factory = dict_factory
    return conn


class SqliteWorld:
    """Fork with `copy()` (one per conversation); run tools with `call_tool`, which never raises."""

    def __init__(self, conn: sqlite3.Connection, today: str, seed: int | None = None):
        self.conn = conn
        self.today = today
        self.seed = seed

    def toolbox(self) -> Toolbox:
        """The tools that act on this world (a method, so the tools module may import the world's module)."""
        raise NotImplementedError

    def copy(self) -> SqliteWorld:
        conn = connect()
        self.conn.backup(conn)
        return type(self)(conn, self.today, self.seed)

    def call_tool(self, name: str, arguments: Any) -> dict[str, Any]:
        return self.toolbox().call(self, name, arguments)

    def query(self, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
        if not isinstance(sql, str) or not sql.lstrip().lower().startswith("select"):
            raise ValueError("query() accepts only SELECT statements.")
        self.conn.execute("PRAGMA query_only = ON")
        try:
            return self.conn.execute(sql, params).fetchall()
        finally:
            self.conn.execute("PRAGMA query_only = OFF")

    def dump_hash(self) -> str:
        """sha256 of the full SQL dump (every table, every column)."""
        self.conn.row_factory = None  # iterdump needs plain tuples
        try:
            return hashlib.sha256("\n".join(self.conn.iterdump()).encode()).hexdigest()
        finally:
            self.conn.row_factory = dict_factory

    def count(self, table: str) -> int:
        return self.conn.execute(f"SELECT COUNT(*) AS n FROM {table}").fetchone()["n"]

    def next_id(self, table: str, column: str, prefix: str, floor: int = 1000) -> str:
        """Next sequential id (e.g. TD1047) after the largest existing one with that prefix."""
        row = self.conn.execute(
            f"SELECT MAX(CAST(SUBSTR({column}, ?) AS INTEGER)) AS m FROM {table} WHERE {column} LIKE ?",
            (len(prefix) + 1, prefix + "%")).fetchone()
        return f"{prefix}{max(floor, row['m'] or 0) + 1}"
