"""``helicone-users export``: every format read back, row groups, atomicity, --resume and
--since-last (run in this process, against emulators on their own threads)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from helicone_users import HeliconeUsers, UserMetrics
from helicone_users._cli import _encode as encode
from helicone_users._cli import main
from helicone_users._cli._encode import CsvEncoder, JsonlEncoder
from helicone_users._cli._sinks import AppendSink
from helicone_users._tables import USER_COLUMNS
from helicone_users.testing import Emulator, FaultPlan
from tests.conftest import ServedEmulator

UTC = timezone.utc
FIELDS = [column.name for column in USER_COLUMNS]
TIMES = ("first_active", "last_active")
INTS = ("active_for", "total_requests", "total_completion_tokens", "total_prompt_tokens")


@pytest.fixture
def env(served: ServedEmulator, monkeypatch: pytest.MonkeyPatch) -> ServedEmulator:
    _point_at(served, monkeypatch)
    return served


def _point_at(server: ServedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HELICONE_API_KEY", server.api_key)
    monkeypatch.setenv("HELICONE_BASE_URL", server.base_url)


def _served_users(server: ServedEmulator, **kwargs: Any) -> list[UserMetrics]:
    with HeliconeUsers(server.api_key, base_url=server.base_url) as client:
        return list(client.users.iter_metrics(**kwargs))


def _expected(users: list[UserMetrics]) -> list[dict[str, Any]]:
    return [{name: getattr(user, name) for name in FIELDS} for user in users]


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    """A row of text (CSV) or JSON values, read back with the documented types."""
    out: dict[str, Any] = {}
    for name in FIELDS:
        value = row[name]
        if value in ("", None):
            out[name] = None
        elif name in TIMES:
            out[name] = datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif name in INTS or name == "rate_limited_count":
            out[name] = int(value)
        elif name == "user_id":
            out[name] = value
        else:
            out[name] = float(value)
    return out


def _read(path: Path) -> list[dict[str, Any]]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            assert reader.fieldnames == FIELDS
            return [_typed(row) for row in reader]
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows:
        assert list(row) == FIELDS
        assert all(isinstance(row[name], int) for name in INTS)
        assert isinstance(row["cost"], float)
    return [_typed(row) for row in rows]


@pytest.mark.parametrize("name", ["users.csv", "users.jsonl", "users.parquet"])
def test_each_format_reads_back_equal_to_the_users_served(
    env: ServedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    out = tmp_path / name
    assert main(["export", "--out", str(out), "--page-size", "7"]) == 0
    expected = _served_users(env)
    assert _read(out) == _expected(expected)
    err = capsys.readouterr().err
    assert f"wrote {len(expected)} users ({-(-len(expected) // 7)} pages)" in err
    assert f"/{len(expected)} users, 1 page," in err  # progress, whatever the format
    assert "users/s, ETA" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]


def test_parquet_has_the_documented_schema_and_several_row_groups(
    env: ServedEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "users.parquet"
    code = main(["export", "--out", str(out), "--page-size", "7", "--row-group-size", "10",
                 "--quiet"])  # fmt: skip
    assert code == 0
    meta = pq.ParquetFile(out).metadata
    total = len(_served_users(env))
    assert meta.num_row_groups == -(-total // 10) > 1
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups - 1)] == [10] * (
        meta.num_row_groups - 1
    )
    schema = pq.read_schema(out)
    assert schema.field("first_active").type == pa.timestamp("ms", tz="UTC")
    assert schema.field("cost").type == pa.float64()
    assert schema.field("total_requests").type == pa.int64()
    assert schema.field("user_id").type == pa.string()


@pytest.mark.parametrize("name", ["users.csv", "users.parquet"])
def test_an_export_failing_midway_leaves_no_file(
    serve: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str
) -> None:
    # With one page at a time, pages 1 and 2 succeed and page 3 fails.
    _point_at(serve(faults=FaultPlan(rate=0.4, seed=2, kinds=("500",))), monkeypatch)
    code = main(["export", "--out", str(tmp_path / name), "--page-size", "7",
                 "--concurrency", "1", "--max-attempts", "1", "--quiet"])  # fmt: skip
    assert code == 1
    assert list(tmp_path.iterdir()) == []


# --- The encoders without msgspec -----------------------------------------------------------------


def _tricky_users() -> list[UserMetrics]:
    moment = datetime(2024, 5, 1, 12, 34, 56, 789000, tzinfo=UTC)
    base: dict[str, Any] = {
        "active_for": 2, "first_active": moment, "last_active": moment + timedelta(days=1),
        "total_requests": 3, "average_requests_per_day_active": 1.5,
        "average_tokens_per_request": 1e-7, "total_completion_tokens": 4,
        "total_prompt_tokens": 5, "cost": 0.1, "rate_limited_count": None,
    }  # fmt: skip
    ids = ['comma, "quoted"', "line\nbreak", "é ü", "plain"]
    return [UserMetrics(id=i, user_id=i, **{**base, "rate_limited_count": n or None})
            for n, i in enumerate(ids)]  # fmt: skip


@pytest.mark.parametrize("fast", [True, False])
def test_csv_and_jsonl_encoders_write_the_same_values_with_or_without_msgspec(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fast: bool
) -> None:
    if not fast:
        monkeypatch.setattr(encode, "_msgspec", lambda: None)
    users = _tricky_users()
    for suffix, encoder in ((".csv", CsvEncoder), (".jsonl", JsonlEncoder)):
        path = tmp_path / f"users{suffix}"
        made = encoder(USER_COLUMNS)
        path.write_bytes(made.header() + made.encode(users[:2]) + made.encode(users[2:]))
        assert _read(path) == _expected(users)


# --- --resume -------------------------------------------------------------------------------------


class _Stop(Exception):
    pass


def _stop_after(monkeypatch: pytest.MonkeyPatch, pages: int) -> None:
    real_write = AppendSink.write
    seen: list[int] = []

    def write(self: AppendSink, users: Any) -> None:
        if len(seen) == pages:
            raise KeyboardInterrupt
        seen.append(len(users))
        real_write(self, users)

    monkeypatch.setattr(AppendSink, "write", write)


@pytest.mark.parametrize("name", ["users.csv", "users.jsonl", "users.parquet"])
def test_an_interrupted_resumable_export_finishes_equal_to_a_one_shot_export(
    env: ServedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    name: str,
) -> None:
    one_shot, resumed = tmp_path / "one" / name, tmp_path / "resumed" / name
    one_shot.parent.mkdir()
    resumed.parent.mkdir()
    args = ["export", "--page-size", "7", "--until", "2030-01-01", "--resume"]
    assert main([*args, "--out", str(one_shot)]) == 0
    with monkeypatch.context() as patch:
        _stop_after(patch, pages=2)
        assert main([*args, "--out", str(resumed)]) == 130
    assert not resumed.exists()
    left = sorted(p.name for p in resumed.parent.iterdir())
    assert left == [f".{name}.partial", f".{name}.resume.json"]
    with (resumed.parent / f".{name}.partial").open("ab") as f:
        f.write(b"torn half-written row")  # after the last checkpoint: must be dropped
    capsys.readouterr()
    assert main([*args, "--out", str(resumed)]) == 0
    assert "resuming users" in capsys.readouterr().err
    assert _read(resumed) == _read(one_shot) == _expected(_served_users(env))
    if name.endswith(".parquet"):
        assert pq.read_table(resumed).schema == pq.read_table(one_shot).schema
    else:
        assert resumed.read_bytes() == one_shot.read_bytes()
    assert sorted(p.name for p in resumed.parent.iterdir()) == [name]


def test_resume_refuses_a_checkpoint_of_another_export(
    env: ServedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "users.jsonl"
    with monkeypatch.context() as patch:
        _stop_after(patch, pages=1)
        assert main(["export", "--out", str(out), "--page-size", "7", "--resume"]) == 130
    capsys.readouterr()
    assert main(["export", "--out", str(out), "--page-size", "7", "--resume",
                 "--filter", "cost > 0"]) == 2  # fmt: skip
    assert "belongs to another export" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "u.csv", "--lag", "5m"], "--lag only applies with --since-last"),
        (["--out", "u.csv", "--since-last", "s.state", "--since", "7d"], "drop --since"),
    ],
)
def test_export_options_that_cannot_go_together_are_usage_errors(
    env: ServedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", *args]) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


# --- --since-last ---------------------------------------------------------------------------------

T1 = datetime(2026, 1, 10, tzinfo=UTC)
T2 = datetime(2026, 1, 20, tzinfo=UTC)


def _request(n: int, user: str, at: datetime) -> dict[str, Any]:
    return {"request_id": f"r{n}", "user_id": user, "request_created_at": at.isoformat(),
            "cost": 0.01 * (n + 1), "prompt_tokens": n, "model": "gpt-4o"}  # fmt: skip


# Before T1 only: a, b. Both sides: c (and d, whose second request is at T1 itself, which the
# first window excludes). After T1 only: e. At T2 itself: f, which belongs to a later window.
REQUESTS = [
    _request(0, "a", T1 - timedelta(days=5)),
    _request(1, "b", T1 - timedelta(milliseconds=1)),
    _request(2, "c", T1 - timedelta(days=2)),
    _request(3, "c", T1 + timedelta(days=2)),
    _request(4, "d", T1 - timedelta(days=1)),
    _request(5, "d", T1),
    _request(6, "e", T2 - timedelta(milliseconds=1)),
    _request(7, "f", T2),
]


@pytest.fixture
def timeline(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServedEmulator]:
    server = ServedEmulator(lambda: Emulator(REQUESTS))
    _point_at(server, monkeypatch)
    yield server
    server.close()


def _ids(path: Path) -> list[str]:
    return [row["user_id"] for row in pq.read_table(path).to_pylist()]


def test_an_incremental_run_exports_exactly_the_users_active_since_the_last(
    timeline: ServedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, state = tmp_path / "users.parquet", tmp_path / "users.state"
    base = ["export", "--out", str(out), "--since-last", str(state), "--quiet"]
    assert main([*base, "--until", T1.isoformat()]) == 0
    first = tmp_path / "users-20260110T000000Z.parquet"
    assert _ids(first) == ["a", "b", "c", "d"]
    assert main([*base, "--until", T2.isoformat()]) == 0
    second = tmp_path / "users-20260120T000000Z.parquet"
    assert _ids(second) == ["c", "d", "e"]  # none twice, none of a and b again, not f yet
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    totals_at_t2 = _served_users(timeline, time_range=(epoch, T2))
    assert pq.read_table(second).to_pylist() == _expected(
        [user for user in totals_at_t2 if user.user_id in ("c", "d", "e")]
    )
    saved = json.loads(state.read_text())
    assert saved["version"] == 1
    assert saved["exported_until"] == "2026-01-20T00:00:00Z"
    assert saved["pending_until"] is None
    assert saved["last_file"] == second.name
    assert main([*base, "--until", T2.isoformat()]) == 0
    assert "nothing to export" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "users-20260110T000000Z.parquet", "users-20260120T000000Z.parquet", "users.state",
    ]  # fmt: skip


def test_the_latest_row_per_user_across_partitions_is_the_whole_table(
    timeline: ServedEmulator, tmp_path: Path
) -> None:
    out, state = tmp_path / "users.jsonl", tmp_path / "users.state"
    base = ["export", "--out", str(out), "--since-last", str(state), "--quiet"]
    for until in (T1 - timedelta(days=3), T1, T1 + timedelta(days=3), T2):
        assert main([*base, "--until", until.isoformat()]) == 0
    latest: dict[str, dict[str, Any]] = {}
    for part in sorted(tmp_path.glob("users-*.jsonl")):
        for row in _read(part):
            latest[row["user_id"]] = row
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    whole = _expected(_served_users(timeline, time_range=(epoch, T2)))
    assert sorted(latest.values(), key=lambda row: row["user_id"]) == whole


def test_a_failed_incremental_run_leaves_the_state_and_is_redone_over_the_same_window(
    timeline: ServedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, state = tmp_path / "users.csv", tmp_path / "users.state"
    base = ["export", "--out", str(out), "--since-last", str(state), "--quiet"]
    assert main([*base, "--until", T1.isoformat()]) == 0
    with monkeypatch.context() as patch:
        _stop_after(patch, pages=0)
        assert main([*base, "--until", T2.isoformat()]) == 130
    saved = json.loads(state.read_text())
    assert saved["exported_until"] == "2026-01-10T00:00:00Z"
    assert saved["pending_until"] == "2026-01-20T00:00:00Z"
    # A later --until does not widen the failed window: it is redone as it was.
    later = T2 + timedelta(days=5)
    assert main([*base, "--until", later.isoformat()]) == 0
    assert [row["user_id"] for row in _read(tmp_path / "users-20260120T000000Z.csv")] == [
        "c", "d", "e",
    ]  # fmt: skip
    assert json.loads(state.read_text())["exported_until"] == "2026-01-20T00:00:00Z"


def test_a_state_file_of_another_export_is_refused(
    timeline: ServedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "users.state"
    first = ["export", "--out", str(tmp_path / "users.csv"), "--since-last", str(state)]
    assert main([*first, "--until", T1.isoformat(), "--quiet"]) == 0
    capsys.readouterr()
    assert main([*first, "--filter", "cost > 1"]) == 2
    assert "belongs to another export" in capsys.readouterr().err


def test_the_window_ends_lag_before_now(
    timeline: ServedEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "users.state"
    before = datetime.now(UTC)
    code = main(["export", "--out", str(tmp_path / "u.csv"), "--since-last", str(state),
                 "--lag", "1h", "--quiet"])  # fmt: skip
    assert code == 0
    written = json.loads(state.read_text())["exported_until"]
    until = datetime.fromisoformat(written.replace("Z", "+00:00"))  # 3.10 reads no "Z"
    assert before - timedelta(hours=1, seconds=1) <= until <= before - timedelta(minutes=59)
    assert until.microsecond == 0


def test_a_stopped_resumable_incremental_run_carries_on_with_its_window(
    timeline: ServedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out, state = tmp_path / "users.jsonl", tmp_path / "users.state"
    base = ["export", "--out", str(out), "--since-last", str(state), "--quiet"]
    assert main([*base, "--until", T1.isoformat()]) == 0
    resumable = [*base, "--resume", "--page-size", "1"]  # another page size: same export
    with monkeypatch.context() as patch:
        _stop_after(patch, pages=2)
        assert main([*resumable, "--until", T2.isoformat()]) == 130
    capsys.readouterr()
    assert main([*resumable, "--until", (T2 + timedelta(days=1)).isoformat()]) == 0
    assert "resuming users-20260120T000000Z.jsonl after 2 users" in capsys.readouterr().err
    second = tmp_path / "users-20260120T000000Z.jsonl"
    assert [row["user_id"] for row in _read(second)] == ["c", "d", "e"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "users-20260110T000000Z.jsonl", "users-20260120T000000Z.jsonl", "users.state",
    ]  # fmt: skip
