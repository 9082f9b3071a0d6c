"""Peak memory while streaming users through the pager: 100,000 vs 1,000,000 users.

A server in its own process generates each metrics page from its offset (nothing is stored, so
its memory does not count); each client run is a fresh process that walks every user with
``iter_metrics`` (page_size 1000, concurrency 16) and reports its own peak RSS. Targets: the
1M run within 10% of the 100k run (memory flat in the number of users), and under 150 MB.
Run: ``python benchmarks/bench_memory.py`` (``--sizes`` to change the sizes).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import generated_app, serve_app_in_process

PAGE_SIZE = 1000
CONCURRENCY = 16
FLAT_TARGET = 1.10
PEAK_TARGET_MB = 150.0


async def stream(base_url: str, users: int) -> int:
    """Walk every user, checking order; keep nothing."""
    from helicone_users import AsyncHeliconeUsers

    seen, last = 0, ""
    async with AsyncHeliconeUsers(
        "sk-bench-memory", base_url=f"{base_url}/n/{users}", max_concurrency=CONCURRENCY
    ) as client:
        if users == 0:
            await client.users.metrics(limit=1)
            return 0
        pager = client.users.iter_metrics(page_size=PAGE_SIZE, concurrency=CONCURRENCY)
        async with pager:
            async for user in pager:
                if user.user_id <= last:
                    raise AssertionError(f"out of order: {user.user_id} after {last}")
                last = user.user_id
                seen += 1
    return seen


def client_main(base_url: str, users: int) -> None:
    started = time.perf_counter()
    seen = asyncio.run(stream(base_url, users))
    if seen != users:
        raise AssertionError(f"saw {seen} users, expected {users}")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux
    print(json.dumps({"users": seen, "seconds": time.perf_counter() - started,
                      "peak_mb": peak_kb / 1024}))  # fmt: skip


def run_client(base_url: str, users: int) -> dict[str, Any]:
    """One client run in a fresh process, so that its peak RSS is its own."""
    command = [sys.executable, __file__, "--client", base_url, "--users", str(users)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"client run for {users} users failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 1_000_000])
    parser.add_argument("--client", metavar="BASE_URL", help=argparse.SUPPRESS)
    parser.add_argument("--users", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        client_main(args.client, args.users)
        return 0
    small, large = args.sizes
    with serve_app_in_process(generated_app) as base_url:
        runs = [run_client(base_url, users) for users in (0, small, large)]
    print(f"page_size {PAGE_SIZE}, concurrency {CONCURRENCY}; each run in its own process")
    print(f"{'users':>10} {'seconds':>8} {'users/s':>9} {'peak RSS MB':>12}")
    for run in runs:
        rate = run["users"] / run["seconds"] if run["users"] else 0.0
        label = f"{run['users']:,}" if run["users"] else "baseline"
        print(f"{label:>10} {run['seconds']:>8.1f} {rate:>9,.0f} {run['peak_mb']:>12.1f}")
    ratio = runs[2]["peak_mb"] / runs[1]["peak_mb"]
    peak = max(run["peak_mb"] for run in runs)
    flat = "met" if ratio <= FLAT_TARGET else "missed"
    under = "met" if peak < PEAK_TARGET_MB else "missed"
    print(f"\npeak {large:,} / {small:,}: {ratio:.2f}x (target <= {FLAT_TARGET}): {flat}")
    print(f"largest peak: {peak:.1f} MB (target < {PEAK_TARGET_MB:.0f} MB): {under}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
