"""Does the care model recover the synthetic England's truth?

``um.fit_care_model(eng.population, eng.surveys["general"], draws=200, seed=...)``
then ``.populations_by(frame, groupings=["area_code", "ethnic_group"],
admin=<council-funded community counts by area>)`` (the admin counts are
``eng.admin`` with ``setting == "community"`` summed over age groups: the
general survey covers households, so its council-funded people are those
supported in the community). For each quantity (need, council_funded,
self_funded, unpaid_only, unmet, insufficient), by area (152) and by ethnic
group (19): relative bias, relative RMSE and 90% interval coverage of the
counts against the truth.

Truth. ``eng.truth`` has every quantity by ``setting``: ``household``,
``care_home`` (residents, all with need and paid care) and ``all`` (their
sum). The survey samples private households, so the estimates are scored
against the household truth when poststratified to the household frame
(``eng.population`` cells with ``setting == "household"``) and against the
all-adult truth when poststratified to the all-adult frame (the frame's
settings summed: household rates applied to care-home residents' cells).

    python benchmarks/truth_recovery.py           # writes ## truth_recovery
    python benchmarks/truth_recovery.py --quick   # 50 draws, no write
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
SEED = 20261129
QUANTITIES = ("need", "council_funded", "self_funded", "unpaid_only", "unmet", "insufficient")


def truth_by(eng, setting: str) -> dict[str, pd.DataFrame]:
    """The truth of one setting, by area and by ethnic group (index = group, columns = quantities)."""
    out = {}
    for by, table in (("area_code", eng.truth["by_area"]),
                      ("ethnic_group", eng.truth["by_ethnic_group"])):
        rows = table[table["setting"] == setting]
        wide = rows.pivot(index=by, columns="quantity", values="value")
        wide.index = wide.index.astype(str)
        wide.columns = wide.columns.astype(str)
        out[by] = wide
    return out


def frame_of(eng, setting: str | None):
    """The population frame of one setting, or (None) all adults with the settings summed."""
    import unmetneed as um

    cells = eng.population.cells
    if setting is not None:
        cells = cells[cells["setting"] == setting]
    keys = [c for c in cells.columns if c not in ("setting", "count", "deprivation",
                                                  "owner_occupation")]
    summed = cells.groupby(keys, observed=True, sort=True).agg(
        deprivation=("deprivation", "first"), owner_occupation=("owner_occupation", "first"),
        count=("count", "sum")).reset_index()
    return um.PopulationFrame(summed)


def score(est: pd.DataFrame, truth: pd.DataFrame, by: str) -> pd.DataFrame:
    """est: summary rows of measure 'count'; truth: index = group, columns = quantities."""
    rows = []
    for q in QUANTITIES:
        e = est[est["quantity"] == q].set_index(by)
        e.index = e.index.astype(str)
        t = truth[q].reindex(e.index)
        rel = (e["estimate"] - t) / t
        cover = (e["ci_lower"] <= t) & (t <= e["ci_upper"])
        rows.append({
            "quantity": q,
            "rel. bias": rel.mean(),
            "rel. RMSE": np.sqrt((rel ** 2).mean()),
            "90% coverage": cover.mean(),
            "median rel. CI width": ((e["ci_upper"] - e["ci_lower"]) / t).median(),
            "total rel. error": e["estimate"].sum() / t.sum() - 1,
        })
    return pd.DataFrame(rows)


def md(df: pd.DataFrame) -> str:
    def f(v):
        return v if isinstance(v, str) else f"{v:+.3f}" if "bias" in str(v) else f"{v:.3f}"

    cols = list(df.columns)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df.itertuples(index=False):
        out.append("| " + " | ".join(v if isinstance(v, str) else
                                     (f"{v:+.3f}" if c in ("rel. bias", "total rel. error") else f"{v:.3f}")
                                     for c, v in zip(cols, r, strict=True)) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    draws = 50 if args.quick else args.draws

    from _sections import load1, machine_line, write_section

    import unmetneed as um

    eng = um.datasets.load_synthetic_england()
    truth_all = truth_by(eng, "all")
    house = truth_by(eng, "household")
    care_home = truth_by(eng, "care_home")
    admin = (eng.admin[eng.admin["setting"] == "community"].groupby("area_code", observed=True)["count"]
             .sum().astype(float))
    admin.index = admin.index.astype(str)

    load0 = load1()
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        everyone = frame_of(eng, None)
        cm = um.fit_care_model(everyone, eng.surveys["general"], draws=draws, seed=SEED)
        t1 = time.perf_counter()
        frames = {"all-adult frame (settings summed)": everyone,
                  "household frame": frame_of(eng, "household")}
        results = {}
        for name, frame in frames.items():
            out = cm.populations_by(frame, groupings=["area_code", "ethnic_group"], admin=admin)
            results[name] = {k[0]: v.summary().query("measure == 'count'") for k, v in out.items()}
            results[name]["_share_over"] = out[("area_code",)].attrs.get(
                "share_of_area_draws_admin_above_paid", float("nan"))
    t2 = time.perf_counter()
    wall, cpu = t2 - t0, time.process_time() - c0
    load_end = load1()

    when = time.strftime("%Y-%m-%d %H:%M")
    ch_area = care_home["area_code"].sum()
    lines = [
        "## truth_recovery", "",
        f"Run {when} by `python benchmarks/truth_recovery.py` (seed {SEED}, {draws} draws). Machine: "
        f"{machine_line()}. `fit_care_model` (5 links) {t1 - t0:.0f} s wall; with both "
        f"poststratifications {wall:.0f} s wall, {cpu:.0f} s CPU; load {load0:.1f}→{load_end:.1f}.", "",
        f"`cm = um.fit_care_model(frame, eng.surveys[\"general\"], draws={draws}, seed={SEED})`; "
        "`cm.populations_by(frame, groupings=[\"area_code\", \"ethnic_group\"], admin=admin)` with "
        "`admin` = `eng.admin` council-funded counts with `setting == \"community\"`, summed over "
        f"age groups ({admin.sum():,.0f} people in {len(admin)} areas; residential: "
        f"{eng.admin.loc[eng.admin['setting'] == 'residential', 'count'].sum():,.0f}). Counts "
        "(posterior mean, 5–95% quantile interval) against the truth, by area (152) and ethnic "
        "group (19): relative bias = mean of (estimate − truth)/truth over groups, relative RMSE "
        "= root mean square of the same, coverage = share of groups whose truth is inside the 90% "
        "interval, total rel. error = sum of estimates / sum of truth − 1.", "",
        "**Households vs care homes.** The general survey samples private households; "
        "`eng.truth` has the settings `household`, `care_home` (residents, all with need and paid "
        "care) and `all`. Care-home truth (`setting == \"care_home\"`): "
        + ", ".join(f"{q} {round(ch_area[q]) + 0:,.0f}" for q in QUANTITIES)
        + f" (of need {truth_all['area_code']['need'].sum():,.0f}). Two frames are scored: "
        "the all-adult frame (`eng.population` with its settings summed; household rates applied "
        "to care-home residents' cells) and the household frame (`setting == \"household\"`) "
        "whose target is the household truth.", "",
    ]
    for name, res in results.items():
        for by, label in (("area_code", "area (152)"), ("ethnic_group", "ethnic group (19)")):
            for tname, truth in (("all-adult truth (`setting == \"all\"`)", truth_all[by]),
                                 ("household truth (`setting == \"household\"`)", house[by])):
                if name.startswith("household") and tname.startswith("all"):
                    continue
                lines += [f"### frame: {name}; by {label}; vs {tname}", "",
                          md(score(res[by], truth, by)), ""]
        lines += [f"Share of area draws where the admin count exceeded the modelled paid care "
                  f"({name}): {res['_share_over']:.3f}.", ""]
    text = "\n".join(lines)
    print(text)
    if not (args.quick or args.no_write):
        write_section("truth_recovery", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
