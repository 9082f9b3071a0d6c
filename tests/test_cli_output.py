"""The CLI's building blocks: tables, writers, charts, atomic files, time options, progress."""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import io
import json
import re
from pathlib import Path

import pytest

from helicone_users._cli._atomic import atomic_path, atomic_write
from helicone_users._cli._output import (
    Column,
    bar_chart,
    column_decimals,
    format_usd,
    plain_table,
    print_table,
    sparkline,
    without_float_noise,
    write_records,
)
from helicone_users._cli._progress import Progress
from helicone_users._cli._timeparse import parse_duration, parse_instant, resolve_window
from helicone_users._cli._views import histogram_items, usd_items
from helicone_users._models import HistogramRow

UTC = dt.timezone.utc
RECORDS = [
    {"user_id": "alice", "cost": 12.5, "total_requests": 3, "tags": {"a": "1"}},
    {"user_id": "bob-with-a-long-id", "cost": 0.25, "total_requests": 120, "tags": None},
]
COLUMNS = [
    Column(key="user_id", header="user"),
    Column(key="cost", header="cost", fmt=format_usd, numeric=True),
    Column(key="total_requests", header="requests", numeric=True),
]


def test_plain_table_aligns_text_left_and_numbers_right() -> None:
    out = io.StringIO()
    print_table(RECORDS, COLUMNS, out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["user", "cost", "requests"]
    assert lines[2].startswith("alice ")
    # Right-aligned numbers end in the same column.
    assert len(lines[2]) == len(lines[3])
    assert lines[2].endswith("  3")
    assert lines[3].endswith("120")
    assert "$12.50" in lines[2]
    assert "$0.25" in lines[3]


def test_plain_table_of_no_rows_is_just_the_header() -> None:
    assert len(plain_table([], COLUMNS)) == 2


def test_rich_table_fits_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "40")
    out = Tty()
    print_table([{**RECORDS[0], "user_id": "x" * 80}], COLUMNS, out)
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert max(len(line) for line in lines) <= 40
    assert any("$12.50" in line for line in lines)


def test_json_jsonl_and_csv_writers_round_trip_the_records() -> None:
    as_json, as_jsonl, as_csv = io.StringIO(), io.StringIO(), io.StringIO()
    write_records(RECORDS, "json", as_json)
    write_records(RECORDS, "jsonl", as_jsonl)
    write_records(RECORDS, "csv", as_csv)
    assert json.loads(as_json.getvalue()) == RECORDS
    assert [json.loads(line) for line in as_jsonl.getvalue().splitlines()] == RECORDS
    rows = list(csv.DictReader(io.StringIO(as_csv.getvalue())))
    assert rows[0] == {
        "user_id": "alice",
        "cost": "12.5",
        "total_requests": "3",
        "tags": '{"a":"1"}',
    }
    assert rows[1]["tags"] == ""


def test_bar_chart_scales_bars_to_the_largest_value_within_the_width() -> None:
    lines = bar_chart([("0-10", 10.0), ("10-20", 5.0), ("20-30", 0.0)], width=30)
    assert all(len(line) <= 30 for line in lines)
    full, half, empty = (line.split("│")[1] for line in lines)
    assert full.count("█") in (2 * half.count("█"), 2 * half.count("█") + 1)
    assert "█" not in empty
    assert bar_chart([]) == ["(no data)"]


def test_sparkline_maps_lowest_to_lowest_block_and_marks_gaps() -> None:
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7]) == "▁▂▃▄▅▆▇█"
    assert sparkline([1.0, None, 3.0]) == "▁ █"
    assert sparkline([]) == ""


def test_atomic_write_leaves_the_complete_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    with atomic_write(target) as f:
        f.write("a,b\n")
        assert not target.exists()
    assert target.read_text() == "a,b\n"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_write_interrupted_leaves_neither_file_nor_temp(
    tmp_path: Path, error: BaseException
) -> None:
    target = tmp_path / "out.jsonl"

    def write_then_fail() -> None:
        with atomic_write(target) as f:
            f.write("partial\n")
            raise error

    with pytest.raises(type(error)):
        write_then_fail()
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_failure_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "out.parquet"
    target.write_text("old")

    def write_then_fail() -> None:
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert target.read_text() == "old"
    assert list(tmp_path.iterdir()) == [target]


def test_durations_and_instants_parse_with_units_and_utc() -> None:
    assert parse_duration("7d") == dt.timedelta(days=7)
    assert parse_duration("12h") == dt.timedelta(hours=12)
    assert parse_duration("30m") == dt.timedelta(minutes=30)
    assert parse_instant("2026-01-31") == dt.datetime(2026, 1, 31, tzinfo=UTC)
    assert parse_instant("2026-01-31T12:00:00Z") == dt.datetime(2026, 1, 31, 12, tzinfo=UTC)
    assert parse_instant("2026-01-31T12:00:00+02:00") == dt.datetime(2026, 1, 31, 10, tzinfo=UTC)
    for bad in ("7", "7 days", "-1d"):
        with pytest.raises(argparse.ArgumentTypeError, match="duration"):
            parse_duration(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="ISO 8601"):
        parse_instant("yesterday")


def test_window_counts_since_back_from_until_and_refuses_empty_ranges() -> None:
    now = dt.datetime(2026, 2, 1, tzinfo=UTC)
    since = argparse.Namespace(since=dt.timedelta(days=7), start=None, until=None)
    assert resolve_window(since, now=now) == (now - dt.timedelta(days=7), now)
    nothing = argparse.Namespace(since=None, start=None, until=None)
    assert resolve_window(nothing, now=now) is None
    backwards = argparse.Namespace(since=None, start=now, until=now - dt.timedelta(hours=1))
    with pytest.raises(argparse.ArgumentTypeError, match="empty time range"):
        resolve_window(backwards, now=now)


def test_plain_progress_reports_users_pages_rate_and_eta_on_its_stream() -> None:
    out = io.StringIO()
    now = [100.0]
    with Progress("export", stream=out, clock=lambda: now[0]) as progress:
        progress.set_total(3000)
        now[0] += 2.0
        progress.advance(1000)
        now[0] += 2.0
        progress.advance(500)
    assert out.getvalue().splitlines() == [
        "export: 1000/3000 users, 1 page, 500 users/s, ETA 0:04",
        "export: 1500/3000 users, 2 pages, 375 users/s, ETA 0:04",
    ]


def test_a_resumed_progress_counts_only_this_runs_users_in_the_rate() -> None:
    now = [0.0]
    progress = Progress("export", stream=io.StringIO(), clock=lambda: now[0])
    with progress:
        progress.set_total(10_000)
        progress.resume_from(9000, 9)
        now[0] += 1.0
        progress.advance(100)
    assert progress.items == 9100
    assert progress.rate() == 100.0
    assert progress.eta() == 9.0


def test_terminal_progress_is_a_bar_with_users_and_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "60")
    out = Tty()
    with Progress("export", stream=out) as progress:
        progress.set_total(30)
        progress.advance(30)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    last = text.replace("\r", "\n").strip().splitlines()[-1]
    assert "30/30 users" in last
    assert "1 page " in last
    assert len(last) <= 60
    with Progress("export", stream=out) as progress:
        progress.set_total(30)
        progress.advance(10)
        progress.advance(20)
    text = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", out.getvalue())
    assert "2 pages" in text.replace("\r", "\n").strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("values", "decimals"),
    [
        ([3, 2544, 0], 0),
        ([681.2683, 2544, 1552.75], 1),
        ([0.012, 0.0226, 0.0006, 1.64e-05], 6),
        ([0.5, None, 12.0], 2),
        ([0.0, 0.05], 3),
        ([1e-12, 3.5], 6),
    ],
)
def test_a_column_gets_one_number_of_decimals_for_every_row(
    values: list[float | None], decimals: int
) -> None:
    assert column_decimals(values) == decimals


def test_printed_json_has_no_float_noise_but_keeps_real_digits() -> None:
    record = {"range_end": 140.10000000000002, "avg": 24.193548387096776, "n": 3, "s": "x"}
    assert without_float_noise(record) == {
        "range_end": 140.1, "avg": 24.1935483870968, "n": 3, "s": "x",
    }  # fmt: skip
    out = io.StringIO()
    write_records([record], "json", out)
    assert "140.1," in out.getvalue()
    assert "0000000000002" not in out.getvalue()
    out = io.StringIO()
    write_records([record], "jsonl", out)
    assert json.loads(out.getvalue())["range_end"] == 140.1


def test_a_table_of_no_records_prints_nothing() -> None:
    out = io.StringIO()
    write_records([], "table", out, COLUMNS)
    assert out.getvalue() == ""
    out = io.StringIO()
    write_records([], "json", out, COLUMNS)
    assert out.getvalue() == "[]\n"


def test_histogram_ranges_no_bin_covers_are_charted_as_empty_rows() -> None:
    rows = [
        HistogramRow(range_start=6.0, range_end=50.7, value=78.0),
        HistogramRow(range_start=50.7, range_end=95.4, value=12.0),
        HistogramRow(range_start=184.2, range_end=229.5, value=1.0),
    ]
    items = histogram_items(rows)
    assert items == [
        ("6 – 50.7", 78.0), ("50.7 – 95.4", 12.0), ("95.4 – 184.2", 0.0), ("184.2 – 229.5", 1.0),
    ]  # fmt: skip
    lines = bar_chart(items, width=60)
    assert lines[2].rstrip().endswith(" 0")
    assert [label for label, _ in usd_items(rows)][2] == "$95.40 – $184.20"
