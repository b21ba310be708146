"""Provenance helpers shared by every layer: the package version and SHA-256 checksums.

Results that reach a published table record the package version and their
inputs' checksums; these are the one place both are computed.
"""

from __future__ import annotations

import functools
import hashlib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

__all__ = ["package_version", "sha256_bytes", "sha256_file"]

_CHUNK = 1 << 20  # read files 1 MiB at a time: checksums of large inputs stay in bounded memory


@functools.cache
def package_version() -> str:
    """The installed ``unmetneed`` version (``"0+unknown"`` when run from a bare source tree)."""
    try:
        return version("unmetneed")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file (hex), read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """SHA-256 of bytes already in memory (hex)."""
    return hashlib.sha256(data).hexdigest()
