"""Write the stored case for care_homes.R: two regions of the synthetic England's care homes.

Run once from the repository root: ``python tests/reference/care_homes/make_case.py``.
The CSVs are committed; the tests and the R script read them.
"""

from pathlib import Path

import unmetneed as um

HERE = Path(__file__).resolve().parent
REGIONS = ("North East", "East Midlands")


def main() -> None:
    homes = um.datasets.load_synthetic_england().care_homes
    register = homes.register[homes.register["region"].isin(REGIONS)]
    returns = homes.returns[homes.returns["home_id"].isin(register["home_id"])]
    (HERE / "data").mkdir(exist_ok=True)
    register.to_csv(HERE / "data" / "register.csv", index=False, lineterminator="\n")
    returns.to_csv(HERE / "data" / "returns.csv", index=False, lineterminator="\n")


if __name__ == "__main__":
    main()
