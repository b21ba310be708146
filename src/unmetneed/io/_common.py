"""Small helpers shared by the readers: option checks, hashing, paths."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unmetneed.errors import ReadError

__all__ = ["check_choice", "sha256_of", "as_path", "is_url", "preview"]

_URL_PREFIXES = ("http://", "https://", "ftp://")


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Refuse an option value that is not one of ``choices``, listing them."""
    if value not in choices:
        raise ReadError(
            f"{name}={value!r} is not a valid choice; use one of "
            f"{', '.join(repr(c) for c in choices)}"
        )


def sha256_of(path: Path) -> str:
    """SHA-256 of a file (hex), read in 1 MiB chunks; recorded as provenance."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_url(value: object) -> bool:
    """True when ``value`` is a string that names a remote file."""
    return isinstance(value, str) and value.lower().startswith(_URL_PREFIXES)


def as_path(path: str | os.PathLike[str]) -> Path:
    """A local path that must exist, or a :class:`ReadError` saying so."""
    if not isinstance(path, (str, os.PathLike)):
        raise ReadError(
            f"expected a file path (str or os.PathLike), got {type(path).__name__}"
        )
    resolved = Path(path)
    if not resolved.is_file():
        raise ReadError(f"file not found: {str(resolved)!r}")
    return resolved


def preview(values: Sequence[Any], limit: int = 10) -> str:
    """``[a, b, c, ...]`` with at most ``limit`` items and the number left out."""
    values = [v.item() if isinstance(v, np.generic) else v for v in values]
    shown = ", ".join(repr(v) for v in values[:limit])
    more = f", ... ({len(values) - limit} more)" if len(values) > limit else ""
    return f"[{shown}{more}]"
