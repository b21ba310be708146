"""Result tables built by hand, with the columns every library table has."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

import unmetneed as um

# Normal 95% quantile: the hand-built intervals are estimate +/- Z * se.
Z = 1.959963984540054

TableMaker = Callable[..., pd.DataFrame]


def make_table(
    keys: Mapping[str, Sequence[Any]],
    estimate: Sequence[float],
    *,
    cv: float | Sequence[float] = 0.1,
    n: int | Sequence[int] = 100,
    measure: str | Sequence[str] | None = "count",
) -> pd.DataFrame:
    """``[keys...], (measure), estimate, se, ci_lower, ci_upper, cv, n`` from estimates and CVs."""
    table = pd.DataFrame({name: list(values) for name, values in keys.items()})
    size = len(estimate)
    if measure is not None:
        table["measure"] = measure if isinstance(measure, str) else list(measure)
    est = np.asarray(estimate, dtype=float)
    cvs = np.broadcast_to(np.asarray(cv, dtype=float), (size,))
    se = cvs * np.abs(est)
    table["estimate"] = est
    table["se"] = se
    table["ci_lower"] = est - Z * se
    table["ci_upper"] = est + Z * se
    table["cv"] = np.where(est != 0, cvs, np.nan)
    table["n"] = np.broadcast_to(np.asarray(n, dtype=np.int64), (size,)).copy()
    return table


def grid_table(
    counts: np.ndarray,
    *,
    cv: np.ndarray | float = 0.1,
    n: np.ndarray | int = 100,
    totals: bool = False,
    rows: str = "area_code",
    columns: str = "group",
) -> pd.DataFrame:
    """Counts by ``rows`` x ``columns`` (a 2-d array), with ``Total`` margins if asked."""
    counts = np.asarray(counts, dtype=float)
    cv = np.broadcast_to(np.asarray(cv, dtype=float), counts.shape)
    n = np.broadcast_to(np.asarray(n, dtype=np.int64), counts.shape)
    row_labels = [f"r{i}" for i in range(counts.shape[0])]
    col_labels = [f"c{j}" for j in range(counts.shape[1])]
    if totals:
        # Margins of sums: their SE from independent cells, n added up.
        var = (cv * counts) ** 2
        counts = np.pad(counts, ((0, 1), (0, 1)))
        counts[-1, :] = counts.sum(axis=0)
        counts[:, -1] = counts.sum(axis=1)
        var = np.pad(var, ((0, 1), (0, 1)))
        var[-1, :] = var.sum(axis=0)
        var[:, -1] = var.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            cv = np.where(counts != 0, np.sqrt(var) / np.abs(counts), 0.0)
        n = np.pad(n, ((0, 1), (0, 1)))
        n[-1, :] = n.sum(axis=0)
        n[:, -1] = n.sum(axis=1)
        row_labels.append("Total")
        col_labels.append("Total")
    r, c = np.meshgrid(np.arange(counts.shape[0]), np.arange(counts.shape[1]), indexing="ij")
    return make_table(
        {rows: np.asarray(row_labels)[r.ravel()], columns: np.asarray(col_labels)[c.ravel()]},
        counts.ravel(), cv=cv.ravel(), n=n.ravel(),
    )


def domain_table() -> pd.DataFrame:
    """A small domain-layer table: quantities x measures by area, parts adding to need."""
    areas = ["E06000001", "E06000002", "E06000003"]
    parts = {
        "council_funded": [300.0, 6.0, 250.0],
        "self_funded": [200.0, 180.0, 150.0],
        "unpaid_only": [900.0, 700.0, 800.0],
        "unmet": [400.0, 350.0, 3.0],
    }
    population = np.array([20_000.0, 15_000.0, 18_000.0])
    need = np.sum(list(parts.values()), axis=0)
    frames = []
    for quantity, counts in {"need": need, **parts}.items():
        counts = np.asarray(counts)
        for measure, values in (("count", counts), ("rate_per_1000", 1000 * counts / population),
                                ("share_of_need", counts / need)):
            if quantity == "need" and measure == "share_of_need":
                continue
            frames.append(make_table({"area_code": areas, "area_name": ["Hartlepool", "Middlesbrough",
                                                                         "Redcar"],
                                      "quantity": [quantity] * 3},
                                     values, cv=0.15, n=[120, 80, 95], measure=measure))
    table = pd.concat(frames, ignore_index=True)
    table["flag"] = np.where(table["cv"] > 0.2, "low_reliability", "ok")
    table.attrs.update({"level": 0.9, "estimate": "posterior mean"})
    return table


PARTS = ["council_funded", "self_funded", "unpaid_only", "unmet"]


@pytest.fixture(scope="session")
def table_maker() -> TableMaker:
    return make_table


@pytest.fixture(scope="session")
def grid_maker() -> TableMaker:
    return grid_table


@pytest.fixture()
def domain() -> pd.DataFrame:
    return domain_table()


@pytest.fixture(scope="session")
def parts() -> list[str]:
    return list(PARTS)


@pytest.fixture(scope="session")
def example_design() -> um.SurveyDesign:
    survey = um.datasets.load_example_survey()
    return um.SurveyDesign(survey, weights="weight", strata="stratum", clusters="psu", nest=True)
