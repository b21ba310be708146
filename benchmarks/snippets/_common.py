"""Helpers shared by the Python snippets (numpy only; every venv has it)."""

from __future__ import annotations

import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


class NotAvailable(Exception):
    """The tool has no such feature (reported as 'not available')."""


def import_unmetneed():
    """Import the package from the project venv, or from the source tree."""
    try:
        import unmetneed as um
    except ImportError:
        sys.path.insert(0, str(SRC))
        import unmetneed as um
    return um
