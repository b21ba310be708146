"""The real figures behind the synthetic England: councils, regions, adults by age band.

The synthetic England (:mod:`unmetneed.datasets.synthetic`) is made up except
for a few published facts, which this module derives once from Census 2021
files and stores in ``data/reference/synthetic/council_inputs.csv``:

* the 152 upper-tier councils (2021 codes and names, ``councils.csv``);
* the region of each council. The lookup below is written out by hand and
  checked against the data: for each of the 9 regions, the sum of its
  councils' TS007 counts must equal the region's own TS007 counts in every one
  of the 113 age columns, within Census perturbation (at most 19 people per
  cell in the 2021 files; moving even the smallest council, the Isles of Scilly
  with 2,100 residents, would break the check by far more);
* the usual residents aged 18 and over in each of the 8 age bands (TS007
  single years summed: ``18-24`` is ages 18-24, ..., ``85+`` is 85 to 100+);
* an indirectly age-standardised disability ratio (TS038 people disabled under
  the Equality Act, all ages, summed from lower-tier areas, over the number
  expected from the council's TS007 age structure at England-wide assumed
  age-specific rates, scaled so England is 1). It is only a seed for the
  synthetic ``deprivation`` score: disability and deprivation go together;
* owner occupation (``owner_occupation``): the share of households that own
  their home (Census 2021 TS054, ``Tenure of household: Owned`` over
  ``Tenure of household: Total: All households``; owned outright or with a
  mortgage or loan, shared ownership not included), rounded to 6 decimals. The
  TS054 upper-tier file uses the same 2021 codes as ``councils.csv``: all 152
  are present and no code needed mapping (checked here: a missing code is an
  error). It is a real area covariate of the synthetic care model (housing
  wealth drives self-funding: the home counts in the means test for
  residential care).

Rerun with ``python -m unmetneed.datasets._synthetic_inputs <folder>`` where
``<folder>`` holds ``census2021-ts007-utla.csv``, ``census2021-ts007-rgn.csv``,
``census2021-ts054-utla.csv`` and ``england_disability_21.csv`` (see ``/work/shared/reference-data/SOURCES.md``
in the development environment); nothing reads those files at run time.

Contains public sector information licensed under the Open Government Licence
v3.0.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["COUNCIL_REGION", "INPUTS_FILE", "REGIONS", "derive_council_inputs", "owner_occupation"]

INPUTS_FILE = "synthetic/council_inputs.csv"

#: The 9 English regions (2021 codes) and names as TS007 spells them.
REGIONS: dict[str, str] = {
    "E12000001": "North East",
    "E12000002": "North West",
    "E12000003": "Yorkshire and The Humber",
    "E12000004": "East Midlands",
    "E12000005": "West Midlands",
    "E12000006": "East",
    "E12000007": "London",
    "E12000008": "South East",
    "E12000009": "South West",
}

_REGION_MEMBERS = {
    "E12000001": "E06000001 E06000002 E06000003 E06000004 E06000005 E06000047 E06000057 "
    "E08000021 E08000022 E08000023 E08000024 E08000037",
    "E12000002": "E06000006 E06000007 E06000008 E06000009 E06000049 E06000050 "
    + " ".join(f"E080000{i:02d}" for i in range(1, 16))
    + " E10000006 E10000017",
    "E12000003": "E06000010 E06000011 E06000012 E06000013 E06000014 E08000016 E08000017 "
    "E08000018 E08000019 E08000032 E08000033 E08000034 E08000035 E08000036 E10000023",
    "E12000004": "E06000015 E06000016 E06000017 E06000018 E06000061 E06000062 E10000007 "
    "E10000018 E10000019 E10000024",
    "E12000005": "E06000019 E06000020 E06000021 E06000051 "
    + " ".join(f"E080000{i:02d}" for i in range(25, 32))
    + " E10000028 E10000031 E10000034",
    "E12000006": "E06000031 E06000032 E06000033 E06000034 E06000055 E06000056 E10000003 "
    "E10000012 E10000015 E10000020 E10000029",
    "E12000007": " ".join(f"E090000{i:02d}" for i in range(1, 34)),
    "E12000008": "E06000035 E06000036 E06000037 E06000038 E06000039 E06000040 E06000041 "
    "E06000042 E06000043 E06000044 E06000045 E06000046 E06000060 E10000011 E10000014 "
    "E10000016 E10000025 E10000030 E10000032",
    "E12000009": "E06000022 E06000023 E06000024 E06000025 E06000026 E06000027 E06000030 "
    "E06000052 E06000053 E06000054 E06000058 E06000059 E10000008 E10000013 E10000027",
}

#: Upper-tier council (2021 code) -> region code.
COUNCIL_REGION: dict[str, str] = {
    council: region for region, members in _REGION_MEMBERS.items() for council in members.split()
}

AGE_BAND_LIMITS = {
    "18-24": (18, 24),
    "25-34": (25, 34),
    "35-44": (35, 44),
    "45-54": (45, 54),
    "55-64": (55, 64),
    "65-74": (65, 74),
    "75-84": (75, 84),
    "85+": (85, 100),
}

# Assumed England-wide share disabled under the Equality Act by age (roughly the
# Census 2021 pattern); only the ratio between councils matters here.
_DISABILITY_BY_AGE = [
    (0, 4, 0.03),
    (5, 9, 0.06),
    (10, 15, 0.09),
    (16, 24, 0.115),
    (25, 34, 0.12),
    (35, 44, 0.14),
    (45, 54, 0.18),
    (55, 64, 0.245),
    (65, 74, 0.29),
    (75, 84, 0.42),
    (85, 100, 0.62),
]
# Largest difference allowed between a region's TS007 count and the sum of its
# councils' counts (Census 2021 cell perturbation is a few people per cell).
_PERTURBATION_TOLERANCE = 100


def _single_years(table: pd.DataFrame) -> pd.DataFrame:
    """TS007 counts by single year of age 0..100 (columns), one row per area."""
    columns: dict[int, str] = {}
    for column in table.columns:
        label = column.split(": ", 1)[-1].split(";")[0]
        match = re.fullmatch(r"Aged (\d+) years?", label)
        if match:
            columns[int(match.group(1))] = column
        elif label == "Aged under 1 year":
            columns[0] = column
        elif label == "Aged 100 years and over":
            columns[100] = column
    if sorted(columns) != list(range(101)):
        raise ValueError("TS007 file lacks some single years of age 0..100")
    out = table[[columns[a] for a in range(101)]].copy()
    out.columns = list(range(101))
    return out


def _read_ts007(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, dtype={"geography code": str})
    return table.set_index("geography code")


def check_regions(utla: pd.DataFrame, rgn: pd.DataFrame) -> pd.Series:
    """Largest |region count - sum of its councils' counts| per region, all TS007 columns.

    Raises ValueError when any region differs by more than Census perturbation.
    """
    counts = [c for c in utla.columns if c.startswith("Age:")]
    england = utla.loc[list(COUNCIL_REGION), counts]
    summed = england.groupby(pd.Series(COUNCIL_REGION)).sum()
    difference = (summed - rgn.loc[summed.index, counts]).abs().max(axis=1)
    if (difference > _PERTURBATION_TOLERANCE).any():
        raise ValueError(f"council -> region lookup disagrees with TS007 regions:\n{difference}")
    return difference


def derive_council_inputs(folder: str | Path, councils: pd.DataFrame) -> pd.DataFrame:
    """Build the table stored as ``data/reference/synthetic/council_inputs.csv``.

    Parameters
    ----------
    folder : str or Path
        Folder holding ``census2021-ts007-utla.csv``, ``census2021-ts007-rgn.csv``,
        ``census2021-ts054-utla.csv`` and ``england_disability_21.csv``.
    councils : DataFrame
        ``data/reference/councils.csv`` (``area_code``, ``area_name``,
        ``council_type``).

    Returns
    -------
    DataFrame
        One row per council in ``councils`` order: ``area_code``, ``area_name``,
        ``council_type``, ``region_code``, ``region_name``, the 8 age-band
        counts of usual residents (columns named by band), ``residents`` (all
        ages), ``disability_ratio`` and ``owner_occupation``.
    """
    folder = Path(folder)
    utla = _read_ts007(folder / "census2021-ts007-utla.csv")
    rgn = _read_ts007(folder / "census2021-ts007-rgn.csv")
    check_regions(utla, rgn)
    codes = councils["area_code"].tolist()
    if set(codes) != set(COUNCIL_REGION):
        raise ValueError("councils.csv and the region lookup list different councils")
    years = _single_years(utla.loc[codes])
    out = councils[["area_code", "area_name", "council_type"]].reset_index(drop=True).copy()
    out["region_code"] = [COUNCIL_REGION[c] for c in codes]
    out["region_name"] = [REGIONS[r] for r in out["region_code"]]
    for band, (lo, hi) in AGE_BAND_LIMITS.items():
        out[band] = years.loc[:, lo:hi].sum(axis=1).to_numpy()
    out["residents"] = utla.loc[codes, "Age: Total; measures: Value"].to_numpy()

    # Indirect age standardisation of TS038 disability (all ages).
    rate = np.zeros(101)
    for lo, hi, share in _DISABILITY_BY_AGE:
        rate[lo : hi + 1] = share
    expected = years.to_numpy(dtype=float) @ rate
    disability = pd.read_csv(folder / "england_disability_21.csv", dtype={"ltla21_code": str})
    disabled = disability[disability["disability_level"].str.startswith("Disabled")]
    lookup_path = Path(__file__).resolve().parents[1] / "harmonise" / "maps" / "ltla21_utla21.csv"
    lookup = pd.read_csv(lookup_path, dtype=str).set_index("ltla21_code")["utla21_code"]
    upper = lookup.reindex(disabled["ltla21_code"]).to_numpy()
    if pd.isna(upper).any():
        raise ValueError("some lower-tier areas of the TS038 file have no upper-tier council")
    observed = disabled.groupby(upper)["n"].sum().reindex(codes).to_numpy(dtype=float)
    ratio = observed / expected
    out["disability_ratio"] = np.round(ratio / (observed.sum() / expected.sum()), 6)
    out["owner_occupation"] = owner_occupation(folder / "census2021-ts054-utla.csv", codes)
    return out


_TS054_TOTAL = "Tenure of household: Total: All households"
_TS054_OWNED = "Tenure of household: Owned"


def owner_occupation(path: str | Path, codes: list[str]) -> np.ndarray:
    """Share of households owning their home (TS054) for each council in ``codes``.

    Raises ValueError when a council code is missing from the file (2021 codes
    are expected, as in ``councils.csv``).
    """
    table = pd.read_csv(path, dtype={"geography code": str}).set_index("geography code")
    missing = sorted(set(codes) - set(table.index))
    if missing:
        raise ValueError(f"TS054 file {str(path)!r} lacks councils {missing[:8]}")
    rows = table.loc[codes]
    share = rows[_TS054_OWNED].to_numpy(dtype=float) / rows[_TS054_TOTAL].to_numpy(dtype=float)
    return np.asarray(np.round(share, 6))


def main(argv: list[str]) -> None:  # pragma: no cover - run by hand
    from unmetneed.datasets.example import reference_path

    if len(argv) != 1:
        raise SystemExit("usage: python -m unmetneed.datasets._synthetic_inputs <folder>")
    councils = pd.read_csv(reference_path("councils.csv"), dtype=str)
    table = derive_council_inputs(argv[0], councils)
    target = reference_path(INPUTS_FILE)
    target.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(target, index=False, lineterminator="\n")
    adults = int(table[list(AGE_BAND_LIMITS)].to_numpy().sum())
    print(f"wrote {target} ({len(table)} councils, {adults:,} adults)")


if __name__ == "__main__":  # pragma: no cover
    main(sys.argv[1:])
