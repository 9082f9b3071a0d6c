"""The examples, run against the emulator: the FastAPI app and the restartable export job."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from helicone_users import RetryPolicy
from helicone_users.testing import FaultPlan
from tests.conftest import ROOT, ServedEmulator, load_example, served_env

fastapi_app = load_example("fastapi_app")
export_job = load_example("export_job")


async def _get(app: Any, params: dict[str, Any]) -> httpx.Response:
    """Run the app's lifespan around one request sent through the ASGI transport."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://app") as http,
    ):
        return await http.get("/top-users", params=params)


async def test_top_users_endpoint_returns_the_costliest_matching_users(
    served: ServedEmulator,
) -> None:
    app = fastapi_app.create_app(api_key=served.api_key, base_url=served.base_url)
    response = await _get(app, {"filter": 'model contains "gpt"', "limit": 3})
    assert response.status_code == 200
    body = response.json()
    costs = [u["cost"] for u in body["users"]]
    assert len(costs) == 3
    assert costs == sorted(costs, reverse=True)
    assert body["matching_users"] >= 3


async def test_a_bad_filter_is_a_400_with_the_filter_message(served: ServedEmulator) -> None:
    app = fastapi_app.create_app(api_key=served.api_key, base_url=served.base_url)
    response = await _get(app, {"filter": "model = "})
    assert response.status_code == 400
    assert "model = " in response.json()["detail"]


async def test_a_failing_helicone_is_a_502(serve: Callable[..., ServedEmulator]) -> None:
    server = serve(faults=FaultPlan(rate=1.0, kinds=("500",)))
    app = fastapi_app.create_app(
        api_key=server.api_key, base_url=server.base_url, retry=RetryPolicy.disabled()
    )
    response = await _get(app, {})
    assert response.status_code == 502
    assert "500" in response.json()["detail"]


async def test_a_slow_helicone_is_a_504(serve: Callable[..., ServedEmulator]) -> None:
    server = serve(faults=FaultPlan(rate=1.0, kinds=("slow",), delay=0.5))
    app = fastapi_app.create_app(
        api_key=server.api_key,
        base_url=server.base_url,
        retry=RetryPolicy.disabled(),
        timeout=0.05,
    )
    response = await _get(app, {})
    assert response.status_code == 504


def test_the_export_job_carries_on_after_failures_to_the_file_of_a_one_shot_export(
    served: ServedEmulator, serve: Callable[..., ServedEmulator], tmp_path: Path
) -> None:
    # One page at a time, no retries, 40% of requests failing: every attempt stops part way.
    flaky = serve(faults=FaultPlan(rate=0.4, seed=2, kinds=("500",)))
    text = 'model contains "gpt"'
    options = ["--page-size", "4", "--concurrency", "1", "--max-attempts", "1", "--quiet"]
    one_shot, resumed = tmp_path / "one-shot.jsonl", tmp_path / "resumed.jsonl"
    export_job.run_export(text, one_shot, options=options, env=_env(served), pause=0)
    attempts = export_job.run_export(
        text, resumed, options=options, env=_env(flaky), attempts=30, pause=0
    )
    assert attempts > 1
    assert resumed.read_bytes() == one_shot.read_bytes()
    ids = [json.loads(line)["user_id"] for line in resumed.read_text().splitlines()]
    assert ids == sorted(set(ids))
    assert len(ids) > 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one-shot.jsonl", "resumed.jsonl"]


def test_the_export_job_gives_up_at_once_on_a_usage_error(
    served: ServedEmulator, tmp_path: Path
) -> None:
    with pytest.raises(SystemExit, match="did not complete"):
        export_job.run_export("model = ", tmp_path / "users.jsonl", env=_env(served), pause=60)


def _env(server: ServedEmulator) -> dict[str, str]:
    return {**os.environ, **served_env(server)}


def test_the_fastapi_example_serves_with_uvicorn_from_the_examples_extra(
    served: ServedEmulator,
) -> None:
    command = [sys.executable, "-m", "uvicorn", "examples.fastapi_app:app", "--port", "0"]
    env = {**os.environ, **served_env(served)}
    with subprocess.Popen(
        command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        deadline = time.monotonic() + 30
        url = None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            found = re.search(r"running on (http://\S+)", line)
            url = found.group(1) if found else None
        assert url is not None, "uvicorn did not start"
        try:
            response = httpx.get(f"{url}/top-users", params={"limit": 2}, timeout=10)
        finally:
            process.send_signal(signal.SIGINT)
            process.communicate(timeout=30)
    assert response.status_code == 200
    assert len(response.json()["users"]) == 2
