"""The ``helicone-users`` command, run as a real subprocess against an emulator in this process."""

from __future__ import annotations

import csv
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from helicone_users import HeliconeUsers
from helicone_users.testing import FaultPlan
from tests.conftest import ServedEmulator, run_cli, served_env


def test_users_lists_the_top_users_by_cost_as_plain_text(served: ServedEmulator) -> None:
    result = run_cli("users", "--limit", "5", env=served_env(served))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["user", "requests", "cost"]
    costs = [float(line.split()[2].lstrip("$").replace(",", "")) for line in lines[2:]]
    assert len(costs) == 5
    assert costs == sorted(costs, reverse=True)
    assert "\x1b[" not in result.stdout  # no terminal codes in a pipe


def test_users_as_json_agrees_with_the_client(served: ServedEmulator) -> None:
    result = run_cli(
        "users", "--filter", 'model contains "gpt"', "--sort", "total_requests:desc",
        "--limit", "3", "--format", "json",
        env=served_env(served),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        page = client.users.metrics(
            'model contains "gpt"', sort=("total_requests", "desc"), limit=3
        )
    assert [u["user_id"] for u in printed] == [u.user_id for u in page.users]
    assert [u["total_requests"] for u in printed] == [u.total_requests for u in page.users]


def test_a_malformed_filter_exits_2_and_points_at_the_fault(served: ServedEmulator) -> None:
    result = run_cli("users", "--filter", 'model = "gpt-4o" and', env=served_env(served))
    assert result.returncode == 2
    assert "^" in result.stderr
    assert 'model = "gpt-4o" and' in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_a_missing_key_exits_2_naming_the_variable(served: ServedEmulator) -> None:
    result = run_cli("users", env={"HELICONE_BASE_URL": served.base_url})
    assert result.returncode == 2
    assert "HELICONE_API_KEY" in result.stderr
    assert "--api-key" in result.stderr


def test_an_unreachable_server_exits_1_with_one_line_and_no_key() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key = "sk-helicone-secret-value"
    result = run_cli(
        "users", "--api-key", key, "--base-url", f"http://127.0.0.1:{port}", "--max-attempts", "1"
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr
    assert key not in result.stderr + result.stdout


def test_export_writes_every_page_to_csv_with_progress_on_stderr(
    served: ServedEmulator, tmp_path: Path
) -> None:
    out = tmp_path / "users.csv"
    result = run_cli(
        "export", "--out", str(out), "--page-size", "7", "--concurrency", "3",
        env=served_env(served),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        expected = [u.user_id for u in client.users.iter_metrics()]
    assert [r["user_id"] for r in rows] == expected
    pages = -(-len(expected) // 7)
    assert f"wrote {len(expected)} users ({pages} pages)" in result.stderr
    assert "users, 1 page, " in result.stderr  # the progress line, in the singular
    assert "users/s, ETA" in result.stderr
    assert "1 pages" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["users.csv"]


def test_an_export_failing_mid_way_leaves_no_file_and_no_temp_file(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    # Deterministic faults: with one page at a time, pages 1 and 2 succeed and page 3 fails.
    server = serve(faults=FaultPlan(rate=0.4, seed=2, kinds=("500",)))
    out = tmp_path / "users.jsonl"
    result = run_cli(
        "export", "--out", str(out), "--page-size", "7", "--concurrency", "1",
        "--max-attempts", "1",
        env=served_env(server),
    )  # fmt: skip
    assert result.returncode == 1
    assert "users, 1 page, " in result.stderr  # it had started writing
    assert "500" in result.stderr.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []


def test_sigint_mid_export_exits_130_and_leaves_no_file(
    serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    server = serve(faults=FaultPlan(rate=1.0, kinds=("slow",), delay=0.3))
    command = [
        sys.executable, "-m", "helicone_users", "export", "--out", str(tmp_path / "users.csv"),
        "--page-size", "5", "--concurrency", "1",
    ]  # fmt: skip
    env = {**os.environ, **served_env(server)}
    with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as process:
        assert process.stderr is not None
        first_line = process.stderr.readline()  # the progress line after the first page
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
    assert "users, 1 page, " in first_line
    assert process.returncode == 130
    assert rest.strip().splitlines() == ["helicone-users: interrupted"]
    assert list(tmp_path.iterdir()) == []


def test_overview_draws_both_histograms_as_bar_charts(served: ServedEmulator) -> None:
    result = run_cli("overview", "--p-size", "p95", env=served_env(served))
    assert result.returncode == 0, result.stderr
    assert "Requests per user" in result.stdout
    assert "Cost per user in USD" in result.stdout
    assert "█" in result.stdout


def test_totals_show_the_given_users(served: ServedEmulator) -> None:
    with HeliconeUsers(served.api_key, base_url=served.base_url) as client:
        ids = [u.user_id for u in client.users.metrics(sort=("user_id", "asc"), limit=2).users]
    result = run_cli("totals", *ids, "--format", "jsonl", env=served_env(served))
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [p["user_id"] for p in printed] == ids
    assert all(p["count"] > 0 for p in printed)


def test_calls_stats_draws_a_sparkline_per_call_metric(served: ServedEmulator) -> None:
    result = run_cli(
        "calls-stats", "--project", "team/project", "--base-url", served.base_url,
        "--start", "2024-12-20", "--until", "2025-01-01", "--granularity", "86400",
        "--metric", "call_count", "--metric", "latency_ms:avg,p95",
        env={"WANDB_API_KEY": served.api_key},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    sparks = {line[:24].strip(): line[25:] for line in lines[1:4]}
    assert set(sparks) == {"sum_call_count", "avg_latency_ms", "p95_latency_ms"}
    for spark in sparks.values():  # one mark per day; days without calls are blank
        assert len(spark) == 12
        assert set(spark) <= set("▁▂▃▄▅▆▇█ ")
    assert set(sparks["sum_call_count"][-5:]) <= set("▁▂▃▄▅▆▇█")
    assert "call buckets" in result.stdout


def test_calls_stats_without_a_key_names_wandb_api_key() -> None:
    result = run_cli("calls-stats", "--project", "team/project")
    assert result.returncode == 2
    assert "WANDB_API_KEY" in result.stderr


def test_demo_tours_every_section_and_exits_0() -> None:
    result = run_cli("demo", "--users", "30", "--requests", "1500")
    assert result.returncode == 0, result.stderr
    for section in (
        "Top users by cost",
        "A filter",
        "f.to_json()",
        "The overview histograms",
        "Totals for a few users",
        "Weave call stats",
    ):
        assert section in result.stdout
    assert "█" in result.stdout
    assert "▁" in result.stdout


def test_the_emulator_command_serves_until_ctrl_c() -> None:
    command = [
        sys.executable, "-m", "helicone_users", "emulator", "--port", "0",
        "--synthetic-users", "12", "--requests", "300",
    ]  # fmt: skip
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        printed = [process.stdout.readline() for _ in range(5)]
        base_url = printed[0].split()[-1]
        key = printed[2].strip().removeprefix("export HELICONE_API_KEY=")
        with HeliconeUsers(key, base_url=base_url) as client:
            count = client.users.metrics(limit=1).count
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    assert base_url.startswith("http://127.0.0.1:")
    assert 0 < count <= 12
    assert process.returncode == 0


@pytest.mark.parametrize(
    "command", ["users", "export", "overview", "totals", "calls-stats", "demo", "emulator"]
)
def test_every_command_has_help_with_examples(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from helicone_users._cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "examples:" in help_text
    assert f"helicone-users {command}" in help_text


_EXPORT_IN_ITS_OWN_PROCESS = (
    "import sys; from helicone_users._cli import console_main; code = console_main(); "
    "import pyarrow; print(pyarrow.default_memory_pool().backend_name, "
    "sorted(m for m in ('pandas', 'pyarrow') if m in sys.modules)); sys.exit(code)"
)


def _export_in_its_own_process(served: ServedEmulator, out: Path, **env: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", _EXPORT_IN_ITS_OWN_PROCESS, "export", "--out", str(out), "--quiet"],
        env={**os.environ, **served_env(served), **env},
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert pq.read_metadata(out).num_rows == 40
    return result.stdout.splitlines()[-1]


def test_a_parquet_export_keeps_pandas_out_and_allocates_through_the_system(
    served: ServedEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pyarrow imports pandas on its first conversion when it is installed (it is, in dev), and
    # its default allocator keeps freed buffers: the command avoids both, which keeps a
    # million-user Parquet export under 150 MB.
    monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL", raising=False)
    assert _export_in_its_own_process(served, tmp_path / "users.parquet") == "system ['pyarrow']"


def test_an_arrow_allocator_the_user_names_is_kept(served: ServedEmulator, tmp_path: Path) -> None:
    out = tmp_path / "users.parquet"
    printed = _export_in_its_own_process(served, out, ARROW_DEFAULT_MEMORY_POOL="mimalloc")
    assert printed == "mimalloc ['pyarrow']"
