"""``Emulator``: a local Helicone user-metrics server over an embedded DuckDB."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from helicone_users._config import WEAVE_MAX_RANGE_DAYS
from helicone_users._errors import InvalidRequestError
from helicone_users.testing._app import EmulatorState, build_app
from helicone_users.testing._auth import RATE_LIMIT_MODES
from helicone_users.testing._faults import FaultPlan
from helicone_users.testing._jsonl import normalize_rows, write_jsonl
from helicone_users.testing._load import JsonlSource, ParquetSource
from helicone_users.testing._quirks import resolve_quirks
from helicone_users.testing._sources import DataSource, RowsSource, load_into
from helicone_users.testing._store import Store
from helicone_users.testing._synthetic import SyntheticSource

if TYPE_CHECKING:
    from helicone_users._client import AsyncHeliconeUsers

__all__ = ["Emulator"]


class Emulator:
    """A real aiohttp server on ``host:port`` answering Helicone's user-metrics endpoints.

    Example::

        async with Emulator.synthetic(seed=1, users=20, requests=500) as emulator:
            async with emulator.client() as client:
                page = await client.users.metrics(limit=10)

    Rows follow the JSONL request format (see the README); they are validated together and
    stored in one transaction, so a bad row leaves nothing half-loaded. ``rate_limit=(200, 60)``
    limits requests as the hosted server does (a fixed window); ``rate_limit_window="sliding"``
    counts them in a sliding window instead, as gateways in front of an API may.

    The data lives in a DuckDB file: ``db_path`` names one to keep (a second start on it serves
    what it holds at once; see the README for what a second start with data does), otherwise a
    private temporary file is used and deleted on close. ``duckdb_config`` passes settings such
    as ``memory_limit`` or ``threads`` to DuckDB.
    """

    def __init__(
        self,
        rows: Iterable[Mapping[str, Any]] | None = None,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        db_path: str | Path | None = None,
        duckdb_config: Mapping[str, Any] | None = None,
        quirks: Iterable[str] | str = (),
        faults: FaultPlan | None = None,
        rate_limit: tuple[int, float] | None = None,
        rate_limit_window: Literal["fixed", "sliding"] = "fixed",
        seed: int = 0,
        weave_max_range_days: int | None = WEAVE_MAX_RANGE_DAYS,
    ) -> None:
        self._source: DataSource | None = None
        if rows is not None:
            self._source = RowsSource(normalize_rows(rows))
        self.api_key = api_key or f"sk-helicone-emulator-{secrets.token_hex(12)}"
        self.host = host
        self.port = port
        self.db_path = str(db_path) if db_path is not None else None
        self.duckdb_config = dict(duckdb_config or {})
        self.quirks = resolve_quirks(quirks)
        self.faults = faults
        self.rate_limit = rate_limit
        if rate_limit_window not in RATE_LIMIT_MODES:
            raise InvalidRequestError(
                f"rate_limit_window must be 'fixed' (the hosted server's) or 'sliding', "
                f"got {rate_limit_window!r}",
                field="rate_limit_window",
            )
        self.rate_limit_window = rate_limit_window
        self.seed = seed
        self.weave_max_range_days = weave_max_range_days
        self._runner: web.AppRunner | None = None
        self._state: EmulatorState | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._runner is not None else "not started"
        return f"<Emulator {where} quirks={sorted(self.quirks)}>"

    @classmethod
    def synthetic(
        cls,
        *,
        seed: int = 0,
        users: int = 50,
        requests: int = 2000,
        days: int = 30,
        end: datetime | None = None,
        **kwargs: Any,
    ) -> Emulator:
        """An emulator that generates a deterministic synthetic dataset when it starts:
        ``users`` users (all of them, when ``requests >= users``) and ``requests`` requests over
        ``days`` days ending at ``end``."""
        emulator = cls(seed=seed, **kwargs)
        emulator._source = SyntheticSource(
            seed=seed, users=users, requests=requests, days=days, end=end
        )
        return emulator

    @classmethod
    def from_jsonl(cls, path: str | Path, **kwargs: Any) -> Emulator:
        """An emulator that loads a JSONL file when it starts, through DuckDB's JSON reader;
        a bad line raises ``DataLoadError`` naming it, and nothing is loaded."""
        emulator = cls(**kwargs)
        emulator._source = JsonlSource(path)
        return emulator

    @classmethod
    def from_parquet(cls, path: str | Path, **kwargs: Any) -> Emulator:
        """An emulator that loads a Parquet file (columns named like the JSONL fields) when it
        starts, through DuckDB's Parquet reader; a bad row raises ``DataLoadError`` naming it,
        and nothing is loaded."""
        emulator = cls(**kwargs)
        emulator._source = ParquetSource(path)
        return emulator

    @property
    def state(self) -> EmulatorState:
        """The running server's shared state (store, quirks, faults)."""
        if self._state is None:
            raise RuntimeError("the emulator is not running; use 'async with Emulator(...)'")
        return self._state

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the running server."""
        if self._runner is None:
            raise RuntimeError("the emulator is not running; use 'async with Emulator(...)'")
        return f"http://{self.host}:{self.port}"

    async def start(self) -> Emulator:
        """Open the database, load the data (unless the file already holds it) and serve."""
        store = await asyncio.to_thread(lambda: Store(self.db_path, config=self.duckdb_config))
        try:
            if self._source is not None:
                await asyncio.to_thread(load_into, store, self._source)
                self._source = None
        except BaseException:
            store.close()
            raise
        self._state = EmulatorState(
            store=store,
            api_key=self.api_key,
            quirks=self.quirks,
            faults=self.faults,
            rate_limit=self.rate_limit,
            rate_limit_window=self.rate_limit_window,
            seed=self.seed,
            weave_max_range_days=self.weave_max_range_days,
        )
        runner = web.AppRunner(build_app(self._state), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        self.port = _bound_port(runner, self.port)
        return self

    async def aclose(self) -> None:
        """Stop serving and close the database."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._state is not None:
            self._state.store.close()
            self._state = None

    async def __aenter__(self) -> Emulator:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def add_requests(self, rows: Iterable[Mapping[str, Any]]) -> int:
        """Validate and store more requests (all or none); returns how many were added."""
        columns = normalize_rows(rows)
        return await asyncio.to_thread(self.state.store.insert_columns, columns)

    async def count_requests(self) -> int:
        """How many requests are stored."""
        return await asyncio.to_thread(self.state.store.count)

    async def rows(self) -> list[dict[str, Any]]:
        """Every stored request in the JSONL row format (cost in USD, aware UTC timestamps)."""
        return await self.state.store.run(lambda _cursor: self.state.store.fetch_rows())

    async def export_jsonl(self, path: str | Path) -> int:
        """Write every stored request to a JSONL file; returns how many."""
        rows = await self.rows()
        return await asyncio.to_thread(write_jsonl, rows, path)

    async def export_parquet(self, path: str | Path) -> int:
        """Write every stored request to a Parquet file with the JSONL fields as columns (cost in
        USD, timestamps in UTC) through DuckDB, block by block; returns how many."""
        return await asyncio.to_thread(self.state.store.export_parquet, path)

    def client(self, **kwargs: Any) -> AsyncHeliconeUsers:
        """An ``AsyncHeliconeUsers`` pointed at this emulator, with its key."""
        from helicone_users._client import AsyncHeliconeUsers

        kwargs.setdefault("api_key", self.api_key)
        return AsyncHeliconeUsers(base_url=self.base_url, **kwargs)


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    if requested:
        return requested
    raise InvalidRequestError("could not find the emulator's port", field="port")
