"""A category of a fixed effect unseen in fitting is refused, never given the reference level's value."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import unmetneed as um
from unmetneed.errors import ModelError


@pytest.fixture(scope="module")
def fit() -> um.MultilevelFit:  # type: ignore[name-defined]
    rng = np.random.default_rng(3)
    n = 600
    data = pd.DataFrame({
        "sex": rng.choice(["F", "M"], n),
        "area": rng.choice([f"a{i}" for i in range(6)], n),
        "age": rng.choice(["young", "old"], n),
    })
    area_effect = dict(zip([f"a{i}" for i in range(6)], rng.normal(0, 0.8, 6), strict=True))
    logit = -0.5 + 0.8 * (data["sex"] == "M") + data["area"].map(area_effect) + 0.6 * (data["age"] == "old")
    data["y"] = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    with warnings.catch_warnings():
        # two age levels may leave their SD at 0: a singular fit is beside the point here
        warnings.simplefilter("ignore", um.errors.UnmetneedWarning)
        return um.MultilevelModel("y ~ sex + (1|area) + (1|age)", data=data).fit()


@pytest.mark.parametrize("labels", [["X"], ["Female", "Male"], ["f", "m"]])
def test_predict_refuses_unseen_categories(fit, labels: list[str]) -> None:  # type: ignore[no-untyped-def]
    cells = pd.DataFrame({"sex": labels, "area": "a0", "age": "old", "count": 10.0})
    with pytest.raises(ModelError, match="fixed effect 'sex'") as error:
        fit.predict(cells)
    for label in labels:
        assert repr(label) in str(error.value)


def test_poststratify_refuses_unseen_categories(fit) -> None:  # type: ignore[no-untyped-def]
    cells = pd.DataFrame({"sex": ["F", "X"], "area": "a0", "age": "old", "count": [10.0, 5.0]})
    with pytest.raises(ModelError, match=r"categories not seen in fitting: \['X'\]"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore", um.errors.UnmetneedWarning)
        fit.poststratify(cells, by="area", draws=10, seed=0)


def test_seen_categories_still_predict(fit) -> None:  # type: ignore[no-untyped-def]
    cells = pd.DataFrame({"sex": ["F", "M"], "area": "a0", "age": "old"})
    p = fit.predict(cells)
    assert p.shape == (2,) and p[1] > p[0]
