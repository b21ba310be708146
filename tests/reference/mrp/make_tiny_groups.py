"""Write ``data/tiny_groups_rows.csv``: the 4-factor case with tiny groups for ``stan_tiny.R``.

A logistic model with a sex effect and four crossed random intercepts -- 25
areas, 8 age bands, 19 ethnic groups (four with 0-3 respondents, one with
none) and 3 disability levels -- on 1,500 respondents. The numbers are drawn
here once, with a fixed seed; the R script fits ``rstanarm::stan_glmer`` to
the stored rows and the test compares ``unmetneed``'s draws with its
posterior. Run from the repository root: ``python tests/reference/mrp/make_tiny_groups.py``.
"""

from pathlib import Path

import numpy as np
import pandas as pd

SEED = 20261204
OUT = Path(__file__).resolve().parent / "data"
AGES = ["18-24", "25-34", "35-44", "45-54", "55-64", "65-74", "75-84", "85+"]
DISABILITY = ["Disabled: limited a lot", "Disabled: limited a little", "Not disabled"]


def main() -> None:
    rng = np.random.default_rng(SEED)
    n = 1500
    areas = [f"A{j:02d}" for j in range(1, 26)]
    groups = [f"E{j:02d}" for j in range(1, 20)]
    # Ethnic-group sampling shares: 15 ordinary groups, E16-E19 tiny (E19 never sampled).
    shares = np.r_[np.geomspace(0.3, 0.01, 15), [0.0022, 0.0012, 0.0008, 0.0]]
    shares /= shares.sum()
    age_effect = np.array([-1.6, -1.4, -1.1, -0.8, -0.4, 0.1, 0.8, 1.7])
    dis_effect = np.array([1.5, 0.6, -0.9])
    eth_effect = rng.normal(0.0, 0.45, size=len(groups))
    area_effect = rng.normal(0.0, 0.3, size=len(areas))
    a = rng.integers(0, len(areas), size=n)
    g = rng.choice(len(groups), size=n, p=shares)
    age = rng.integers(0, len(AGES), size=n)
    dis = rng.choice(3, size=n, p=[0.08, 0.1, 0.82])
    sex = rng.integers(0, 2, size=n)
    eta = -1.7 + 0.15 * sex + area_effect[a] + eth_effect[g] + age_effect[age] + dis_effect[dis]
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    rows = pd.DataFrame({
        "y": y,
        "sex": np.where(sex == 1, "Male", "Female"),
        "area": np.asarray(areas)[a],
        "age_band": np.asarray(AGES)[age],
        "ethnic_group": np.asarray(groups)[g],
        "disability": np.asarray(DISABILITY)[dis],
    })
    OUT.mkdir(exist_ok=True)
    rows.to_csv(OUT / "tiny_groups_rows.csv", index=False)
    print(rows["ethnic_group"].value_counts().sort_index().to_string())


if __name__ == "__main__":
    main()
