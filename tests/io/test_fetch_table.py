"""fetch_table and URL reading against a local HTTP server (never the internet)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from unmetneed.errors import ReadError
from unmetneed.io import fetch_table, read_census_table

TABLE = (
    '"date","geography","geography code","Sex: All persons; measures: Value",'
    '"Sex: Female; measures: Value","Sex: Male; measures: Value"\n'
    '"2021","Area A","E06000001",100,52,48\n'
    '"2021","Area B","E06000002",70,40,30\n'
)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass  # keep test output clean


class _Server:
    """http.server on 127.0.0.1, an OS-chosen port, serving one folder."""

    def __init__(self, folder: Path):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.running = True

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def stop(self) -> None:
        if self.running:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread.join()
            self.running = False


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Server]:
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    (served / "census2021-ts008-ltla.csv").write_text(TABLE, encoding="utf-8")
    running = _Server(served)
    yield running
    running.stop()


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_download_is_cached_and_served_when_the_server_is_gone(server, tmp_path):
    cache = tmp_path / "cache"
    url = server.url("census2021-ts008-ltla.csv")
    first = fetch_table(url, cache_dir=cache)
    assert first.parent == cache
    assert first.read_text(encoding="utf-8") == TABLE
    server.stop()
    again = fetch_table(url, cache_dir=cache)
    assert again == first
    pinned = fetch_table(url, cache_dir=cache, known_hash=f"sha256:{_sha256(TABLE)}")
    assert pinned == first  # a matching cached copy needs no network either


def test_matching_checksum_is_accepted(server, tmp_path):
    url = server.url("census2021-ts008-ltla.csv")
    path = fetch_table(url, cache_dir=tmp_path / "cache", known_hash=_sha256(TABLE))
    assert path.read_text(encoding="utf-8") == TABLE


def test_checksum_mismatch_is_a_clear_error(server, tmp_path):
    url = server.url("census2021-ts008-ltla.csv")
    wrong = "sha256:" + "0" * 64
    with pytest.raises(ReadError, match=r"does not match its checksum.*update known_hash"):
        fetch_table(url, cache_dir=tmp_path / "cache", known_hash=wrong)
    assert not any((tmp_path / "cache").glob("*ts008*"))  # nothing bad left in the cache


def test_cached_copy_that_no_longer_matches_is_refused(server, tmp_path):
    cache = tmp_path / "cache"
    url = server.url("census2021-ts008-ltla.csv")
    fetch_table(url, cache_dir=cache)
    with pytest.raises(ReadError, match="checksum"):
        fetch_table(url, cache_dir=cache, known_hash="1" * 64)


def test_unreachable_server_without_cache(server, tmp_path):
    url = server.url("census2021-ts008-ltla.csv")
    server.stop()
    with pytest.raises(ReadError, match="could not download.*no cached copy"):
        fetch_table(url, cache_dir=tmp_path / "cache")


def test_missing_remote_file(server, tmp_path):
    with pytest.raises(ReadError, match="404"):
        fetch_table(server.url("absent.csv"), cache_dir=tmp_path / "cache")


def test_bad_arguments(tmp_path):
    with pytest.raises(ReadError, match="http"):
        fetch_table(str(tmp_path / "local.csv"))
    with pytest.raises(ReadError, match="not a checksum"):
        fetch_table("http://127.0.0.1:9/x.csv", known_hash="sha256:xyz")


def test_read_census_table_from_a_url(server, tmp_path):
    url = server.url("census2021-ts008-ltla.csv")
    table = read_census_table(url, cache_dir=tmp_path / "cache", known_hash=_sha256(TABLE))
    assert table["sex"].cat.categories.tolist() == ["Female", "Male"]
    assert table["count"].tolist() == [52, 48, 40, 30]
    assert table.attrs["source"] == url
    assert table.attrs["table_id"] == "ts008"
    assert table.attrs["geography"] == "Lower tier local authorities"
    assert table.attrs["sha256"] == _sha256(TABLE)
