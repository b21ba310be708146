"""Poststratification of a Dask-backed frame: partitioned Parquet files on a real LocalCluster.

The streamed results must be the in-memory ones (to 1e-10) for the same seed,
whatever the partitioning, including levels absent from the fitting data.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import FrameError, MissingColumnError
from unmetneed.mrp import NewLevelWarning

poststratify_module = importlib.import_module("unmetneed.mrp.poststratify")
# dask's Parquet reader calls reset_index(inplace=True), which pandas >= 3.1 deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.reset_index:DeprecationWarning"
)
DRAWS = 60


@pytest.fixture(scope="module")
def fit() -> um.MultilevelFit:
    rng = np.random.default_rng(11)
    n = 2500
    area, age, sex = rng.integers(0, 20, n), rng.integers(0, 5, n), rng.integers(0, 2, n)
    eta = -1.0 + 0.3 * sex + rng.normal(0, 0.5, 20)[area] + np.linspace(-1, 1, 5)[age]
    survey = pd.DataFrame(
        {
            "y": (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int),
            "area": [f"A{a:02d}" for a in area],
            "age": [f"G{a}" for a in age],
            "sex": np.where(sex == 1, "Male", "Female"),
        }
    )
    return um.MultilevelModel("y ~ sex + (1|area) + (1|age)", data=survey).fit()


@pytest.fixture(scope="module")
def cells() -> pd.DataFrame:
    """Every area x age x sex x tenure cell, with two areas and one age group unseen in fitting.

    ``tenure`` is in no model: the in-memory path sums over it first, the streamed one does not.
    Its categories are not in sorted order, so grouping by it checks the category order.
    """
    areas = [f"A{a:02d}" for a in range(20)] + ["NEW1", "NEW2"]
    ages = [f"G{a}" for a in range(5)] + ["G9"]
    index = pd.MultiIndex.from_product(
        [areas, ages, ["Female", "Male"], ["rent", "own"]], names=["area", "age", "sex", "tenure"]
    )
    frame = index.to_frame(index=False)
    frame["tenure"] = pd.Categorical(frame["tenure"], categories=["rent", "own"])
    frame["count"] = np.random.default_rng(4).integers(0, 400, len(frame)).astype(np.int64)
    return frame


def write_parquet(cells: pd.DataFrame, directory: Path, parts: list[pd.DataFrame]) -> Path:
    directory.mkdir()
    for i, part in enumerate(parts):
        part.to_parquet(directory / f"part-{i:03d}.parquet", index=False)
    assert sum(len(p) for p in parts) == len(cells)
    return directory


@pytest.fixture(scope="module")
def parquet_dir(cells: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file per few areas, and area A03 split across two files."""
    areas = cells["area"].unique()
    parts = [cells[cells["area"].isin(areas[i : i + 3])] for i in range(0, len(areas), 3)]
    first = parts[1]  # A03..A05
    a03 = first[first["area"] == "A03"]
    parts[1:2] = [pd.concat([first[first["area"] != "A03"], a03.iloc[:10]]), a03.iloc[10:]]
    return write_parquet(cells, tmp_path_factory.mktemp("frames") / "split", parts)


def assert_same(streamed: um.DrawEstimates, in_memory: um.DrawEstimates) -> None:
    for quantity in ["count", "prevalence", "population"]:
        got, want = streamed.draws[quantity], in_memory.draws[quantity]
        assert got.dims == want.dims
        for coord in want.coords:
            np.testing.assert_array_equal(got[coord].values, want[coord].values)
        np.testing.assert_allclose(got.values, want.values, rtol=1e-10, atol=0)
    assert streamed.attrs["unseen_levels"] == in_memory.attrs["unseen_levels"]


BYS = ["area", ["area", "sex"], None, "tenure", ["tenure", "age"]]


@pytest.mark.parametrize("by", BYS, ids=str)
def test_streamed_results_equal_the_in_memory_ones(
    client: Any, dd: Any, fit: um.MultilevelFit, cells: pd.DataFrame, parquet_dir: Path, by: Any
) -> None:
    with pytest.warns(NewLevelWarning, match="'area': 2, 'age': 1"):
        want = fit.poststratify(um.PopulationFrame(cells), by=by, draws=DRAWS, seed=7)
    frame = um.PopulationFrame(dd.read_parquet(parquet_dir))
    assert frame.is_dask and frame.dask.npartitions == 9
    with pytest.warns(NewLevelWarning, match="'area': 2, 'age': 1"):
        got = fit.poststratify(frame, by=by, draws=DRAWS, seed=7)
    assert_same(got, want)
    assert got.attrs["unseen_levels"] == {"area": 2, "age": 1}


def test_a_group_split_across_partitions_is_added_up(
    client: Any, dd: Any, fit: um.MultilevelFit, cells: pd.DataFrame, parquet_dir: Path
) -> None:
    frame = dd.read_parquet(parquet_dir)
    holding = [i for i, part in enumerate(frame.to_delayed()) if (part.compute()["area"] == "A03").any()]
    assert len(holding) == 2
    with pytest.warns(NewLevelWarning):
        got = fit.poststratify(um.PopulationFrame(frame), by="area", draws=DRAWS, seed=2)
    population = got.draws["population"].sel(area="A03").values
    assert np.all(population == cells.loc[cells["area"] == "A03", "count"].sum())


def test_many_small_partitions_and_chunks_never_hold_all_cells_x_draws(
    client: Any,
    dd: Any,
    fit: um.MultilevelFit,
    cells: pd.DataFrame,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Partitions of 25 cells evaluated 3 cells at a time (the worker runs in this process)."""
    with pytest.warns(NewLevelWarning):
        want = fit.poststratify(um.PopulationFrame(cells), by=["area", "sex"], draws=DRAWS, seed=5)
    shuffled = cells.sample(frac=1.0, random_state=3)  # every partition holds parts of many groups
    parts = [shuffled.iloc[i : i + 25] for i in range(0, len(shuffled), 25)]
    directory = write_parquet(cells, tmp_path / "small", parts)
    streaming = importlib.import_module("unmetneed.mrp.streaming")
    evaluated: list[tuple[int, int]] = []  # (cells in the partition, cells in a chunk)
    evaluator = streaming.probability_evaluator

    def recording(X: np.ndarray, beta: np.ndarray, effects: Any) -> Any:
        chunk = evaluator(X, beta, effects)

        def record(start: int, stop: int) -> np.ndarray:
            evaluated.append((X.shape[0], stop - start))
            return chunk(start, stop)

        return record

    monkeypatch.setattr(streaming, "probability_evaluator", recording)
    monkeypatch.setattr(poststratify_module, "CHUNK_ELEMENTS", 3 * DRAWS)
    with pytest.warns(NewLevelWarning):
        got = fit.poststratify(
            um.PopulationFrame(dd.read_parquet(directory)), by=["area", "sex"], draws=DRAWS, seed=5
        )
    assert_same(got, want)
    assert len(parts) == 22
    assert max(part for part, _ in evaluated) == 25
    assert max(chunk for _, chunk in evaluated) == 3
    assert sum(chunk for _, chunk in evaluated) == len(cells)


def test_default_scheduler_without_a_client(
    dd: Any, fit: um.MultilevelFit, cells: pd.DataFrame, parquet_dir: Path
) -> None:
    from distributed import default_client

    with pytest.raises(ValueError, match="No clients found"):
        default_client()
    with pytest.warns(NewLevelWarning):
        want = fit.poststratify(um.PopulationFrame(cells), by="age", draws=DRAWS, seed=1)
    frame = um.PopulationFrame(dd.read_parquet(parquet_dir))
    with pytest.warns(NewLevelWarning):
        got = fit.poststratify(frame, by="age", draws=DRAWS, seed=1)
    assert_same(got, want)


def test_frame_totals_of_a_dask_frame(client: Any, dd: Any, cells: pd.DataFrame, parquet_dir: Path) -> None:
    frame = um.PopulationFrame(dd.read_parquet(parquet_dir))
    in_memory = um.PopulationFrame(cells)
    assert frame.total == in_memory.total
    assert len(frame) == len(in_memory)
    assert frame.variables == in_memory.variables
    for by in ["area", ["tenure", "age"]]:
        # the index is dask's "string" dtype where pandas reads "str": compare the values
        pd.testing.assert_series_equal(frame.totals(by), in_memory.totals(by), check_index_type=False)
    assert "Dask-backed" in repr(frame) and "9 partitions" in repr(frame)
    with pytest.raises(FrameError, match=r"Dask-backed \(9 partitions\).*frame\.dask\.compute\(\)"):
        frame.cells  # noqa: B018
    with pytest.raises(FrameError, match="Dask-backed"):
        frame.counts  # noqa: B018


def test_cheap_checks_run_at_construction(dd: Any, cells: pd.DataFrame) -> None:
    with pytest.raises(MissingColumnError, match="count column 'people'"):
        um.PopulationFrame(dd.from_pandas(cells, npartitions=2), count="people")
    text = cells.assign(count=cells["count"].astype(str))
    with pytest.raises(FrameError, match="count column 'count' has dtype .*not a number"):
        um.PopulationFrame(dd.from_pandas(text, npartitions=2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda part: part.assign(count=np.where(part.index == 4, -1, part["count"])), "negative counts"),
        (
            lambda part: part.assign(count=np.where(part.index == 4, np.nan, part["count"])),
            "missing or non-numeric",
        ),
        (lambda part: pd.concat([part, part.iloc[[2]]], ignore_index=True), "repeat a combination"),
    ],
    ids=["negative", "missing", "repeated"],
)
def test_partition_checks_raise_the_frame_errors(
    client: Any,
    dd: Any,
    fit: um.MultilevelFit,
    cells: pd.DataFrame,
    tmp_path: Path,
    change: Any,
    message: str,
) -> None:
    parts = [cells.iloc[i : i + 100].reset_index(drop=True) for i in range(0, len(cells), 100)]
    parts[2] = change(parts[2])
    directory = tmp_path / "bad"
    directory.mkdir()
    for i, part in enumerate(parts):
        part.to_parquet(directory / f"part-{i:03d}.parquet", index=False)
    frame = um.PopulationFrame(dd.read_parquet(directory))
    with pytest.raises(FrameError, match=f"{message}.*\\(partition 2 of {len(parts)}\\)"):
        fit.poststratify(frame, by="area", draws=DRAWS, seed=1)


def test_by_is_checked_before_any_work(dd: Any, fit: um.MultilevelFit, cells: pd.DataFrame) -> None:
    frame = um.PopulationFrame(dd.from_pandas(cells, npartitions=2))
    with pytest.raises(MissingColumnError, match="by column 'region'"):
        fit.poststratify(frame, by="region", draws=DRAWS, seed=1)
    with pytest.raises(FrameError, match="names the frame's count column"):
        fit.poststratify(frame, by="count", draws=DRAWS, seed=1)
    with pytest.raises(MissingColumnError, match="model column 'sex'"):
        fit.poststratify(
            um.PopulationFrame(dd.from_pandas(cells.drop(columns="sex"), npartitions=2)), by="area"
        )


def test_the_package_imports_without_dask(run_without_dask: Callable[[str], None]) -> None:
    run_without_dask(
        "import pandas as pd, unmetneed as um\n"
        "frame = um.PopulationFrame(pd.DataFrame({'area_code': ['A'], 'count': [3]}))\n"
        "assert not frame.is_dask"
    )


def test_a_dask_dataframe_is_taken_as_a_frame(
    client: Any, dd: Any, fit: um.MultilevelFit, cells: pd.DataFrame
) -> None:
    with pytest.warns(NewLevelWarning):
        want = fit.poststratify(cells, by="sex", draws=DRAWS, seed=4)
    with pytest.warns(NewLevelWarning):
        got = fit.poststratify(dd.from_pandas(cells, npartitions=3), by="sex", draws=DRAWS, seed=4)
    assert_same(got, want)


def test_nullable_string_columns_are_read_as_their_values(fit: um.MultilevelFit, cells: pd.DataFrame) -> None:
    """Parquet readers (Dask's among them) give ``string`` columns (missing values pd.NA)."""
    nullable = cells.astype({"area": "string", "age": "string", "sex": "string"})
    with pytest.warns(NewLevelWarning):
        want = fit.poststratify(cells, by="area", draws=DRAWS, seed=6)
    with pytest.warns(NewLevelWarning):
        got = fit.poststratify(nullable, by="area", draws=DRAWS, seed=6)
    assert_same(got, want)


def test_totals_of_a_dask_frame_check_every_partition(dd: Any, cells: pd.DataFrame) -> None:
    """Missing or negative counts fail as in memory (they were summed silently before)."""
    bad = cells.assign(count=cells["count"].astype(float))
    bad.loc[5, "count"] = -2.0
    frame = um.PopulationFrame(dd.from_pandas(bad, npartitions=3))
    with pytest.raises(FrameError, match=r"negative counts.*\(partition 0 of 3\)"):
        frame.totals("area")
    with pytest.raises(FrameError, match="negative counts"):
        frame.total  # noqa: B018


def test_cells_repeated_across_partitions_are_refused(
    dd: Any, cells: pd.DataFrame, fit: um.MultilevelFit
) -> None:
    """The same cell in two partitions (two Parquet extracts) fails as in memory; it was summed."""
    repeated = pd.concat([cells, cells.iloc[[0]]], ignore_index=True)  # the copy lands in the last partition
    with pytest.raises(FrameError, match="repeat a combination"):
        um.PopulationFrame(repeated)
    frame = um.PopulationFrame(dd.from_pandas(repeated, npartitions=3))
    with pytest.raises(
        FrameError, match=r"1 cells repeat a combination .*'area': 'A00'.*\(partitions 0 and 2 of 3\)"
    ):
        frame.total  # noqa: B018
    with pytest.raises(FrameError, match="repeat a combination"):
        fit.poststratify(frame, by="area", draws=DRAWS, seed=5)
    fine = um.PopulationFrame(dd.from_pandas(cells, npartitions=3))
    fine.check_repeated_cells()  # distinct cells pass


def test_a_series_or_no_by_column_is_refused(dd: Any, cells: pd.DataFrame) -> None:
    with pytest.raises(FrameError, match="got Series"):
        um.PopulationFrame(dd.from_pandas(cells, npartitions=2)["count"])
    with pytest.raises(FrameError, match="by names no column"):
        um.PopulationFrame(cells).totals([])


def test_boolean_counts_are_refused_in_memory_too(cells: pd.DataFrame) -> None:
    with pytest.raises(FrameError, match="True/False"):
        um.PopulationFrame(cells.assign(count=cells["count"] > 3))


def test_a_float_code_column_is_named_when_cells_repeat(cells: pd.DataFrame) -> None:
    """An area code read as float is a covariate, so the cells look repeated: the message says so."""
    coded = cells.assign(area=cells["area"].str.slice(1).str.replace("EW", "9").astype(float))
    with pytest.raises(FrameError, match=r"Float columns \['area'\] are numeric covariates.*astype"):
        um.PopulationFrame(coded)
