"""Public testing tools: the local emulator of the Helicone and Weave endpoints.

Needs the ``emulator`` extra (DuckDB): ``pip install 'helicone-users[emulator]'``.
"""

from __future__ import annotations

from helicone_users.testing._dbfile import DatabaseFileError
from helicone_users.testing._emulator import Emulator
from helicone_users.testing._faults import FAULT_KINDS, FaultPlan
from helicone_users.testing._jsonl import DataLoadError, read_jsonl, write_jsonl
from helicone_users.testing._quirks import QUIRK_DESCRIPTIONS, QUIRKS
from helicone_users.testing._synthetic import MODEL_PRICES

__all__ = [
    "FAULT_KINDS",
    "MODEL_PRICES",
    "QUIRKS",
    "QUIRK_DESCRIPTIONS",
    "DataLoadError",
    "DatabaseFileError",
    "Emulator",
    "FaultPlan",
    "read_jsonl",
    "write_jsonl",
]

for _name in ("DataLoadError", "DatabaseFileError", "Emulator", "FaultPlan"):
    globals()[_name].__module__ = "helicone_users.testing"
del _name
