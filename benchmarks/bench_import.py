"""Import time: ``import helicone_users`` vs ``import aiohttp`` alone, each in a fresh interpreter.

aiohttp is the SDK's heaviest dependency and a floor no client built on it can go below, so the
ratio of the two is the SDK's own share of the import. Both are timed inside the child process
(``time.perf_counter`` around the import statement, interpreter start-up excluded), in
alternating pairs so that load from other processes hits both sides alike; the ratio is the
median of the pairs' ratios. The Weave client and the blocking facade load on first use, so a
third line times importing everything public, for comparison. Target: ``import helicone_users``
takes at most 1.5x ``import aiohttp``.
Run: ``python benchmarks/bench_import.py``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

PAIRS = 15
TARGET = 1.5
TIMER = "import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
STATEMENTS = {
    "aiohttp": "import aiohttp",
    "sdk": "import helicone_users",
    "everything": "import helicone_users as h; [getattr(h, n) for n in h.__all__]",
}


def timed(statement: str) -> float:
    """Seconds the statement takes in a fresh interpreter (start-up excluded)."""
    done = subprocess.run(
        [sys.executable, "-c", TIMER.format(statement=statement)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(done.stdout.strip())


def main() -> int:
    for statement in STATEMENTS.values():  # warm the file cache before measuring
        timed(statement)
    samples: dict[str, list[float]] = {name: [] for name in STATEMENTS}
    for _ in range(PAIRS):
        for name, statement in STATEMENTS.items():
            samples[name].append(timed(statement))
    ratios = [sdk / base for sdk, base in zip(samples["sdk"], samples["aiohttp"], strict=True)]
    ratio = statistics.median(ratios)
    medians = {name: statistics.median(values) * 1000 for name, values in samples.items()}
    print(f"medians over {PAIRS} fresh interpreters each:")
    for name, statement in STATEMENTS.items():
        print(f"  {statement:<70} {medians[name]:7.1f} ms")
    verdict = "met" if ratio <= TARGET else "missed"
    print(
        f"import helicone_users {medians['sdk']:.0f} ms / import aiohttp {medians['aiohttp']:.0f}"
        f" ms: {ratio:.2f}x (target <= {TARGET}): {verdict}"
    )
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    raise SystemExit(main())
