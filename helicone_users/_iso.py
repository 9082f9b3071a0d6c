"""ISO-8601 date-times read the same way on every supported Python.

``datetime.fromisoformat`` on Python 3.10 takes only fractions of 3 or 6 digits and no ``Z``;
servers, files and people write more than that, so every reader in the package goes through here.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

__all__ = ["parse_iso8601"]

_ISO: Final = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](?P<time>\d{2}:\d{2}(?::\d{2})?)(?:[.,](?P<fraction>\d+))?)?"
    r"(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


def parse_iso8601(text: str) -> datetime:
    """The date-time ``text`` names: aware when it carries ``Z`` or an offset, else naive.

    Accepts a ``T``, ``t`` or space separator, seconds left out, any number of fraction digits
    (kept to microseconds) and offsets written ``+hh:mm``, ``+hhmm`` or ``+hh``. Raises
    ``ValueError`` for anything else, including dates that do not exist.
    """
    match = _ISO.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 date-time: {text!r}")
    iso = match["date"]
    time, fraction, zone = match["time"], match["fraction"], match["zone"]
    if time is not None or zone is not None:
        time = time or "00:00"
        iso += "T" + (time + ":00" if len(time) == 5 else time)
        if fraction:
            iso += "." + (fraction + "00000")[:6]
    if zone in ("Z", "z"):
        iso += "+00:00"
    elif zone is not None:
        digits = zone[1:].replace(":", "")
        iso += f"{zone[0]}{digits[:2]}:{digits[2:] or '00'}"
    return datetime.fromisoformat(iso)
