"""A progress bar on stderr: users and pages done, rate and ETA, fitted to the terminal; plain lines
otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO, Any

from helicone_users._cli._common import plural
from helicone_users._cli._output import is_tty, rich_available, terminal_width

# Plain (non-terminal) progress prints at most one line per this many seconds.
_PLAIN_INTERVAL = 2.0


def format_eta(seconds: float) -> str:
    """``m:ss``, or ``h:mm:ss`` from an hour on."""
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """Counts users and pages and derives the rate and the time left; drawn by rich on a
    terminal, throttled plain lines otherwise."""

    def __init__(
        self,
        description: str,
        *,
        stream: IO[str] | None = None,
        enabled: bool = True,
        unit: str = "users",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.unit = unit
        self.items = 0
        self.pages = 0
        self.total: int | None = None
        self._clock = clock
        self._started = clock()
        self._resumed_items = 0
        self._rich: Any = None
        self._task: Any = None
        self._last_plain = -_PLAIN_INTERVAL

    def __enter__(self) -> Progress:
        self._started = self._clock()
        if self.enabled and is_tty(self.stream) and rich_available():
            self._start_rich()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None

    def _start_rich(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as RichProgress

        console = Console(file=self.stream, width=terminal_width(self.stream))
        self._rich = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(self.unit),
            TextColumn("{task.fields[pages]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[eta]}"),
            console=console,
            transient=False,
        )
        self._task = self._rich.add_task(
            self.description, total=self.total, completed=self.items,
            pages=plural(self.pages, "page"), rate="", eta="",
        )  # fmt: skip
        self._rich.start()

    def set_total(self, total: int | None) -> None:
        """The number of items expected (None: unknown)."""
        self.total = total
        if self._rich is not None:
            self._rich.update(self._task, total=total)

    def resume_from(self, items: int, pages: int) -> None:
        """Start the counts at work done by an earlier run (not counted in the rate)."""
        self.items, self.pages = items, pages
        self._resumed_items = items

    def rate(self) -> float | None:
        """Items per second in this run so far (None before any)."""
        elapsed = self._clock() - self._started
        done = self.items - self._resumed_items
        return done / elapsed if elapsed > 0 and done > 0 else None

    def eta(self) -> float | None:
        """Seconds left at the current rate (None while the total or the rate is unknown)."""
        rate = self.rate()
        if rate is None or self.total is None:
            return None
        return max(self.total - self.items, 0) / rate

    def advance(self, items: int, pages: int = 1) -> None:
        """Record ``items`` more items over ``pages`` more pages."""
        self.items += items
        self.pages += pages
        if self._rich is not None:
            rate, eta = self._rate_text(), self._eta_text()
            self._rich.update(
                self._task, completed=self.items, pages=plural(self.pages, "page"), rate=rate,
                eta=eta,
            )
        elif self.enabled:
            now = self._clock()
            if now - self._last_plain >= _PLAIN_INTERVAL:
                self._last_plain = now
                self._plain_line()

    def _rate_text(self) -> str:
        rate = self.rate()
        return "" if rate is None else f"{rate:,.0f} {self.unit}/s"

    def _eta_text(self) -> str:
        eta = self.eta()
        return "" if eta is None else f"ETA {format_eta(eta)}"

    def _plain_line(self) -> None:
        total = f"/{self.total}" if self.total is not None else ""
        parts = [f"{self.description}: {self.items}{total} {self.unit}"]
        parts += [plural(self.pages, "page"), self._rate_text(), self._eta_text()]
        self.stream.write(", ".join(part for part in parts if part) + "\n")
        self.stream.flush()
