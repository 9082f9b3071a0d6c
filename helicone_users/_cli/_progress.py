"""A progress bar on stderr: users and pages done, fitted to the terminal; plain lines otherwise."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import IO, Any

from helicone_users._cli._common import plural
from helicone_users._cli._output import is_tty, rich_available, terminal_width

# Plain (non-terminal) progress prints at most one line per this many seconds.
_PLAIN_INTERVAL = 2.0


class Progress:
    """Counts users and pages; drawn by rich on a terminal, throttled plain lines otherwise."""

    def __init__(
        self,
        description: str,
        *,
        stream: IO[str] | None = None,
        enabled: bool = True,
        unit: str = "users",
    ) -> None:
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.unit = unit
        self.items = 0
        self.pages = 0
        self.total: int | None = None
        self._rich: Any = None
        self._task: Any = None
        self._last_plain = 0.0

    def __enter__(self) -> Progress:
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
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._rich.add_task(
            self.description, total=self.total, pages=plural(0, "page")
        )
        self._rich.start()

    def set_total(self, total: int | None) -> None:
        """The number of items expected (None: unknown)."""
        self.total = total
        if self._rich is not None:
            self._rich.update(self._task, total=total)

    def advance(self, items: int, pages: int = 1) -> None:
        """Record ``items`` more items over ``pages`` more pages."""
        self.items += items
        self.pages += pages
        if self._rich is not None:
            self._rich.update(
                self._task, completed=self.items, pages=plural(self.pages, "page")
            )
        elif self.enabled:
            now = time.monotonic()
            if now - self._last_plain >= _PLAIN_INTERVAL:
                self._last_plain = now
                self._plain_line()

    def _plain_line(self) -> None:
        total = f"/{self.total}" if self.total is not None else ""
        self.stream.write(
            f"{self.description}: {self.items}{total} {self.unit}, {plural(self.pages, 'page')}\n"
        )
        self.stream.flush()
