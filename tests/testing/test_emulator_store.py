"""The emulator's database file: reopened at once, never reused for other data, refused when it
is not one the emulator wrote; and the per-user-day rollup kept right by every insert."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from helicone_users.testing import DatabaseFileError, Emulator
from helicone_users.testing._synthetic import SyntheticSource

GOOD = {"request_id": "r1", "user_id": "u1", "request_created_at": "2024-05-01T12:00:00Z"}


async def answers(emulator: Emulator) -> tuple[Any, ...]:
    async with emulator.client() as client:
        page = await client.users.metrics(limit=1000, sort=("cost", "desc"), time_range=None)
        overview = await client.users.overview(p_size="p99")
        stats = await client.users.query([user.user_id for user in page.users[:5]])
    return page, overview, stats


async def test_a_second_start_on_the_file_serves_the_same_answers_without_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "emulator.duckdb"
    async with Emulator.synthetic(seed=2, users=30, requests=900, db_path=db) as first:
        before = await answers(first)

    def refuse(*_args: Any) -> int:
        raise AssertionError("the data was loaded again")

    monkeypatch.setattr(SyntheticSource, "load", refuse)
    async with Emulator.synthetic(seed=2, users=30, requests=900, db_path=db) as again:
        assert await answers(again) == before
        assert await again.count_requests() == 900
    async with Emulator(db_path=db) as plain:
        assert await answers(plain) == before


async def test_a_start_with_other_data_on_a_populated_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "emulator.duckdb"
    async with Emulator.synthetic(seed=2, users=5, requests=50, db_path=db):
        pass
    with pytest.raises(DatabaseFileError, match="already holds 50 requests") as caught:
        async with Emulator.synthetic(seed=3, users=5, requests=50, db_path=db):
            pass
    message = str(caught.value)
    assert str(db) in message
    assert "seed=2" in message
    assert "seed=3" in message
    assert "delete the file" in message
    with pytest.raises(DatabaseFileError, match="rows given in memory"):
        async with Emulator([GOOD], db_path=db):
            pass
    async with Emulator(db_path=db) as unchanged:
        assert await unchanged.count_requests() == 50


async def test_a_changed_file_is_not_mistaken_for_the_one_loaded(tmp_path: Path) -> None:
    db, source = tmp_path / "emulator.duckdb", tmp_path / "rows.jsonl"
    source.write_text(json.dumps(GOOD) + "\n", encoding="utf-8")
    async with Emulator.from_jsonl(source, db_path=db):
        pass
    async with Emulator.from_jsonl(source, db_path=db) as same:
        assert await same.count_requests() == 1
    source.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "request_id": "r2"}) + "\n")
    with pytest.raises(DatabaseFileError, match="JSONL file"):
        async with Emulator.from_jsonl(source, db_path=db):
            pass


async def test_added_requests_stay_in_the_file_and_a_reopen_keeps_them(tmp_path: Path) -> None:
    db = tmp_path / "emulator.duckdb"
    async with Emulator([GOOD], db_path=db) as first:
        await first.add_requests([{**GOOD, "request_id": "r2"}])
    async with Emulator([GOOD], db_path=db) as again:
        assert [row["request_id"] for row in await again.rows()] == ["r1", "r2"]


def _write_meta(db: Path, version: str) -> None:
    with duckdb.connect(str(db)) as connection:
        connection.execute("UPDATE helicone_emulator SET value = ? WHERE key = 'schema_version'",
                           [version])  # fmt: skip


async def test_a_stale_schema_version_is_refused_naming_the_file_and_the_fix(
    tmp_path: Path,
) -> None:
    db = tmp_path / "emulator.duckdb"
    async with Emulator([GOOD], db_path=db):
        pass
    _write_meta(db, "1")
    with pytest.raises(DatabaseFileError, match="schema version 1") as caught:
        async with Emulator(db_path=db):
            pass
    assert caught.value.path == str(db)
    assert "delete it and load the data again" in str(caught.value)


async def test_a_file_of_the_first_unversioned_layout_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "old.duckdb"
    with duckdb.connect(str(db)) as connection:
        connection.execute("CREATE TABLE requests (request_id VARCHAR)")
        connection.execute("CREATE TABLE user_days (user_id VARCHAR)")
    with pytest.raises(DatabaseFileError, match="earlier helicone-users"):
        async with Emulator(db_path=db):
            pass


async def test_a_foreign_duckdb_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    db = tmp_path / "theirs.duckdb"
    with duckdb.connect(str(db)) as connection:
        connection.execute("CREATE TABLE invoices (id INTEGER)")
        connection.execute("CREATE VIEW unpaid AS SELECT * FROM invoices")
    with pytest.raises(DatabaseFileError, match=r"did not create \(tables: invoices, unpaid\)"):
        async with Emulator([GOOD], db_path=db):
            pass
    with duckdb.connect(str(db)) as connection:
        tables = connection.execute("SELECT table_name FROM duckdb_tables()").fetchall()
    assert tables == [("invoices",)]


async def test_a_database_of_views_only_is_not_taken_for_an_empty_one(tmp_path: Path) -> None:
    db = tmp_path / "views.duckdb"
    with duckdb.connect(str(db)) as connection:
        connection.execute("CREATE VIEW answer AS SELECT 42 AS value")
    with pytest.raises(DatabaseFileError, match="answer"):
        async with Emulator(db_path=db):
            pass


@pytest.mark.parametrize("content", [b"hello, not a database\n" * 100, b"SQLite format 3\x00"])
async def test_a_file_that_is_not_a_duckdb_database_is_refused(
    tmp_path: Path, content: bytes
) -> None:
    db = tmp_path / "notes.db"
    db.write_bytes(content)
    with pytest.raises(DatabaseFileError, match="not a DuckDB database file") as caught:
        async with Emulator(db_path=db):
            pass
    assert isinstance(caught.value, ValueError)
    assert db.read_bytes() == content


async def test_a_directory_is_refused_and_an_empty_file_is_a_new_database(tmp_path: Path) -> None:
    with pytest.raises(DatabaseFileError, match="is a directory"):
        async with Emulator(db_path=tmp_path):
            pass
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    async with Emulator([GOOD], db_path=empty) as emulator:
        assert await emulator.count_requests() == 1


async def test_without_a_path_the_data_lives_in_a_temporary_file_removed_on_close() -> None:
    async with Emulator([GOOD]) as emulator:
        where = Path(emulator.state.store.file.path)
        assert await asyncio.to_thread(where.is_file)
    assert not await asyncio.to_thread(where.parent.exists)


async def test_duckdb_settings_reach_the_database() -> None:
    async with Emulator(duckdb_config={"threads": 1, "memory_limit": "256MB"}) as emulator:
        threads, limit = await emulator.state.store.run(lambda cursor: cursor.execute(
            "SELECT current_setting('threads'), current_setting('memory_limit')").fetchone())
    assert (threads, limit) == (1, "244.1 MiB")


async def _rollup_matches_requests(emulator: Emulator) -> None:
    def compare(cursor: Any) -> tuple[list[Any], list[Any]]:
        kept = cursor.execute("SELECT * FROM user_days ORDER BY user_id, day").fetchall()
        rebuilt = cursor.execute(
            "SELECT user_id, CAST(request_created_at AS DATE) AS day, count(*), "
            "min(request_created_at), max(request_created_at), sum(prompt_tokens), "
            "sum(completion_tokens), sum(cost), count(*) FILTER (WHERE map_extract_value("
            "properties, 'Helicone-Rate-Limit-Status') = 'rate_limited') "
            "FROM requests GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        return kept, rebuilt

    kept, rebuilt = await emulator.state.store.run(compare)
    assert kept == rebuilt


async def test_each_insert_updates_the_rollup_for_its_rows_only(tmp_path: Path) -> None:
    async with Emulator.synthetic(seed=5, users=10, requests=300, days=4) as emulator:
        await _rollup_matches_requests(emulator)
        existing = (await emulator.rows())[:3]
        await emulator.add_requests([
            {**GOOD, "user_id": existing[0]["user_id"], "request_id": "same-day",
             "request_created_at": existing[0]["request_created_at"], "cost": 1.5,
             "properties": {"Helicone-Rate-Limit-Status": "rate_limited"}},
            {**GOOD, "request_id": "new-user"},
        ])  # fmt: skip
        await _rollup_matches_requests(emulator)
        with pytest.raises(Exception, match="latency"):
            await emulator.add_requests([{**GOOD, "request_id": "x", "latency": "slow"}])
        await emulator.add_requests([{**GOOD, "request_id": "after-a-failure"}])
        await _rollup_matches_requests(emulator)
        assert await emulator.count_requests() == 303


@pytest.fixture
def held_db(tmp_path: Path) -> Iterator[Path]:
    """An emulator database file that another process holds open."""
    db = tmp_path / "busy.duckdb"
    asyncio.run(_make(db))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
         "print('ready', flush=True); time.sleep(60)", str(db)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "ready"
        yield db
    finally:
        holder.kill()
        holder.communicate()


async def _make(db: Path) -> None:
    async with Emulator([GOOD], db_path=db):
        pass


async def test_a_file_another_process_holds_is_refused_with_the_fix(held_db: Path) -> None:
    with pytest.raises(DatabaseFileError, match="open in another process") as caught:
        async with Emulator(db_path=held_db):
            pass
    assert "pass another path" in str(caught.value)
