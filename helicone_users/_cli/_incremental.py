"""``export --since-last STATE``: each run exports the users active since the previous one.

The state file (JSON, versioned) records the job and the end of the window already exported.
A run's window is ``[previous end, end)`` where ``end`` is ``--until`` or now minus ``--lag``,
cut to the whole second. It asks for the users with ``last_active >= previous end`` (a request
inside the window), with their totals over every request before ``end``; requests at ``end``
itself fall in the next window, since the server's time bound is exclusive. So every user whose
totals changed appears in exactly one new partition, with totals as of its end; the latest row
per ``user_id`` across the partitions is the whole table.

The state is updated only once the partition file is complete. Before the export starts it
records the window as pending: a run that dies is redone over the same window by the next one,
or, if its file was already complete, that file is adopted.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Final

import attrs

from helicone_users._cli._atomic import read_json, write_json
from helicone_users._cli._common import UsageError
from helicone_users._iso import parse_iso8601

__all__ = ["State", "adopt_pending", "next_window", "partition_path", "utc_text"]

STATE_VERSION: Final = 1
EPOCH: Final = datetime(1970, 1, 1, tzinfo=timezone.utc)


def partition_path(out: Path, until: datetime) -> Path:
    """The partition for a window ending at ``until``: ``users.parquet`` becomes
    ``users-20260131T120000Z.parquet``."""
    stamp = until.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    return out.with_name(f"{out.stem}-{stamp}{out.suffix}")


def utc_text(moment: datetime) -> str:
    """``2026-01-31T12:00:00Z``."""
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _text(moment: datetime | None) -> str | None:
    return None if moment is None else utc_text(moment)


def _moment(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"expected an ISO 8601 time, got {value!r}")
    return parse_iso8601(value)


@attrs.frozen(kw_only=True)
class State:
    """What ``--since-last`` keeps between runs."""

    job: dict[str, Any]
    exported_until: datetime | None = None
    pending: datetime | None = None
    last_file: str | None = None
    last_users: int | None = None

    @classmethod
    def load(cls, path: Path, job: dict[str, Any]) -> State:
        """The state in ``path`` (a fresh one when absent); refused if it is another job's."""
        if not path.exists():
            return cls(job=job)
        state = cls._read(path)
        if state.job != job:
            raise UsageError(
                f"the state file {str(path)!r} belongs to another export (the filter, sort, "
                "format or --out differ); use a new state file for a new export"
            )
        return state

    @classmethod
    def _read(cls, path: Path) -> State:
        try:
            data = read_json(path, STATE_VERSION)
            return cls(
                job=data["job"],
                exported_until=_moment(data.get("exported_until")),
                pending=_moment(data.get("pending_until")),
                last_file=data.get("last_file"),
                last_users=data.get("last_users"),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"cannot read the state file {str(path)!r}: {exc}") from None

    def save(self, path: Path) -> None:
        """Replace the state file atomically."""
        write_json(path, {
            "version": STATE_VERSION,
            "job": self.job,
            "exported_until": _text(self.exported_until),
            "pending_until": _text(self.pending),
            "last_file": self.last_file,
            "last_users": self.last_users,
        })  # fmt: skip

    def begin(self, until: datetime) -> State:
        """The window up to ``until`` is being exported."""
        return attrs.evolve(self, pending=until)

    def done(self, until: datetime, file: Path, users: int | None) -> State:
        """The window up to ``until`` is in ``file``."""
        return attrs.evolve(
            self, exported_until=until, pending=None, last_file=file.name, last_users=users
        )


def adopt_pending(state: State, out: Path) -> State:
    """A pending window whose partition was completed (the run died before saving the state)
    counts as exported; one without its file is left to be redone."""
    if state.pending is None or not partition_path(out, state.pending).exists():
        return state
    return state.done(state.pending, partition_path(out, state.pending), None)


def next_window(
    state: State, *, until: datetime | None, lag: timedelta, now: datetime
) -> tuple[datetime | None, datetime] | None:
    """``(since, end)`` of this run (``since`` None on the first), or None when empty."""
    # A window a failed run started is redone as it was.
    end = state.pending or until or now - lag
    end = end.astimezone(timezone.utc).replace(microsecond=0)
    since = state.exported_until
    if since is not None and end <= since:
        return None
    return since, end
