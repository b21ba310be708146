"""``unmetneed run --scheduler ADDRESS`` and ``[compute] scheduler``: the run happens inside a
``distributed.Client`` of that scheduler (a real in-process LocalCluster here)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from unmetneed.cli import main

from .conftest import small_config


@pytest.fixture
def cluster(dd: Any) -> Iterator[Any]:
    from distributed import LocalCluster

    with LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None) as local:
        yield local


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The scheduler address of the active Dask client while the pipeline runs (None: no client)."""
    from unmetneed.cli import pipeline

    addresses: list[str | None] = []

    def record(inputs: Any, settings: Any, out: Path, **kwargs: Any) -> dict[str, Path]:
        from distributed import default_client

        try:
            addresses.append(default_client().scheduler.address)
        except ValueError:
            addresses.append(None)
        out.mkdir(parents=True, exist_ok=True)
        (out / "provenance.json").write_text("{}", encoding="utf-8")
        (out / "summary.txt").write_text("England: recorded\n", encoding="utf-8")
        return {name: out / name for name in ("provenance.json", "summary.txt")}

    monkeypatch.setattr(pipeline, "run_pipeline", record)
    return addresses


def test_run_inside_a_client_of_the_scheduler(
    cluster: Any, seen: list[str | None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = small_config(tmp_path)
    assert main(["run", str(config), "--quiet", "--scheduler", cluster.scheduler_address]) == 0
    assert main(["run", str(config), "--quiet"]) == 0
    assert seen == [cluster.scheduler_address, None]
    assert "England: recorded" in capsys.readouterr().out


def test_the_config_names_the_scheduler(cluster: Any, seen: list[str | None], tmp_path: Path) -> None:
    config = small_config(tmp_path)
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('# scheduler = "tcp://127.0.0.1:8786"', f'scheduler = "{cluster.scheduler_address}"'),
        encoding="utf-8",
    )
    assert main(["run", str(config), "--quiet"]) == 0
    assert seen == [cluster.scheduler_address]


def test_without_dask_the_error_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, seen: list[str | None], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main(["run", str(small_config(tmp_path)), "--scheduler", "tcp://127.0.0.1:8786"]) == 2
    assert "install the dask extra" in capsys.readouterr().err
    assert seen == []
