"""CLI behaviour that needs no subprocess: Parquet, missing extras, interrupts, --debug."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from helicone_users import HeliconeUsers
from helicone_users._cli import EXIT_MISSING_EXTRA, main
from helicone_users._cli._sinks import AppendSink
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
    assert main(["export", "--out", str(tmp_path / "users.parquet")]) == EXIT_MISSING_EXTRA
    assert "helicone-users[arrow]" in capsys.readouterr().err
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
    real_write = AppendSink.write

    def interrupt_after_first_page(self: AppendSink, users: Any) -> None:
        real_write(self, users)
        raise KeyboardInterrupt

    monkeypatch.setattr(AppendSink, "write", interrupt_after_first_page)
    code = main(["export", "--out", str(tmp_path / "users.jsonl"), "--page-size", "5"])
    assert code == 130
    assert "interrupted" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["demo", "emulator"])
def test_a_missing_emulator_extra_exits_3_naming_the_extra(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "duckdb", None)
    assert main([command, "--port", "0"] if command == "emulator" else [command]) == 3
    assert EXIT_MISSING_EXTRA == 3
    err = capsys.readouterr().err
    assert "helicone-users[emulator]" in err
    assert "[all]" not in err


def test_demo_help_names_the_emulator_extra(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "helicone-users[emulator]" in out
    assert "[all]" not in out


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


def test_the_cli_and_the_sdk_share_the_overview_default(env: ServedEmulator) -> None:
    import inspect

    from helicone_users._cli import build_parser
    from helicone_users._client import Users

    sdk_default = inspect.signature(Users.overview).parameters["p_size"].default
    assert build_parser().parse_args(["overview"]).p_size == sdk_default == "p95"


def _table(text: str, title: str) -> tuple[list[str], list[list[str]]]:
    lines = text.split(title + "\n", 1)[1].split("\n\n")[0].splitlines()
    rule = lines[1]
    bounds = [(m.start(), m.end()) for m in re.finditer("-+", rule)]
    cells = [[line[a:b].strip() for a, b in bounds] for line in [lines[0], *lines[2:]]]
    return cells[0], cells[1:]


def test_calls_stats_prints_each_column_in_one_number_format(
    env: ServedEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", env.api_key)
    monkeypatch.setenv("WEAVE_BASE_URL", env.base_url)
    code = main([
        "calls-stats", "--project", "e/p", "--start", "2024-12-22", "--until", "2025-01-01",
        "--metric", "latency_ms:avg,p95", "--metric", "error_count", "--metric", "total_cost",
        "--metric", "input_tokens",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "20 buckets of 43,200 s" in out
    for title in ("call buckets", "usage buckets"):
        headers, rows = _table(out, title)
        assert rows
        for index, header in enumerate(headers):
            if header in ("bucket", "model"):
                continue
            cells = [row[index] for row in rows if row[index]]
            assert all(re.fullmatch(r"-?[\d,]+(\.\d+)?", c) for c in cells), (header, cells)
            decimals = {len(c.partition(".")[2]) for c in cells}
            assert len(decimals) == 1, (header, cells)
    assert "e-0" not in out


def test_calls_stats_with_a_wrong_key_names_wandb_api_key_not_helicones(
    env: ServedEmulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "not-the-key")
    code = main(["calls-stats", "--project", "e/p", "--base-url", env.base_url])
    err = capsys.readouterr().err
    assert code == 1
    assert "WANDB_API_KEY" in err
    assert "HELICONE" not in err
    assert "region" not in err


def test_totals_and_users_matching_nothing_print_no_empty_table(
    env: ServedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["totals", "nobody-at-all"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no requests in range for: nobody-at-all" in captured.err
    assert main(["users", "--filter", 'user_id = "nobody-at-all"']) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no user matches" in captured.err
