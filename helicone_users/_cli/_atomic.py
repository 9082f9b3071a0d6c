"""Files that are complete or absent: write a temporary file beside the target, then rename."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


def temp_path_for(target: Path) -> Path:
    """A fresh, hidden temporary file in ``target``'s directory (same filesystem, so the rename
    is atomic), created with the usual permissions (0666 less the umask), not mkstemp's 0600."""
    for _ in range(100):
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return candidate
    raise FileExistsError(f"could not create a temporary file beside {target}")


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


def commit(tmp: Path, target: Path) -> None:
    """Make the completely written ``tmp`` durable and rename it over ``target``."""
    _fsync_file(tmp)
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def read_json(path: Path, version: int) -> dict[str, Any]:
    """The JSON object in ``path``, which must say ``"version": version``; ValueError if not."""
    data = json.loads(path.read_text(encoding="utf-8"))
    found = data.get("version") if isinstance(data, dict) else None
    if found != version:
        raise ValueError(f"expected a version {version} JSON object, found version {found!r}")
    return data  # type: ignore[no-any-return]  # a dict, checked above


def write_json(target: Path, data: object) -> None:
    """Replace ``target`` with ``data`` as JSON, atomically: a crash leaves the old or the new."""
    with atomic_write(target) as f:
        json.dump(data, f, indent=2)
        f.write("\n")


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
