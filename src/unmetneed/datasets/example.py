"""A small example survey shipped with the package (synthetic, seeded).

Ten real council areas (GSS codes and names from Census 2021 TS007, Open
Government Licence v3.0) with synthetic respondents: a stratified (by area),
clustered (7-9 PSUs per area) sample of about 2,000 adults with the standard
care items. The data are made up; only the area codes and names are real.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from unmetneed.datasets.builders import build_survey_design

__all__ = [
    "load_example_areas",
    "load_example_design",
    "load_example_survey",
    "make_example_survey",
    "reference_path",
]

EXAMPLE_FILE = "example_survey.csv"
EXAMPLE_SEED = 20211

AREAS = [
    ("E06000001", "Hartlepool"),
    ("E06000002", "Middlesbrough"),
    ("E06000047", "County Durham"),
    ("E08000021", "Newcastle upon Tyne"),
    ("E08000025", "Birmingham"),
    ("E09000033", "Westminster"),
    ("E10000006", "Cumbria"),
    ("E10000014", "Hampshire"),
    ("E10000030", "Surrey"),
    ("E06000054", "Wiltshire"),
]
AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"]
HELP = ["none", "unpaid_only", "paid"]


def reference_path(name: str = "") -> Path:
    """Path of a file in the embedded reference data (``data/reference/``).

    Installed wheels carry the folder inside the package; a source checkout
    (editable install) reads it from the repository.

    Examples
    --------
    >>> from unmetneed.datasets import reference_path
    >>> reference_path("example_survey.csv").name
    'example_survey.csv'
    """
    packaged = Path(__file__).resolve().parent.parent / "_data" / "reference"
    root = packaged if packaged.is_dir() else Path(__file__).resolve().parents[3] / "data" / "reference"
    return root / name


def make_example_survey(seed: int = EXAMPLE_SEED) -> pd.DataFrame:
    """Generate the example survey (what ``data/reference/example_survey.csv`` holds).

    Examples
    --------
    >>> from unmetneed.datasets import make_example_survey
    >>> make_example_survey().shape[0] > 1500
    True
    """
    rng = np.random.default_rng(seed)
    frames = []
    area_effect = rng.normal(0.0, 0.35, len(AREAS))
    for a, (code, name) in enumerate(AREAS):
        n_psu = int(rng.integers(7, 10))
        sizes = rng.integers(20, 32, n_psu)
        psu = np.repeat(np.arange(1, n_psu + 1), sizes)
        n = psu.size
        psu_effect = rng.normal(0.0, 0.25, n_psu)[psu - 1]
        age = rng.choice(len(AGE_BANDS), n, p=[0.1, 0.16, 0.16, 0.16, 0.15, 0.13, 0.09, 0.05])
        female = rng.random(n) < 0.52
        eta = -3.2 + 0.45 * age + 0.15 * female + area_effect[a] + psu_effect
        need = rng.random(n) < 1.0 / (1.0 + np.exp(-eta))
        u = rng.random(n)
        help_code = np.where(u < 0.22, 0, np.where(u < 0.62, 1, 2))
        help_code = np.where(need, help_code, 0)
        weight = np.round(rng.lognormal(np.log(150.0 * (1 + a % 4)), 0.35, n), 2)
        frames.append(
            pd.DataFrame(
                {
                    "area_code": code,
                    "area_name": name,
                    "stratum": code,
                    "psu": psu,
                    "weight": weight,
                    "sex": np.where(female, "Female", "Male"),
                    "age_band": np.asarray(AGE_BANDS)[age],
                    "need": need.astype(np.int64),
                    "help": np.asarray(HELP)[help_code],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def load_example_survey() -> pd.DataFrame:
    """Load the example survey: about 2,000 synthetic respondents in 10 council areas.

    Columns: ``area_code``, ``area_name``, ``stratum`` (the area), ``psu``
    (cluster id, unique only within a stratum: use ``nest=True``), ``weight``,
    ``sex``, ``age_band``, ``need`` (0/1), ``help`` (``none`` for everyone
    without need; ``unpaid_only`` or ``paid`` otherwise).

    Returns
    -------
    DataFrame
        ``age_band``, ``sex`` and ``help`` are ordered Categoricals.

    Examples
    --------
    >>> import unmetneed as um
    >>> survey = um.datasets.load_example_survey()
    >>> survey["area_code"].nunique()
    10
    """
    df = pd.read_csv(reference_path(EXAMPLE_FILE), dtype={"area_code": str, "stratum": str})
    df["sex"] = pd.Categorical(df["sex"], categories=["Female", "Male"], ordered=True)
    df["age_band"] = pd.Categorical(df["age_band"], categories=AGE_BANDS, ordered=True)
    df["help"] = pd.Categorical(df["help"], categories=HELP, ordered=True)
    return df


def load_example_design() -> Any:
    """The example survey as its stratified, clustered design: the set-up of most examples.

    The same as ``SurveyDesign(load_example_survey(), weights="weight",
    strata="stratum", clusters="psu", nest=True)``: the areas are the strata and
    PSUs are numbered within each area (hence ``nest=True``).

    Returns
    -------
    SurveyDesign

    Examples
    --------
    >>> import unmetneed as um
    >>> design = um.datasets.load_example_design()
    >>> design.degf
    67
    """
    return build_survey_design(
        load_example_survey(), weights="weight", strata="stratum", clusters="psu", nest=True
    )


def load_example_areas() -> pd.DataFrame:
    """Six areas with a direct estimate, its variance and a covariate: the Fay-Herriot examples' data.

    Returns
    -------
    DataFrame
        ``area`` (``A`` to ``F``), ``y`` (direct estimate), ``v`` (its sampling
        variance) and ``x`` (an area-level covariate).

    Examples
    --------
    >>> import unmetneed as um
    >>> um.datasets.load_example_areas()
      area    y    v    x
    0    A  1.2  0.2  1.0
    1    B  2.3  0.5  2.0
    2    C  1.9  0.3  1.5
    3    D  3.1  0.4  3.0
    4    E  2.2  0.1  2.0
    5    F  2.8  0.6  2.5
    """
    return pd.DataFrame(
        {
            "area": list("ABCDEF"),
            "y": [1.2, 2.3, 1.9, 3.1, 2.2, 2.8],
            "v": [0.2, 0.5, 0.3, 0.4, 0.1, 0.6],
            "x": [1.0, 2.0, 1.5, 3.0, 2.0, 2.5],
        }
    )
