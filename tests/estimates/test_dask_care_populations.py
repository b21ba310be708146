"""CareModel.populations_by on a Dask-backed frame: the in-memory results, streamed.

Partitioned Parquet files (one area split across two) on a real LocalCluster;
the streamed tables must equal the in-memory ones to 1e-10 for every part,
with unseen areas, derived grouping columns and administrative benchmarking.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import FrameError, UnmetneedWarning

from .conftest import FORMULAS, simulate_survey

# dask's Parquet reader calls reset_index(inplace=True), which pandas >= 3.1 deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.reset_index:DeprecationWarning"
)
DRAWS = 40
GROUPINGS = [("area_code",), ("age_band", "sex"), ()]


@pytest.fixture(scope="module")
def model(survey: pd.DataFrame, frame: um.PopulationFrame) -> um.CareModel:
    with warnings.catch_warnings():  # the small survey gives singular fits (warned)
        warnings.simplefilter("ignore", UnmetneedWarning)
        return um.fit_care_model(frame, survey, formulas=FORMULAS, draws=DRAWS, seed=3)


@pytest.fixture(scope="module")
def cells(frame: um.PopulationFrame) -> pd.DataFrame:
    """The frame plus an area no respondent lives in."""
    new = frame.cells[frame.cells["area_code"] == "E06000001"].assign(area_code="E06000099")
    return pd.concat([frame.cells, new], ignore_index=True)


def write_parquet(cells: pd.DataFrame, directory: Path, column: str = "area_code") -> Path:
    """One file per two areas; the first area split across two files."""
    directory.mkdir()
    areas = cells[column].unique()
    parts = [cells[cells[column].isin(areas[i : i + 2])] for i in range(0, len(areas), 2)]
    parts = [parts[0].iloc[:2], parts[0].iloc[2:], *parts[1:]]
    for i, part in enumerate(parts):
        part.to_parquet(directory / f"part-{i:03d}.parquet", index=False)
    return directory


def populations(model: um.CareModel, frame: Any, **kwargs: Any) -> dict[tuple[str, ...], Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        return model.populations_by(frame, groupings=GROUPINGS, **kwargs)


def assert_same(got: dict[tuple[str, ...], Any], want: dict[tuple[str, ...], Any]) -> None:
    assert list(got) == list(want)
    for key, expected in want.items():
        g, w = got[key].draws, expected.draws
        assert sorted(g.data_vars) == sorted(w.data_vars)
        for name in w.data_vars:
            assert g[name].dims == w[name].dims
            for coord in w[name].coords:
                np.testing.assert_array_equal(g[coord].values, w[coord].values)
            np.testing.assert_allclose(g[name].values, w[name].values, rtol=1e-10, atol=1e-9)
        for attr in ("unseen_levels", "admin_far_from_posterior", "admin_covers_frame", "admin_areas"):
            assert got[key].attrs[attr] == expected.attrs[attr]


@pytest.mark.parametrize("admin_cv", [None, 0.0, 0.1], ids=["no admin", "exact admin", "admin cv 0.1"])
def test_streamed_care_populations_equal_the_in_memory_ones(
    client: Any, dd: Any, model: um.CareModel, cells: pd.DataFrame, tmp_path: Path, admin_cv: float | None
) -> None:
    kwargs: dict[str, Any] = {}
    if admin_cv is not None:
        by_area = populations(model, cells)[("area_code",)].draws["council_funded"].mean("draw")
        kwargs = {"admin": by_area.to_series().iloc[:4] * 1.1, "admin_cv": admin_cv}
    want = populations(model, cells, **kwargs)
    got = populations(
        model, um.PopulationFrame(dd.read_parquet(write_parquet(cells, tmp_path / "f"))), **kwargs
    )
    assert_same(got, want)
    assert want[("area_code",)].attrs["unseen_levels"] == {name: {"area_code": 1} for name in FORMULAS}


def test_derived_grouping_columns_are_streamed(client: Any, dd: Any, tmp_path: Path) -> None:
    groups = [
        "White: Roma",
        "Asian, Asian British or Asian Welsh: Indian",
        "White: English, Welsh, Scottish, Northern Irish or British",
    ]
    survey = simulate_survey(1200, seed=3)
    survey["ethnic_group"] = [groups[i % 3] for i in range(len(survey))]
    survey["disability"] = [
        "Not disabled" if i % 4 else "Disabled: limited a lot" for i in range(len(survey))
    ]
    cells = (
        survey.groupby(["area_code", "age_band", "sex", "ethnic_group", "disability"])
        .size()
        .rename("count")
        .mul(500.0)
        .reset_index()
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UnmetneedWarning)
        model = um.fit_care_model(cells, survey, draws=30, seed=1)
        want = model.populations_by(cells, groupings=[("ethnic_group_5",), ("age_band_disability", "sex")])
        frame = um.PopulationFrame(dd.read_parquet(write_parquet(cells, tmp_path / "g")))
        got = model.populations_by(frame, groupings=[("ethnic_group_5",), ("age_band_disability", "sex")])
    assert "(1|age_band_disability)" in model.fits["need"].model.formula.text
    assert_same(got, want)


def test_bad_partitions_and_groupings_are_refused(
    client: Any, dd: Any, model: um.CareModel, cells: pd.DataFrame, tmp_path: Path
) -> None:
    frame = um.PopulationFrame(dd.read_parquet(write_parquet(cells, tmp_path / "ok")))
    with pytest.raises(um.errors.MissingColumnError, match="by column 'region'"):
        model.populations_by(frame, groupings=[("region",)])
    with pytest.raises(FrameError, match="admin counts for areas not in the frame"):
        model.populations_by(frame, groupings=[("area_code",)], admin=pd.Series({"E99999999": 5.0}))
    bad = cells.assign(count=np.where(cells.index == 30, -5.0, cells["count"]))
    frame = um.PopulationFrame(dd.read_parquet(write_parquet(bad, tmp_path / "bad")))
    with pytest.raises(FrameError, match=r"negative counts .*\(partition \d+ of 6\)"):
        populations(model, frame)
