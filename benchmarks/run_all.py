"""Run every benchmark script and write the results table.

Each ``benchmarks/bench_*.py`` runs in its own process; its lines that state a target become
the summary. Writes ``benchmarks/results.md`` (summary, machine, date, command, each script's
full output), prints it, and puts the summary between the ``<!-- benchmarks -->`` markers of
``README.md``. Run: ``python benchmarks/run_all.py`` (about three minutes; five at most).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.md"
README = ROOT / "README.md"
START, END = "<!-- benchmarks -->", "<!-- /benchmarks -->"
# The order the table shows; any other bench_*.py found runs after these.
ORDER = (
    "filters",
    "decode",
    "pagination",
    "faults",
    "budget",
    "overhead",
    "memory",
    "export",
    "emulator",
)
BUDGET = 300.0
TARGET = re.compile(r"target", re.IGNORECASE)
RATIO_TO_TARGET = re.compile(r"ratio to [^:]*target:\s*([0-9.]+)")


@dataclass
class Run:
    name: str
    seconds: float
    code: int
    output: str

    def ran(self) -> bool:
        """Whether the script finished (a script may exit 1 to say a target was missed)."""
        return self.code == 0 or (self.code == 1 and "Traceback" not in self.output)

    def key_lines(self) -> list[str]:
        """The lines that state a result against a target, else the last line printed."""
        lines = [line.strip() for line in self.output.splitlines() if line.strip()]
        keyed = [line for line in lines if TARGET.search(line)]
        if keyed or len(lines) < 2:
            return keyed or lines
        return [f"{lines[0]} → {lines[-1]}"]  # a table without targets: header, last row


def status(line: str) -> str:
    """met / missed as the script says it, or from a "ratio to ... target" figure."""
    lowered = line.lower()
    if "missed" in lowered:
        return "missed"
    if re.search(r"\bmet\b", lowered):
        return "met"
    match = RATIO_TO_TARGET.search(lowered)
    if match:
        return "met" if float(match.group(1)) <= 1.0 else "missed"
    return "-"


def scripts() -> list[Path]:
    found = {path.stem.removeprefix("bench_"): path for path in HERE.glob("bench_*.py")}
    ordered = [found.pop(name) for name in ORDER if name in found]
    return ordered + [found[name] for name in sorted(found)]


def run(path: Path, timeout: float) -> Run:
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, str(path)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )
        failed = done.returncode != 0 and done.stderr.strip()
        output = done.stdout + (f"\n[stderr]\n{done.stderr}" if failed else "")
        code = done.returncode
    except subprocess.TimeoutExpired as expired:
        partial = expired.stdout or ""
        if isinstance(partial, bytes):
            partial = partial.decode(errors="replace")
        output = f"timed out after {timeout:.0f} s\n{partial}"
        code = -1
    return Run(path.stem, time.perf_counter() - started, code, output)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with_model = Path("/proc/cpuinfo")
    if with_model.is_file():
        for line in with_model.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        total_kb = int(meminfo.read_text().split()[1])
        memory = f", {total_kb / 1024 / 1024:.1f} GiB RAM"
    return (
        f"{cpu}, {os.cpu_count()} cores{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())


def summary(runs: list[Run]) -> str:
    rows = ["| benchmark | result against its target | status | time |", "|---|---|---|---|"]
    for result in runs:
        for index, line in enumerate(result.key_lines()):
            verdict = status(line) if result.ran() else "failed"
            took = f"{result.seconds:.1f} s" if index == 0 else ""
            name = f"`{result.name}.py`" if index == 0 else ""
            rows.append(f"| {name} | {cell(line)} | {verdict} | {took} |")
    return "\n".join(rows)


def report(runs: list[Run], table: str, total: float) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmark results",
        "",
        table,
        "",
        f"Machine: {machine()}.  ",
        f"Date: {when}; all scripts took {total:.0f} s.  ",
        "Command: `python benchmarks/run_all.py`",
        "",
        "## Full output",
    ]
    for result in runs:
        parts += ["", f"### {result.name}.py (exit {result.code}, {result.seconds:.1f} s)", "",
                  "```", result.output.rstrip(), "```"]  # fmt: skip
    return "\n".join(parts) + "\n"


def update_readme(table: str, when: str) -> None:
    """Replace the text between the markers; add them under a Benchmarks heading if absent."""
    text = README.read_text(encoding="utf-8")
    block = (
        f"{START}\n{table}\n\nMeasured {when} with `python benchmarks/run_all.py`; "
        f"details in `benchmarks/results.md`.\n{END}"
    )
    if START in text and END in text:
        before, rest = text.split(START, 1)
        after = rest.split(END, 1)[1]
        text = before + block + after
    elif re.search(r"^## Benchmarks[ \t]*$", text, re.MULTILINE):
        text = re.sub(r"^## Benchmarks[ \t]*$", lambda m: f"{m.group(0)}\n\n{block}", text,
                      count=1, flags=re.MULTILINE)  # fmt: skip
    else:
        text = text.rstrip("\n") + f"\n\n## Benchmarks\n\n{block}\n"
    README.write_text(text, encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-readme", action="store_true", help="leave README.md as it is")
    args = parser.parse_args()
    started = time.perf_counter()
    runs: list[Run] = []
    for path in scripts():
        left = BUDGET - (time.perf_counter() - started)
        print(f"running {path.name} ...", file=sys.stderr, flush=True)
        runs.append(run(path, max(left, 10.0)))
    total = time.perf_counter() - started
    table = summary(runs)
    text = report(runs, table, total)
    RESULTS.write_text(text, encoding="utf-8")
    if not args.no_readme:
        update_readme(table, datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    print(text)
    return 0 if all(result.ran() for result in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
