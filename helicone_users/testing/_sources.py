"""Where an emulator's data comes from, and what happens when its database file already has some.

A source (rows in memory, synthetic data, a JSONL or Parquet file) loads itself into a store in
one transaction and describes itself in one line. A database file records that line next to the
data it loaded, so a second start from the same source serves the file as it is, at once, and a
start from another source is refused: data is never loaded twice or mixed up silently.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from helicone_users.testing._dbfile import DatabaseFileError
from helicone_users.testing._store import Store, columns_insert

__all__ = ["DataSource", "RowsSource", "load_into"]


class DataSource(Protocol):
    """Data an emulator loads when it starts."""

    def describe(self) -> str:
        """One line naming the data, recorded in the database file."""
        ...

    def load(self, store: Store, finish: Callable[[Any], None]) -> int:
        """Insert the data in one transaction, calling ``finish(cursor)`` before the commit;
        returns how many requests were added."""
        ...


class RowsSource:
    """Rows given in memory, already validated and normalised into columns."""

    def __init__(self, columns: Mapping[str, Sequence[Any]]) -> None:
        self.columns = columns

    def describe(self) -> str:
        digest = hashlib.sha256(
            json.dumps(self.columns, sort_keys=True, default=str).encode()
        ).hexdigest()
        return f"{len(self.columns['request_id'])} rows given in memory (sha256 {digest[:16]})"

    def load(self, store: Store, finish: Callable[[Any], None]) -> int:
        with store.write() as cursor:
            added = 0
            if self.columns["request_id"]:
                added = store.append(cursor, *columns_insert(self.columns))
            finish(cursor)
        return added


def load_into(store: Store, source: DataSource) -> int:
    """Load ``source`` into ``store``; returns the requests added (0 when reused).

    A database file that already holds requests is served as it is when it was loaded from the
    same source, and refused with ``DatabaseFileError`` otherwise. A temporary store is always
    new, so it just loads.
    """
    if store.path is None:
        return source.load(store, lambda _cursor: None)
    description = source.describe()
    held = store.count()
    if held:
        recorded = store.source()
        if recorded == description:
            return 0
        raise DatabaseFileError(
            store.path,
            f"already holds {held:,} requests from "
            f"{recorded or 'add_requests() without a recorded source'}, not from {description}",
            "open it without data (Emulator(db_path=...)) to serve what it holds, or delete the "
            "file (or pass another path) to load this data",
        )
    return source.load(store, lambda cursor: store.set_source(cursor, description))
