"""``export --resume``: an export that keeps its progress when it stops and carries on from it.

While it runs, the rows go to ``.<name>.partial`` beside the target and a checkpoint,
``.<name>.resume.json``, records the job, its pinned time window, the next offset and how many
bytes of the partial file the completed pages fill (for Parquet, which cannot be appended to,
the partial file is an Arrow IPC stream, converted once complete). A run that fails leaves
both; the same command run again cuts the partial file back to the checkpoint and fetches from
the next page.
Users come by ``user_id`` (unique) within the pinned window, so an offset names the same users
on every run, and the finished file equals a one-shot export.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import attrs

from helicone_users._cli._atomic import atomic_path, commit, read_json, write_json
from helicone_users._cli._common import UsageError
from helicone_users._iso import parse_iso8601

__all__ = ["Checkpoint", "Resumable"]

CHECKPOINT_VERSION: Final = 1
# A checkpoint is written at most this often (and always when the export stops).
CHECKPOINT_INTERVAL: Final = 1.0

Window = tuple[datetime, datetime]


def partial_path(target: Path) -> Path:
    """Where a resumable export writes until it is complete."""
    return target.with_name(f".{target.name}.partial")


def checkpoint_path(target: Path) -> Path:
    """Where a resumable export records its progress."""
    return target.with_name(f".{target.name}.resume.json")


@attrs.frozen(kw_only=True)
class Checkpoint:
    """How far an export got: the next offset and the partial file's committed bytes."""

    job: dict[str, Any]
    window: Window
    offset: int = 0
    bytes: int = 0
    users: int = 0
    pages: int = 0

    def to_json(self) -> dict[str, Any]:
        """The checkpoint file's content."""
        return {
            "version": CHECKPOINT_VERSION,
            "job": self.job,
            "window": [moment.isoformat() for moment in self.window],
            "offset": self.offset,
            "bytes": self.bytes,
            "users": self.users,
            "pages": self.pages,
        }

    @classmethod
    def read(cls, path: Path) -> Checkpoint:
        """The checkpoint in ``path``; a usage error naming the file if it cannot be used."""
        try:
            data = read_json(path, CHECKPOINT_VERSION)
            start, end = (parse_iso8601(text) for text in data["window"])
            return cls(job=data["job"], window=(start, end), offset=int(data["offset"]),
                       bytes=int(data["bytes"]), users=int(data["users"]),
                       pages=int(data["pages"]))  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(
                f"cannot read the checkpoint {str(path)!r} ({exc}); delete it to start over"
            ) from None


class Resumable:
    """The partial file and checkpoint of one target: ``start()`` picks up where an earlier
    run stopped, ``page_done()`` records progress, ``finish()`` renames the file into place."""

    def __init__(self, target: Path, job: dict[str, Any], window: Window) -> None:
        self.target = target
        self.partial = partial_path(target)
        self.checkpoint_file = checkpoint_path(target)
        self.state = Checkpoint(job=job, window=window)
        self._saved_at = 0.0

    def start(self) -> Checkpoint:
        """The state to continue from (a fresh one when there is nothing to resume); the
        partial file is cut back to the bytes of the completed pages."""
        earlier = self._earlier()
        if earlier is None:
            self.partial.write_bytes(b"")
        else:
            with open(self.partial, "r+b") as f:
                f.truncate(earlier.bytes)
            self.state = earlier
        self._save()
        return self.state

    def _earlier(self) -> Checkpoint | None:
        if not self.checkpoint_file.exists():
            return None
        earlier = Checkpoint.read(self.checkpoint_file)
        if earlier.job != self.state.job:
            raise UsageError(
                f"{str(self.checkpoint_file)!r} belongs to another export of "
                f"{self.target.name} (the filter, sort, format, page size or time options "
                "differ); run the same command as before, or delete it to start over"
            )
        has_data = self.partial.exists() and self.partial.stat().st_size >= earlier.bytes
        return earlier if has_data else None

    def page_done(self, next_offset: int, size: int, users: int, pages: int) -> None:
        """Record a completed page; the checkpoint is written at most once a second."""
        self.state = attrs.evolve(
            self.state, offset=next_offset, bytes=size, users=users, pages=pages
        )
        if time.monotonic() - self._saved_at >= CHECKPOINT_INTERVAL:
            self._save()

    def stopped(self) -> None:
        """Record the last completed page when the export stops early."""
        self._save()

    def _save(self) -> None:
        if self.partial.exists():
            with open(self.partial, "rb") as f:
                os.fsync(f.fileno())  # the rows before the checkpoint that counts them
        write_json(self.checkpoint_file, self.state.to_json())
        self._saved_at = time.monotonic()

    def finish(self, convert: Callable[[Path, Path], None] | None = None) -> None:
        """Rename the complete file into place (or ``convert(partial, temporary)`` and rename
        that) and drop the partial file and the checkpoint."""
        if convert is None:
            commit(self.partial, self.target)
        else:
            with atomic_path(self.target) as tmp:
                convert(self.partial, tmp)
            self.partial.unlink()
        with contextlib.suppress(FileNotFoundError):
            self.checkpoint_file.unlink()
