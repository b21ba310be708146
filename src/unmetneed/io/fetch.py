"""Download published tables once, keep them in a local cache, verify checksums."""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from unmetneed.errors import ReadError
from unmetneed.io._common import is_url, optional_module

__all__ = ["default_cache_dir", "fetch_table"]

_HASH = re.compile(r"^(?:(md5|sha1|sha256|sha512|xxh\w+):)?([0-9a-fA-F]+)$")


def default_cache_dir() -> Path:
    """The folder :func:`fetch_table` uses when ``cache_dir`` is None.

    The operating system's user cache folder for ``unmetneed`` (via
    :func:`pooch.os_cache`), e.g. ``~/.cache/unmetneed/tables`` on Linux.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> from unmetneed.io import default_cache_dir
    >>> default_cache_dir().name
    'tables'
    """
    pooch = _import_pooch()
    return Path(pooch.os_cache("unmetneed")) / "tables"


def _import_pooch() -> Any:
    return optional_module("pooch", "fetching remote tables", "pooch")


@contextlib.contextmanager
def _quiet(pooch_logger: logging.Logger) -> Iterator[None]:
    # pooch logs every download to stderr through its own handler; a library
    # must not print, so its messages are held back during the call.
    previous = pooch_logger.level
    pooch_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        pooch_logger.setLevel(previous)


def fetch_table(
    url: str,
    *,
    known_hash: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Path:
    """Download a remote table once and return the path of the cached copy.

    The file is stored in ``cache_dir`` under a name derived from the URL, so
    later calls are served from the cache without touching the network (also
    when the server is unreachable). With ``known_hash`` the file's checksum is
    verified: a cached copy that does not match is downloaded again, and a
    download that does not match is refused.

    Parameters
    ----------
    url : str
        ``http://``, ``https://`` or ``ftp://`` address of the file.
    known_hash : str, optional
        Expected checksum, ``"sha256:<hex>"`` (or bare hex, taken as SHA-256;
        ``md5:``, ``sha1:``, ``sha512:`` also accepted). None skips
        verification; the SHA-256 is then recorded by the readers in
        ``DataFrame.attrs["sha256"]`` so it can be pinned later.
    cache_dir : str or os.PathLike, optional
        Cache folder; default :func:`default_cache_dir`.

    Returns
    -------
    pathlib.Path
        Local path of the cached file.

    Raises
    ------
    ReadError
        The address is not a URL, the download failed (and no cached copy
        exists), or the file does not match ``known_hash``.
    ImportError
        ``pooch`` is not installed.

    Notes
    -----
    Uses :func:`pooch.retrieve` (Uieda et al., 2020, JOSS 5(45), 1943), which
    downloads to a temporary file and moves it into the cache only after the
    checksum has been verified.

    Examples
    --------
    Downloading needs the network, so this example is not run:

    >>> from unmetneed.io import fetch_table, read_census_table
    >>> path = fetch_table(  # doctest: +SKIP
    ...     "https://example.org/census2021-ts007-utla.csv",
    ...     known_hash="sha256:<64 hex digits>")
    >>> table = read_census_table(path)  # doctest: +SKIP

    Anything that is not a URL is refused:

    >>> fetch_table("census2021-ts007-utla.csv")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    unmetneed.errors.ReadError: fetch_table needs an http(s):// or ftp:// address, ...
    """
    if not is_url(url):
        raise ReadError(
            f"fetch_table needs an http(s):// or ftp:// address, got {url!r}; "
            "pass local files straight to the readers"
        )
    if known_hash is not None:
        if not isinstance(known_hash, str) or _HASH.match(known_hash.strip()) is None:
            raise ReadError(
                f"known_hash={known_hash!r} is not a checksum; give 'sha256:<64 hex "
                "digits>' (or the bare hex digits), or None to skip verification"
            )
        known_hash = known_hash.strip()
    pooch = _import_pooch()
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    import requests  # a dependency of pooch

    with _quiet(pooch.get_logger()):
        try:
            local = pooch.retrieve(url, known_hash=known_hash, path=folder, progressbar=False)
        except ValueError as err:
            if "hash" in str(err).lower():
                raise ReadError(
                    f"{url} does not match its checksum ({err}). The file may have "
                    "changed upstream or been corrupted in transit; check the source "
                    "and update known_hash if the new file is right"
                ) from err
            raise ReadError(f"could not download {url}: {err}") from err
        except (requests.RequestException, OSError) as err:
            raise ReadError(
                f"could not download {url} and no cached copy exists in {str(folder)!r}: {err}"
            ) from err
    return Path(local)
