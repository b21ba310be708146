"""Raking and calibration of a Dask DataFrame: partitioned Parquet files on a real LocalCluster.

The streamed weights must be the in-memory ones (to 1e-12 relative) with the
same margins and options, whatever the partitioning; bad input raises the
in-memory errors, naming the partition where the data are needed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import (
    CalibrationError,
    ConvergenceWarning,
    DesignError,
    MarginsError,
    MissingColumnError,
)

# dask's Parquet reader calls reset_index(inplace=True), which pandas >= 3.1 deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:The inplace keyword in DataFrame.reset_index:DeprecationWarning"
)
AREAS = [f"E{a:02d}" for a in range(12)]
AGES = ["18-64", "65-74", "75-84", "85+"]
ETHNIC = ["white", "asian", "black", "mixed", "other"]


@pytest.fixture(scope="module")
def people() -> pd.DataFrame:
    """Respondents with unequal weights; sex a Categorical, the rest text and integers."""
    rng = np.random.default_rng(5)
    n = 6000
    frame = pd.DataFrame(
        {
            "area_code": rng.choice(AREAS, n),
            "age_band": rng.choice(AGES, n, p=[0.5, 0.2, 0.2, 0.1]),
            "sex": pd.Categorical(rng.choice(["Male", "Female"], n), categories=["Male", "Female"]),
            "ethnic": rng.choice(ETHNIC, n, p=[0.7, 0.12, 0.08, 0.05, 0.05]),
            "disability": rng.integers(0, 3, n),
            "weight": rng.gamma(4.0, 50.0, n),
        }
    )
    return frame.sort_values("area_code", kind="stable").reset_index(drop=True)


def totals_of(people: pd.DataFrame, key: Any, scale: float, seed: int) -> pd.Series:
    """Population totals near the weighted counts, summing to ``scale`` times their total."""
    counts = people.groupby(key, observed=True)["weight"].sum()
    noisy = counts * np.random.default_rng(seed).uniform(0.8, 1.25, len(counts))
    return noisy * (scale * people["weight"].sum() / noisy.sum())


@pytest.fixture(scope="module")
def margins(people: pd.DataFrame) -> um.Margins:
    return um.Margins(
        {
            ("area_code", "sex"): totals_of(people, ["area_code", "sex"], 1.1, 1),
            "age_band": totals_of(people, "age_band", 1.1, 2),
            "ethnic": totals_of(people, "ethnic", 1.1, 3),
            "disability": totals_of(people, "disability", 1.1, 4),
        }
    )


def write_parts(parts: list[pd.DataFrame], directory: Path) -> Path:
    directory.mkdir()
    for i, part in enumerate(parts):
        part.to_parquet(directory / f"part-{i:03d}.parquet", index=False)
    return directory


@pytest.fixture(scope="module")
def parquet_dir(people: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven files of unequal size, area E03 split across two of them."""
    bounds = [0, 700, 1100, 1800, 2600, 3900, 5000, len(people)]
    parts = [people.iloc[a:b] for a, b in itertools.pairwise(bounds)]
    assert set(parts[1]["area_code"]) & set(parts[2]["area_code"])
    return write_parts(parts, tmp_path_factory.mktemp("rake") / "people")


def in_memory(people: pd.DataFrame) -> um.SurveyDesign:
    return um.SurveyDesign(people, weights="weight")


def assert_same_weights(got: um.DaskWeightingResult, want: um.WeightingResult, frame: Any) -> None:
    weights = got.weights.compute()
    assert got.weights.npartitions == frame.npartitions
    pd.testing.assert_index_equal(weights.index, frame.index.compute())
    np.testing.assert_allclose(weights.to_numpy(), want.design.weights, rtol=1e-12, atol=0)
    assert got.report.converged == want.report.converged
    assert got.report.iterations == want.report.iterations
    fit_got, fit_want = got.report.margin_fit, want.report.margin_fit
    pd.testing.assert_frame_equal(
        fit_got.sort_values(["margin", "category"]).reset_index(drop=True),
        fit_want.sort_values(["margin", "category"]).reset_index(drop=True),
        rtol=1e-10,
    )


def test_raked_weights_equal_the_in_memory_ones(
    client: Any, dd: Any, people: pd.DataFrame, margins: um.Margins, parquet_dir: Path
) -> None:
    frame = dd.read_parquet(parquet_dir)
    assert frame.npartitions == 7
    want = um.rake(in_memory(people), margins, tol=1e-12)
    got = um.rake(frame, margins, weights="weight", tol=1e-12)
    assert_same_weights(got, want, frame)
    # the report's weight distributions from the cells: exact sums, Kish deff, g range
    for name in ["n", "sum", "kish_deff", "effective_n", "share_negative", "share_zero", "g_min", "g_max"]:
        assert got.report.weights_after[name] == pytest.approx(want.report.weights_after[name], rel=1e-10)
        if name in want.report.weights_before:
            assert got.report.weights_before[name] == pytest.approx(
                want.report.weights_before[name], rel=1e-10
            )
    assert np.isnan(got.report.weights_after["median"])
    assert "converged" in repr(got) and "7 partitions" in repr(got)
    # the weights align with the frame partition by partition: joined without a shuffle
    joined = frame.assign(raked=got.weights)
    assert not any("shuffle" in str(key) for key in dict(joined.__dask_graph__()))
    np.testing.assert_allclose(joined["raked"].compute().to_numpy(), want.design.weights, rtol=1e-12)
    cells = got.cells
    assert int(cells["rows"].sum()) == len(people)
    e03 = cells[cells["area_code"] == "E03"]
    assert e03["rows"].sum() == (people["area_code"] == "E03").sum()


@pytest.mark.parametrize(
    ("method", "bounds"), [("linear", None), ("logit", (0.4, 2.5)), ("raking", None)], ids=str
)
def test_calibrated_weights_equal_the_in_memory_ones(
    client: Any,
    dd: Any,
    people: pd.DataFrame,
    margins: um.Margins,
    parquet_dir: Path,
    method: Any,
    bounds: Any,
) -> None:
    frame = dd.read_parquet(parquet_dir)
    want = um.calibrate(in_memory(people), margins, method=method, bounds=bounds)
    got = um.calibrate(frame, margins, weights="weight", method=method, bounds=bounds)
    assert_same_weights(got, want, frame)
    assert got.report.method == f"calibrate({method})"


def test_options_behave_as_in_memory(client: Any, dd: Any, people: pd.DataFrame) -> None:
    """collapse=, allow_empty=, reconcile= and on_nonconvergence='warn' on the cells."""
    kept = people[people["ethnic"] != "other"]
    frame = dd.from_pandas(kept, npartitions=5)
    age = totals_of(people, "age_band", 1.0, 6)
    ethnic = totals_of(people, "ethnic", 1.0003, 7)  # 3e-4 off: needs reconcile="scale"
    margins = um.Margins({"age_band": age, "ethnic": ethnic})
    options: dict[str, Any] = {
        "collapse": {"age_band": {"85+": "75-84"}},
        "allow_empty": True,
        "reconcile": "scale",
    }
    want = um.rake(in_memory(kept), margins, **options)
    got = um.rake(frame, margins, weights="weight", **options)
    assert_same_weights(got, want, frame)
    assert got.report.adjustments == want.report.adjustments
    assert any("no respondents" in a for a in got.report.adjustments)

    hard = {**options, "max_iter": 1, "on_nonconvergence": "warn"}
    with pytest.warns(ConvergenceWarning, match="did not converge in 1 iterations") as record:
        got = um.rake(frame, margins, weights="weight", **hard)
    assert record[0].filename == __file__  # the warning points at the caller
    with pytest.warns(ConvergenceWarning):
        want = um.rake(in_memory(kept), margins, **hard)
    assert not got.report.converged
    np.testing.assert_allclose(got.weights.compute().to_numpy(), want.design.weights, rtol=1e-12)
    with pytest.raises(CalibrationError, match="did not converge"):
        um.rake(frame, margins, weights="weight", **{**options, "max_iter": 1})


def test_a_category_missing_from_the_margins_raises_as_in_memory(
    client: Any, dd: Any, people: pd.DataFrame, margins: um.Margins, parquet_dir: Path
) -> None:
    smaller = um.Margins({"ethnic": margins["ethnic"].drop("mixed")})
    with pytest.raises(MarginsError) as memory:
        um.rake(in_memory(people), smaller)
    with pytest.raises(MarginsError) as streamed:
        um.rake(dd.read_parquet(parquet_dir), smaller, weights="weight")
    assert str(streamed.value) == str(memory.value)
    assert "'mixed' (" in str(streamed.value) and "respondents)" in str(streamed.value)


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        (
            lambda p: p.assign(sex=p["sex"].where(p.index != p.index[3])),
            DesignError,
            "'sex' has missing values",
        ),
        (
            lambda p: p.assign(weight=p["weight"].where(p.index != p.index[3])),
            DesignError,
            "'weight' has missing",
        ),
        (lambda p: p.assign(weight=-p["weight"]), DesignError, "negative values"),
    ],
    ids=["missing category", "missing weight", "negative weight"],
)
def test_bad_rows_raise_the_in_memory_error_naming_the_partition(
    client: Any,
    dd: Any,
    people: pd.DataFrame,
    margins: um.Margins,
    tmp_path: Path,
    change: Any,
    error: type[Exception],
    message: str,
) -> None:
    parts = [people.iloc[i : i + 1000] for i in range(0, len(people), 1000)]
    with pytest.raises(error, match=message):
        um.rake(in_memory(change(people)), margins)
    parts[2] = change(parts[2])
    frame = dd.read_parquet(write_parts(parts, tmp_path / "bad"))
    with pytest.raises(error, match=f"{message}.*\\(partition 2 of {len(parts)}\\)"):
        um.rake(frame, margins, weights="weight")


def test_what_needs_no_data_is_checked_first(dd: Any, people: pd.DataFrame, margins: um.Margins) -> None:
    frame = dd.from_pandas(people, npartitions=2)
    with pytest.raises(DesignError, match="needs weights=, the column of base weights"):
        um.rake(frame, margins)
    with pytest.raises(MissingColumnError, match="weights column 'w'"):
        um.rake(frame, margins, weights="w")
    with pytest.raises(MissingColumnError, match="margin variable column 'ethnic'"):
        um.rake(frame.drop(columns="ethnic"), margins, weights="weight")
    with pytest.raises(DesignError, match="a SurveyDesign has its own"):
        um.rake(in_memory(people), margins, weights="weight")
    with pytest.raises(DesignError, match="tol="):
        um.rake(frame, margins, weights="weight", tol=2.0)


def test_numeric_totals_are_refused(dd: Any, people: pd.DataFrame) -> None:
    frame = dd.from_pandas(people, npartitions=2)
    numeric = um.Margins({"age_band": totals_of(people, "age_band", 1.0, 1), "disability": 5000.0})
    with pytest.raises(
        MarginsError, match=r"categorical margins only; the numeric totals \['disability'\].*in memory"
    ):
        um.calibrate(frame, numeric, weights="weight")


def test_an_empty_frame_and_empty_partitions(
    client: Any, dd: Any, people: pd.DataFrame, margins: um.Margins
) -> None:
    frame = dd.from_pandas(people, npartitions=4)
    first = set(people["area_code"].iloc[:1500])  # the areas of the first partition (sorted by area)
    kept = ~people["area_code"].isin(first)
    with_empty = frame[~frame["area_code"].isin(list(first))]  # the first partition has no rows left
    assert len(with_empty.partitions[0]) == 0 and len(with_empty.partitions[1]) > 0
    age = um.Margins({"age_band": totals_of(people, "age_band", 1.0, 1)})
    got = um.rake(with_empty, age, weights="weight")
    want = um.rake(in_memory(people[kept]), age)
    np.testing.assert_allclose(got.weights.compute().to_numpy(), want.design.weights, rtol=1e-12)
    with pytest.raises(DesignError, match="no rows"):
        um.rake(frame[frame["weight"] < 0], margins, weights="weight")


def test_the_package_imports_and_rakes_without_dask(run_without_dask: Callable[[str], None]) -> None:
    run_without_dask(
        "import unmetneed as um\n"
        "d = um.datasets.load_example_design()\n"
        "r = um.rake(d, um.Margins({'sex': d.data.groupby('sex', observed=True)['weight'].sum()}))\n"
        "assert r.report.converged"
    )


def test_weights_with_a_pandas_frame_say_what_to_do(people: pd.DataFrame, margins: um.Margins) -> None:
    with pytest.raises(DesignError, match=r"got a DataFrame: make a SurveyDesign of it"):
        um.rake(people, margins, weights="w")
