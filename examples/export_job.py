"""A restartable batch job: export every user matching a filter, carrying on after failures.

The export itself is ``helicone-users export --resume``: pages are fetched concurrently and
appended in order to a hidden partial file beside the output, with a checkpoint of the completed
pages and of the pinned time window. A run that fails (a crash, Ctrl-C, a failing request) leaves
both; the same command run again cuts the partial file back to the last completed page and
fetches from the next one, so the final file equals a one-shot export. This job adds what a
scheduler wants around it: a few attempts with a growing pause, and an exit status.

Run it::

    export HELICONE_API_KEY=sk-helicone-...
    python examples/export_job.py --filter 'cost > 0.01' --out users.jsonl
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ATTEMPTS = 5
PAUSE = 10.0  # seconds before the second attempt; then twice as long each time
EXIT_USAGE = 2  # the CLI's exit status for bad arguments: trying again cannot help


def export_command(filter_text: str, out: Path, *options: str) -> list[str]:
    """The resumable export, as a command line."""
    return [sys.executable, "-m", "helicone_users", "export", "--resume",
            "--filter", filter_text, "--out", str(out), *options]  # fmt: skip


def run_export(
    filter_text: str,
    out: Path,
    *,
    options: Sequence[str] = (),
    attempts: int = ATTEMPTS,
    pause: float = PAUSE,
    env: Mapping[str, str] | None = None,
) -> int:
    """Run the export until it completes; returns the number of attempts it took. Each failed
    attempt keeps its progress for the next one."""
    command = export_command(filter_text, out, *options)
    for attempt in range(1, attempts + 1):
        code = subprocess.run(command, env=env, check=False).returncode
        if code == 0:
            return attempt
        if code == EXIT_USAGE or attempt == attempts:
            break
        print(f"attempt {attempt} failed (exit {code}); trying again in {pause:.0f} s",
              file=sys.stderr)  # fmt: skip
        time.sleep(pause)
        pause *= 2
    raise SystemExit(f"the export did not complete; run the job again to continue it ({out})")


def main() -> None:
    """Parse the arguments and run the job."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--filter", default="all", help="a filter in the filter language")
    parser.add_argument("--out", type=Path, required=True, help="the .jsonl or .csv to write")
    parser.add_argument("--attempts", type=int, default=ATTEMPTS)
    args = parser.parse_args()
    attempts = run_export(args.filter, args.out, attempts=args.attempts)
    print(f"{args.out} complete after {attempts} attempt(s)")


if __name__ == "__main__":
    main()
