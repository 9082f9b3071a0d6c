"""Loading data into the emulator: the JSONL format, the synthetic generator, the database file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helicone_users.testing import MODEL_PRICES, DataLoadError, Emulator, read_jsonl

GOOD = {"request_id": "r1", "user_id": "u1", "request_created_at": "2024-05-01T12:00:00Z"}


async def test_a_generated_file_round_trips_through_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "requests.jsonl"
    async with Emulator.synthetic(seed=5, users=10, requests=150, days=5) as source:
        written = await source.export_jsonl(path)
        original = await source.rows()
    assert written == 150
    async with Emulator.from_jsonl(path) as copy:
        assert await copy.rows() == original


async def test_defaults_fill_every_optional_field() -> None:
    async with Emulator([GOOD]) as emulator:
        (row,) = await emulator.rows()
    assert row["status"] == 200
    assert row["cost"] == 0
    assert row["properties"] == {}
    assert row["scores"] == {}
    assert row["cached"] is False
    assert row["country_code"] is None
    assert row["trace_id"] == "r1"
    assert row["parent_id"] is None
    assert row["op_name"] == "llm.unknown"
    assert row["response_created_at"] == row["request_created_at"]


async def test_cost_is_stored_as_nano_usd_and_read_back_in_usd() -> None:
    async with Emulator([{**GOOD, "cost": 0.123456789}]) as emulator:
        stored = await emulator.state.store.run(
            lambda cursor: cursor.execute("SELECT cost FROM requests").fetchone()[0]
        )
        (row,) = await emulator.rows()
    assert stored == 123_456_789
    assert row["cost"] == pytest.approx(0.123456789)


@pytest.mark.parametrize(
    ("line", "field", "words"),
    [
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, "JSON object"),
        (
            json.dumps({"user_id": "u", "request_created_at": "2024-01-01T00:00:00Z"}),
            "request_id",
            "required",
        ),
        (json.dumps({**GOOD, "user_id": 7}), "user_id", "string"),
        (json.dumps({**GOOD, "request_created_at": "yesterday"}), "request_created_at", "ISO-8601"),
        (json.dumps({**GOOD, "latency": "fast"}), "latency", "integer"),
        (json.dumps({**GOOD, "latency": 1.5}), "latency", "whole number"),
        (json.dumps({**GOOD, "cost": "1"}), "cost", "USD"),
        (json.dumps({**GOOD, "cost": -1}), "cost", "between"),
        (json.dumps({**GOOD, "properties": ["a"]}), "properties", "object"),
        (json.dumps({**GOOD, "properties": {"a": 1}}), "properties.a", "string"),
        (json.dumps({**GOOD, "scores": {"a": "high"}}), "scores.a", "integer"),
        (json.dumps({**GOOD, "cached": "yes"}), "cached", "true or false"),
        (json.dumps({**GOOD, "modle": "gpt-4o"}), "modle", "unknown field"),
    ],
)
def test_a_bad_line_is_reported_with_its_number_and_field(
    tmp_path: Path, line: str, field: str | None, words: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + line + "\n", encoding="utf-8")
    with pytest.raises(DataLoadError, match=words) as caught:
        read_jsonl(path)
    assert caught.value.line == 3
    assert caught.value.field == field
    assert "line 3" in str(caught.value)
    assert isinstance(caught.value, ValueError)


async def test_a_bad_row_leaves_nothing_half_loaded() -> None:
    async with Emulator([GOOD]) as emulator:
        bad: list[dict[str, Any]] = [
            {**GOOD, "request_id": "r2"},
            {**GOOD, "request_id": "r3", "status": "ok"},
        ]
        with pytest.raises(DataLoadError, match="line 2") as caught:
            await emulator.add_requests(bad)
        assert caught.value.field == "status"
        assert [row["request_id"] for row in await emulator.rows()] == ["r1"]
        assert await emulator.add_requests([{**GOOD, "request_id": "r4"}]) == 1
        assert len(await emulator.rows()) == 2


async def test_synthetic_data_is_deterministic_by_seed() -> None:
    async def rows(seed: int) -> list[dict[str, Any]]:
        async with Emulator.synthetic(seed=seed, users=8, requests=300, days=3) as emulator:
            return await emulator.rows()

    first, again, other = await rows(1), await rows(1), await rows(2)
    assert first == again
    assert first != other


async def test_synthetic_data_looks_like_real_traffic() -> None:
    async with Emulator.synthetic(seed=3, users=40, requests=3000, days=7) as emulator:
        rows = await emulator.rows()
    prices = {model: (prompt, completion) for _p, model, prompt, completion, _w in MODEL_PRICES}
    for row in rows:
        prompt, completion = prices[row["model"]]
        expected = row["prompt_tokens"] * prompt + row["completion_tokens"] * completion
        assert row["cost"] == pytest.approx(expected, abs=1e-9)
    statuses = {row["status"] for row in rows}
    assert statuses == {200, 429, 500}
    assert any(row["user_id"] == "" for row in rows)
    assert {row["properties"]["environment"] for row in rows} >= {"production", "staging"}
    assert len({row["country_code"] for row in rows}) > 3
    counts: dict[str, int] = {}
    for row in rows:
        counts[row["user_id"]] = counts.get(row["user_id"], 0) + 1
    ranked = sorted(counts.values(), reverse=True)
    assert ranked[0] > 5 * ranked[len(ranked) // 2]  # a few users dominate (Zipf-like)
    span = max(r["request_created_at"] for r in rows) - min(r["request_created_at"] for r in rows)
    assert 6 <= span.days <= 7


async def test_a_database_file_keeps_the_data(tmp_path: Path) -> None:
    db = tmp_path / "emulator.duckdb"
    async with Emulator([GOOD], db_path=db):
        pass
    async with Emulator(db_path=db) as reopened:
        assert [row["request_id"] for row in await reopened.rows()] == ["r1"]


def test_the_testing_package_exports_its_public_names() -> None:
    import inspect

    import helicone_users.testing as testing

    public = {
        name
        for name, value in vars(testing).items()
        if name[0].isalpha() and not inspect.ismodule(value) and name != "annotations"
    }
    assert public == set(testing.__all__)
    assert testing.__all__ == sorted(testing.__all__, key=lambda n: (not n.isupper(), n))
    assert testing.Emulator.__module__ == "helicone_users.testing"


async def test_timestamps_with_any_fraction_or_offset_form_load_on_every_python(
    tmp_path: Path,
) -> None:
    path = tmp_path / "requests.jsonl"
    stamps = ["2024-05-01T12:00:00.5Z", "2024-05-01 14:00:00.1234567+0200", "2024-05-01T12:00Z"]
    lines = [{**GOOD, "request_id": f"r{i}", "request_created_at": s} for i, s in enumerate(stamps)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    async with Emulator.from_jsonl(path) as emulator:
        loaded = {row["request_id"]: row["request_created_at"] for row in await emulator.rows()}
    assert [loaded[f"r{i}"].isoformat() for i in range(3)] == [
        "2024-05-01T12:00:00.500000+00:00",
        "2024-05-01T12:00:00.123000+00:00",
        "2024-05-01T12:00:00+00:00",
    ]


@pytest.mark.parametrize(("users", "requests"), [(1, 10), (7, 7), (200, 5000)])
async def test_synthetic_users_n_gives_n_users_through_the_sdk(users: int, requests: int) -> None:
    async with (
        Emulator.synthetic(seed=9, users=users, requests=requests, days=5) as emulator,
        emulator.client() as client,
    ):
        page = await client.users.metrics(limit=1000, time_range=None)
        rows = await emulator.rows()
    assert page.count == users
    assert {user.user_id for user in page.users} == {f"user_{i:06d}" for i in range(1, users + 1)}
    if requests >= 1000:
        assert 0 < sum(row["user_id"] == "" for row in rows) < requests // 50


async def test_the_cli_synthetic_users_option_gives_that_many_users() -> None:
    from helicone_users._cli import build_parser
    from helicone_users._cli.emulator import build_emulator

    args = build_parser().parse_args(
        ["emulator", "--port", "0", "--synthetic-users", "200", "--requests", "5000"]
    )
    async with build_emulator(args) as emulator, emulator.client() as client:
        page = await client.users.metrics(limit=1, time_range=None)
    assert page.count == 200


async def test_synthetic_rows_are_stored_in_time_order() -> None:
    async with Emulator.synthetic(seed=2, users=20, requests=3000, days=9) as emulator:
        stamps = await emulator.state.store.run(
            lambda cursor: cursor.execute(
                "SELECT request_created_at FROM requests ORDER BY rowid"
            ).fetchall()
        )
    assert stamps == sorted(stamps)
