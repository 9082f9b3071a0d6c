"""Loading JSONL and Parquet files through DuckDB's readers: the same rows as in memory, the same
errors as the Python reader, all rows or none."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helicone_users.testing import DataLoadError, Emulator, _load, read_jsonl, write_jsonl

GOOD = {"request_id": "r1", "user_id": "u1", "request_created_at": "2024-05-01T12:00:00Z"}

# Every field kind, defaults and derived values, text that needs escaping, every timestamp form.
ROWS: list[dict[str, Any]] = [
    {**GOOD, "model": "gpt-4o", "provider": "openai", "latency": 1234, "status": 200,
     "prompt_tokens": 10, "completion_tokens": 5, "cost": 0.25, "cached": True,
     "properties": {"environment": "production", "it's": "50%_off \u00e9\u4e16"},
     "scores": {"accuracy": 7, "helicone-score-feedback": 1}, "country_code": "US",
     "request_body": 'say "hi"\n\ttab \\ back', "time_to_first_token": 300},
    {"request_id": "r2", "user_id": "o'brien; DROP TABLE requests; --",
     "request_created_at": "2024-05-01 14:00:00.1234567+0200", "status": 429,
     "properties": {"Helicone-Rate-Limit-Status": "rate_limited"}, "cost": 1,
     "total_tokens": 99, "response_created_at": "2024-05-01T12:00:05.5Z", "threat": True},
    {"request_id": "r3", "user_id": "", "request_created_at": "2024-05-02",
     "cost": 0.0000000025, "latency": -5, "trace_id": "t1", "parent_id": "p1",
     "op_name": "weave:///e/p/op/chat:abc", "wb_user_id": "w1", "cache_enabled": True,
     "organization_id": "org-2", "is_passthrough_billing": True, "prompt_cache_read_tokens": 3},
    {"request_id": "r4", "user_id": "u2", "request_created_at": "2024-05-02T23:59Z",
     "cost": 9e9, "latency": 1.0e3, "prompt_tokens": 9223372036854775807, "cached": True,
     "cache_reference_id": "ref-1", "model": "claude", "scores": {}},
    {"request_id": "r5", "user_id": "u2", "request_created_at": "2024-05-03T01:02:03.9-05:30",
     "prompt_id": None, "node_id": "n1", "job_id": "j1", "prompt_version": "2",
     "request_referrer": "ref", "thread_id": "th", "turn_id": "tu", "wb_run_id": "run"},
    {"request_id": "r6", "user_id": "u3", "request_created_at": "2024-05-04Z",
     "response_created_at": "2024-05-04+0530"},
    {"request_id": "r7", "user_id": "u3", "request_created_at": "0001-01-01T00:00:00.000999999"},
]  # fmt: skip


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def parquet_of(rows: list[dict[str, Any]], path: Path, **types: pa.DataType) -> Path:
    """Rows as a Parquet file with one column per field any row has (null where it has none)."""
    names = sorted({key for row in rows for key in row})
    columns = {name: [row.get(name) for row in rows] for name in names}
    table = pa.table({name: pa.array(values, type=types.get(name)) if name in types
                      else values for name, values in columns.items()})  # fmt: skip
    pq.write_table(table, path)
    return path


async def rows_of(emulator: Emulator) -> list[dict[str, Any]]:
    async with emulator:
        return await emulator.rows()


@pytest.fixture
async def in_memory() -> list[dict[str, Any]]:
    async with Emulator() as emulator:
        assert await emulator.add_requests(ROWS) == len(ROWS)
        return await emulator.rows()


@pytest.fixture
def native_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if a load falls back to the Python reader."""

    def refuse(*_args: Any) -> int:
        raise AssertionError("the load fell back to the Python reader")

    monkeypatch.setattr(_load, "_load_exactly", refuse)


@pytest.mark.usefixtures("native_only")
async def test_a_jsonl_load_equals_add_requests_of_the_same_rows(
    tmp_path: Path, in_memory: list[dict[str, Any]]
) -> None:
    path = tmp_path / "rows.jsonl"
    write_lines(path, [json.dumps(row) for row in ROWS])
    assert await rows_of(Emulator.from_jsonl(path)) == in_memory


@pytest.mark.usefixtures("native_only")
async def test_a_parquet_load_equals_add_requests_of_the_same_rows(
    tmp_path: Path, in_memory: list[dict[str, Any]]
) -> None:
    # pyarrow makes the dicts structs (null where a row lacks a key) and the times strings.
    path = parquet_of(ROWS, tmp_path / "rows.parquet")
    assert await rows_of(Emulator.from_parquet(path)) == in_memory


@pytest.mark.usefixtures("native_only")
async def test_typed_parquet_columns_load_like_their_json_forms(
    tmp_path: Path, in_memory: list[dict[str, Any]]
) -> None:
    typed = [
        {**row, "request_created_at": datetime.fromisoformat(
            row["request_created_at"].replace("Z", "+00:00")).astimezone(timezone.utc),
         "properties": list((row.get("properties") or {}).items())}
        for row in ROWS[:1] + ROWS[3:4]
    ]  # fmt: skip
    path = parquet_of(typed, tmp_path / "typed.parquet",
                      request_created_at=pa.timestamp("us", tz="UTC"),
                      properties=pa.map_(pa.string(), pa.string()),
                      latency=pa.float64(), status=pa.int32())  # fmt: skip
    loaded = await rows_of(Emulator.from_parquet(path))
    assert loaded == [row for row in in_memory if row["request_id"] in ("r1", "r4")]


@pytest.mark.usefixtures("native_only")
async def test_an_exported_dataset_loads_back_from_both_formats(tmp_path: Path) -> None:
    async with Emulator.synthetic(seed=4, users=12, requests=400, days=5) as source:
        original = await source.rows()
        assert await source.export_jsonl(tmp_path / "all.jsonl") == 400
        assert await source.export_parquet(tmp_path / "all.parquet") == 400
    assert await rows_of(Emulator.from_jsonl(tmp_path / "all.jsonl")) == original
    assert await rows_of(Emulator.from_parquet(tmp_path / "all.parquet")) == original


BAD_LINES = [
    ("{not json", None, "not valid JSON"),
    ("[1, 2]", None, "JSON object"),
    ('{"a": 1,}', None, "not valid JSON"),
    (json.dumps({"user_id": "u", "request_created_at": "2024-01-01T00:00:00Z"}), "request_id",
     "required"),
    (json.dumps({**GOOD, "request_id": ""}), "request_id", "empty"),
    (json.dumps({**GOOD, "user_id": 7}), "user_id", "string"),
    (json.dumps({**GOOD, "request_created_at": "2024-02-30T00:00:00Z"}), "request_created_at",
     "ISO-8601"),
    (json.dumps({**GOOD, "request_created_at": "2024-05-01T25:00:00Z"}), "request_created_at",
     "ISO-8601"),
    (json.dumps({**GOOD, "latency": "fast"}), "latency", "integer"),
    (json.dumps({**GOOD, "latency": 1.5}), "latency", "whole number"),
    (json.dumps({**GOOD, "latency": 2**63}), "latency", "64-bit"),
    ('{"request_id": "r", "user_id": "u", "request_created_at": "2024-01-01", '
     '"status": -9223372036854775809}', "status", "64-bit"),
    (json.dumps({**GOOD, "cost": "1"}), "cost", "USD"),
    (json.dumps({**GOOD, "cost": -1}), "cost", "between"),
    ('{"request_id": "r", "user_id": "u", "request_created_at": "2024-01-01", "cost": NaN}',
     "cost", "between"),
    (json.dumps({**GOOD, "properties": ["a"]}), "properties", "object"),
    (json.dumps({**GOOD, "properties": {"a": 1}}), "properties.a", "string"),
    (json.dumps({**GOOD, "scores": {"a": "high"}}), "scores.a", "integer"),
    (json.dumps({**GOOD, "cached": "yes"}), "cached", "true or false"),
    (json.dumps({**GOOD, "modle": "gpt-4o"}), "modle", "unknown field"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "field", "words"), BAD_LINES)
async def test_a_bad_jsonl_line_is_reported_like_read_jsonl_and_nothing_is_loaded(
    tmp_path: Path, line: str, field: str | None, words: str
) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [json.dumps(GOOD), "", line, json.dumps(GOOD)])
    with pytest.raises(DataLoadError) as python:
        read_jsonl(path)
    db = tmp_path / "db.duckdb"
    with pytest.raises(DataLoadError, match=words) as native:
        await rows_of(Emulator.from_jsonl(path, db_path=db))
    assert (native.value.line, native.value.field) == (3, field)
    assert str(native.value) == str(python.value)
    assert str(path) in str(native.value)
    async with Emulator(db_path=db) as reopened:
        assert await reopened.count_requests() == 0


def _with_bad(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [GOOD, {**GOOD, "request_id": "r2"}, {**GOOD, "request_id": "r3", **row}]


BAD_PARQUET = [
    ({"latency": "fast"}, "latency", "integer"),
    ({"latency": 1.5}, "latency", "whole number"),
    ({"status": True}, "status", "integer"),
    ({"cost": -0.5}, "cost", "between"),
    ({"cost": float("inf")}, "cost", "between"),
    ({"request_created_at": "yesterday"}, "request_created_at", "ISO-8601"),
    ({"request_id": None}, "request_id", "required"),
    ({"cached": 1}, "cached", "true or false"),
    ({"model": 5}, "model", "string"),
]


@pytest.mark.parametrize(("bad", "field", "words"), BAD_PARQUET)
async def test_a_bad_parquet_row_names_its_row_and_field_and_nothing_is_loaded(
    tmp_path: Path, bad: dict[str, Any], field: str, words: str
) -> None:
    rows = _with_bad(bad)
    typed = {"latency": pa.float64()} if isinstance(bad.get("latency"), float) else {}
    path = parquet_of([{**row, **{k: None for k in bad if k not in row}} for row in rows],
                      tmp_path / "bad.parquet", **typed)  # fmt: skip
    db = tmp_path / "db.duckdb"
    with pytest.raises(DataLoadError, match=words) as caught:
        await rows_of(Emulator.from_parquet(path, db_path=db))
    assert (caught.value.row, caught.value.field, caught.value.line) == (3, field, None)
    assert f"row 3: field {field!r}" in str(caught.value)
    async with Emulator(db_path=db) as reopened:
        assert await reopened.count_requests() == 0


async def test_an_unknown_parquet_column_is_refused_by_name(tmp_path: Path) -> None:
    path = parquet_of([{**GOOD, "modle": "gpt-4o"}], tmp_path / "extra.parquet")
    with pytest.raises(DataLoadError, match="unknown field") as caught:
        await rows_of(Emulator.from_parquet(path))
    assert caught.value.field == "modle"


async def test_a_file_that_is_not_parquet_is_a_data_load_error(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "nope.parquet", ["not parquet"])
    with pytest.raises(DataLoadError, match="cannot be read as Parquet"):
        await rows_of(Emulator.from_parquet(path))


def test_a_missing_file_is_refused_when_the_emulator_is_made(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such JSONL file"):
        Emulator.from_jsonl(tmp_path / "missing.jsonl")
    with pytest.raises(FileNotFoundError, match="no such Parquet file"):
        Emulator.from_parquet(tmp_path / "missing.parquet")


async def test_rows_the_sql_cannot_vouch_for_are_loaded_as_the_python_reader_reads_them(
    tmp_path: Path,
) -> None:
    # Valid for the definition, but not rows DuckDB's reader can be trusted with: a falsy
    # map, a repeated key (the last one wins), a trailing comma inside a string, spaces
    # around a timestamp, a byte-order mark, and CRLF line ends.
    lines = [
        json.dumps({**GOOD, "properties": []}),
        '{"request_id": "r2", "user_id": "a", "user_id": "b", '
        '"request_created_at": "2024-05-01T12:00:00Z"}',
        json.dumps({**GOOD, "request_id": "r3", "request_body": '{"a": [1,]}'}),
        json.dumps({**GOOD, "request_id": "r4", "request_created_at": " 2024-05-01T12:00:00Z "}),
    ]
    path = tmp_path / "odd.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    async with Emulator() as expected:
        await expected.add_requests(read_jsonl(path))
        want = await expected.rows()
    got = await rows_of(Emulator.from_jsonl(path))
    assert got == want
    assert {row["user_id"] for row in got} == {"u1", "b"}


async def test_write_jsonl_and_from_jsonl_round_trip_every_field(
    tmp_path: Path, in_memory: list[dict[str, Any]]
) -> None:
    path = tmp_path / "out.jsonl"
    write_jsonl(in_memory, path)
    assert await rows_of(Emulator.from_jsonl(path)) == in_memory
