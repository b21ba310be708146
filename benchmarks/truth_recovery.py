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

Truth. ``eng.truth`` counts everyone, care-home residents included (all of them
with need and paid care), while the survey samples private households. The
household part of the truth is computed from the generator (the same cell
probabilities the survey's outcomes are drawn from), and the estimates are
scored against both; the model is also poststratified to a household frame
(``eng.population`` less the generator's expected care-home residents per
cell), whose target is exactly the household truth.

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


def household_truth(inputs, population, model) -> dict[str, pd.DataFrame]:
    """Household and care-home parts of each quantity, by area and by ethnic group."""
    from unmetneed.datasets._synthetic_model import ETHNIC_GROUPS

    n = population.counts.astype(float)
    b = lambda a: np.broadcast_to(a, n.shape)  # noqa: E731
    pn, ph, pp, pc, res = (b(model.need), b(model.help), b(model.paid), b(model.council),
                           b(model.residential))
    need = n * pn
    paid_h = need * ph * pp * (1 - res)
    parts = {
        "need": need * (1 - ph * pp * res),
        "council_funded": paid_h * pc,
        "self_funded": paid_h * (1 - pc),
        "unpaid_only": need * ph * (1 - pp),
        "unmet": need * (1 - ph),
    }
    parts["insufficient"] = (parts["council_funded"] * b(model.not_enough_council)
                             + parts["self_funded"] * b(model.not_enough_self)
                             + parts["unpaid_only"] * b(model.not_enough_unpaid))
    parts["population"] = n * (1 - pn * ph * pp * res)
    codes = inputs.areas["area_code"].astype(str).to_numpy()
    by_area = pd.DataFrame({q: v.sum(axis=(1, 2, 3, 4)) for q, v in parts.items()}, index=codes)
    by_eth = pd.DataFrame({q: v.sum(axis=(0, 1, 2, 4)) for q, v in parts.items()},
                          index=list(ETHNIC_GROUPS))
    return {"area_code": by_area, "ethnic_group": by_eth}


def household_frame(frame, inputs, population, model):
    from simulation import household_frame as hf

    return hf(frame, inputs, population, model)


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

    import unmetneed as um
    from _sections import load1, machine_line, write_section
    from simulation import generator

    eng = um.datasets.load_synthetic_england()
    inputs, population, model = generator()
    house = household_truth(inputs, population, model)
    truth_all = {
        "area_code": eng.truth["by_area"].pivot(index="area_code", columns="quantity", values="value"),
        "ethnic_group": eng.truth["by_ethnic_group"].assign(
            ethnic_group=lambda d: d["ethnic_group"].astype(str)).pivot(
            index="ethnic_group", columns="quantity", values="value"),
    }
    truth_all["area_code"].index = truth_all["area_code"].index.astype(str)
    # care-home part = all - household
    care_home = {k: (truth_all[k][list(QUANTITIES)] - house[k].reindex(truth_all[k].index)[list(QUANTITIES)])
                 for k in truth_all}
    admin = (eng.admin[eng.admin["setting"] == "community"].groupby("area_code", observed=True)["count"]
             .sum().astype(float))
    admin.index = admin.index.astype(str)

    load0 = load1()
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cm = um.fit_care_model(eng.population, eng.surveys["general"], draws=draws, seed=SEED)
        t1 = time.perf_counter()
        frames = {"eng.population (all adults)": eng.population,
                  "household frame": household_frame(eng.population, inputs, population, model)}
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
        f"`cm = um.fit_care_model(eng.population, eng.surveys[\"general\"], draws={draws}, seed={SEED})`; "
        "`cm.populations_by(frame, groupings=[\"area_code\", \"ethnic_group\"], admin=admin)` with "
        "`admin` = `eng.admin` council-funded counts with `setting == \"community\"`, summed over "
        f"age groups ({admin.sum():,.0f} people in {len(admin)} areas; residential: "
        f"{eng.admin.loc[eng.admin['setting'] == 'residential', 'count'].sum():,.0f}). Counts "
        "(posterior mean, 5–95% quantile interval) against the truth, by area (152) and ethnic "
        "group (19): relative bias = mean of (estimate − truth)/truth over groups, relative RMSE "
        "= root mean square of the same, coverage = share of groups whose truth is inside the 90% "
        "interval, total rel. error = sum of estimates / sum of truth − 1.", "",
        "**Households vs care homes.** The general survey samples private households; "
        "`eng.truth` includes care-home residents (all with need and paid care). Care-home part "
        "of the truth (from the generator): "
        + ", ".join(f"{q} {round(ch_area[q]) + 0:,.0f}" for q in QUANTITIES)
        + f" (of need {truth_all['area_code']['need'].sum():,.0f}). Two frames are scored: "
        "`eng.population` (all adults — the brief's call; household rates applied to care-home "
        "residents' cells) and a household frame (expected household counts per cell, from the "
        "generator) whose target is the household truth.", "",
    ]
    for name, res in results.items():
        for by, label in (("area_code", "area (152)"), ("ethnic_group", "ethnic group (19)")):
            for tname, truth in (("all-adult truth (`eng.truth`)", truth_all[by]),
                                 ("household truth", house[by])):
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
