"""Files that are complete or absent: write a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


def temp_path_for(target: Path) -> Path:
    """A fresh, hidden temporary path in ``target``'s directory (same filesystem, so rename is
    atomic)."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    return Path(name)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform can open a directory.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``target``, on any exception
    (KeyboardInterrupt included) it is removed and ``target`` is left untouched."""
    final = Path(target)
    tmp = temp_path_for(final)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(final.parent)


@contextlib.contextmanager
def atomic_write(
    target: str | os.PathLike[str], *, newline: str | None = None, encoding: str = "utf-8"
) -> Iterator[IO[str]]:
    """Open a text file that appears at ``target`` only once it is completely written."""
    with atomic_path(target) as tmp, open(tmp, "w", newline=newline, encoding=encoding) as f:
        yield f
