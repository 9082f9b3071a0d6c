"""``python -m helicone_users`` runs the command-line interface."""

from __future__ import annotations

import sys

from helicone_users._cli import console_main

if __name__ == "__main__":
    sys.exit(console_main())
