"""CLI behaviour that needs no subprocess: Parquet, missing extras, interrupts, --debug."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from helicone_users import HeliconeUsers
from helicone_users._cli import main
from helicone_users._cli._output import RecordWriter
from tests.conftest import ServedEmulator


@pytest.fixture
def env(served: ServedEmulator, monkeypatch: pytest.MonkeyPatch) -> ServedEmulator:
    monkeypatch.setenv("HELICONE_API_KEY", served.api_key)
    monkeypatch.setenv("HELICONE_BASE_URL", served.base_url)
    return served


def test_export_to_parquet_keeps_numbers_and_timestamps_typed(
    env: ServedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "users.parquet"
    assert main(["export", "--out", str(out), "--page-size", "9", "--quiet"]) == 0
    table = pq.read_table(out)
    with HeliconeUsers(env.api_key, base_url=env.base_url) as client:
        expected = [u.user_id for u in client.users.iter_metrics()]
    assert table.column("user_id").to_pylist() == expected
    assert table.schema.field("total_requests").type == pa.int64()
    first = table.column("first_active")[0].as_py()
    assert isinstance(first, dt.datetime)
    assert f"wrote {table.num_rows} users" in capsys.readouterr().err


def test_parquet_without_pyarrow_names_the_extra_and_writes_nothing(
    env: ServedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    assert main(["export", "--out", str(tmp_path / "users.parquet")]) == 2
    assert "helicone-users[parquet]" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_an_export_suffix_without_a_format_is_a_usage_error(
    env: ServedEmulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", "--out", str(tmp_path / "users.xlsx")]) == 2
    assert "--format" in capsys.readouterr().err


def test_ctrl_c_during_an_export_leaves_no_file(
    env: ServedEmulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real_write_all = RecordWriter.write_all

    def interrupt_after_first_page(self: RecordWriter, records: Any) -> None:
        real_write_all(self, records)
        raise KeyboardInterrupt

    monkeypatch.setattr(RecordWriter, "write_all", interrupt_after_first_page)
    code = main(["export", "--out", str(tmp_path / "users.jsonl"), "--page-size", "5"])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_demo_without_the_emulator_extra_says_which_extra_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)
    assert main(["demo"]) == 1
    assert "helicone-users[emulator]" in capsys.readouterr().err


def test_debug_adds_the_traceback_to_the_one_line_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ["users", "--api-key", "k", "--base-url", "http://127.0.0.1:9", "--max-attempts", "1"]
    assert main(args) == 1
    quiet = capsys.readouterr().err
    assert main([*args, "--debug"]) == 1
    loud = capsys.readouterr().err
    assert "Traceback" not in quiet
    assert "Traceback" in loud
    assert loud.splitlines()[-1] == quiet.strip()


def test_bad_time_options_are_usage_errors(
    env: ServedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["users", "--since", "7 days"])
    assert info.value.code == 2
    assert "invalid duration" in capsys.readouterr().err
    code = main(["users", "--start", "2026-02-01", "--until", "2026-01-01"])
    assert code == 2
    assert "empty time range" in capsys.readouterr().err


@pytest.mark.filterwarnings("default::UserWarning")
def test_sdk_warnings_are_one_line_without_a_source_location(
    env: ServedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["overview", "--filter", "user.cost > 1", "--format", "json"]) == 0
    err = capsys.readouterr().err
    assert err.startswith("helicone-users: warning: the hosted server ignores users_view")
    assert len(err.splitlines()) == 1


def test_users_all_lists_every_user_not_just_the_first_twenty(
    env: ServedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["users", "--all", "--sort", "user_id", "--format", "jsonl"]) == 0
    ids = [json.loads(line)["user_id"] for line in capsys.readouterr().out.splitlines()]
    with HeliconeUsers(env.api_key, base_url=env.base_url) as client:
        assert ids == [u.user_id for u in client.users.iter_metrics(page_size=7)]
    assert len(ids) > 20  # more than the default --limit


def test_a_rejected_key_exits_1_without_printing_the_key(
    env: ServedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "sk-helicone-not-the-right-one"
    assert main(["users", "--api-key", secret, "--debug"]) == 1
    captured = capsys.readouterr()
    assert "401" in captured.err.splitlines()[-1]
    assert secret not in captured.err + captured.out
