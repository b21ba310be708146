"""Does estimate_care_home_funding recover the synthetic care homes' truth?

The synthetic England's care-home register and every home's residents and
funding are fixed (regenerated from the seed: exactly the shipped files); only
the non-response is redrawn, 50 times, under the generator's response model
(size, type, region, rating). Each draw's returns go through

    um.estimate_care_home_funding(register, returns, covariates=eng.care_homes.areas)

and are scored against ``eng.truth["care_homes_by_area"]`` (every home):

* council self-funded shares: 90% interval coverage of the published estimate
  (Fay-Herriot EBLUP, synthetic without returns), of the direct ratio with its
  Taylor SE and with its smoothed (GVF) SE; RMSE of the Fay-Herriot and of the
  direct estimates over councils with returns;
* council counts of residents and self-funders: coverage;
* England and each region, home type, size band and rating: coverage of the
  design-based 90% intervals (the ONS-style tables).

    python benchmarks/care_homes.py            # 50 draws, writes ## care_homes
    python benchmarks/care_homes.py --quick    # 5 draws, no write
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
SEED = 20261204
DRAWS = 50
QUICK_DRAWS = 10
LEVEL = 0.9
RETURN_COLUMNS = ["home_id", "residents", "self_funded", "council_funded", "nhs_funded",
                  "other_funded"]
# As the pipeline calibrates when the register has ratings (cli/pipeline.py).
CALIBRATE_TO = ("region", "home_type", "size_band", "rating")
# Variants of the council covariates: the published one first.
VARIANTS = {
    "admin": "owner-occupation + admin_share, the council-funded share implied by the admin "
             "counts (as published) and the estimated residents (measurement-error model)",
    "admin_off_5": "the same with admin counts x a council error (log-normal, SD 0.05)",
    "admin_off_5_cv": "the same counts with `admin_cv=0.05` (the error declared)",
    "admin_off_15": "the same with admin counts x 1.1 x a council error (log-normal, SD 0.15): "
                    "counts that are not the homes' own",
    "no_admin": "owner-occupation only (the register's covariates and the census; REML "
                "Fay-Herriot)",
}
# admin counts that are not the homes' own (out-of-area placements, another date): scale, SD
NOISY_ADMIN = {"admin_off_5": (1.0, 0.05), "admin_off_15": (1.1, 0.15)}
ADMIN_CV = {"admin_off_5_cv": 0.05}


def full_homes(eng):
    """Every home's residents and funding, and the response model, from the generator."""
    from unmetneed.datasets import _synthetic_care_homes as generator
    from unmetneed.datasets.synthetic import SEED as ENGLAND_SEED

    residents, self_funded = generator.resident_totals(eng.population.cells, eng.admin,
                                                       eng.areas["area_code"])
    draw = generator.generate_care_homes(eng.areas[["area_code", "region_name"]], residents,
                                         self_funded, eng.areas["deprivation"].to_numpy(),
                                         eng.areas["owner_occupation"].to_numpy(), ENGLAND_SEED)
    shipped = eng.care_homes.returns
    if not draw.returns.reset_index(drop=True).astype(shipped.dtypes).equals(shipped):
        raise SystemExit("the generator no longer reproduces the shipped returns")
    return draw, generator


def group_truth(homes: pd.DataFrame, by: str | None) -> pd.Series:
    if by is None:
        return pd.Series({"all": homes["self_funded"].sum() / homes["residents"].sum()})
    sums = homes.groupby(homes[by].astype(str))[["self_funded", "residents"]].sum()
    return sums["self_funded"] / sums["residents"]


def variant_admin(eng, seed: int) -> dict[str, pd.DataFrame | None]:
    """The admin counts of each variant (see VARIANTS): a fixed error per council."""
    residential = eng.admin[eng.admin["setting"].astype(str) == "residential"].copy()
    codes = residential["area_code"].astype(str).to_numpy()
    councils = sorted(set(codes))
    out: dict[str, pd.DataFrame | None] = {"admin": residential}
    for k, (name, (scale, sd)) in enumerate(NOISY_ADMIN.items()):
        error = dict(zip(councils, np.random.default_rng([seed, k]).normal(0.0, sd, len(councils))))
        noisy = residential.copy()
        noisy["count"] = np.round(residential["count"].to_numpy() * scale * np.exp([error[c] for c in codes]))
        out[name] = noisy
    out["admin_off_5_cv"] = out["admin_off_5"]
    out["no_admin"] = None
    return out


def one_draw(um, eng, draw, generator, rng, admin, admin_cv=0.0):
    responded = generator.draw_response(draw.register, draw.response_effects, rng)
    returns = draw.homes.loc[responded, RETURN_COLUMNS]
    start = time.perf_counter()
    res = um.estimate_care_home_funding(eng.care_homes.register, returns, calibrate_to=CALIBRATE_TO,
                                        covariates=eng.care_homes.areas, admin=admin,
                                        admin_cv=admin_cv, level=LEVEL)
    seconds = time.perf_counter() - start
    truth = eng.truth["care_homes_by_area"].set_index("area_code")
    share_truth = truth["self_funded"] / truth["residents"]
    table = res.to_frame()
    councils = res.councils.set_index("area_code")
    rows = []
    for quantity, target in (("self_funded_share", share_truth),
                             ("self_funded", truth["self_funded"].astype(float)),
                             ("residents", truth["residents"].astype(float))):
        t = table[table["quantity"] == quantity].set_index("area_code")
        t = t.join(target.rename("truth"))
        t["covered"] = (t["ci_lower"] <= t["truth"]) & (t["truth"] <= t["ci_upper"])
        t["quantity"] = quantity
        rows.append(t.reset_index())
    scored = pd.concat(rows, ignore_index=True)
    z = 1.6448536269514722
    d = councils.join(share_truth.rename("truth"))
    d = d[d["responding_homes"] > 0]
    direct = pd.DataFrame({
        "area_code": d.index, "n": d["responding_homes"].to_numpy(),
        "truth": d["truth"].to_numpy(), "direct": d["direct"].to_numpy(),
        "model": d["estimate"].to_numpy(), "basis": d["basis"].to_numpy(),
        "shrinkage": d["shrinkage"].to_numpy(), "gvf_var": (d["gvf_se"] ** 2).to_numpy(),
        "taylor_covered": (np.abs(d["direct"] - d["truth"]) <= z * d["direct_se"]).to_numpy(),
        "gvf_covered": (np.abs(d["direct"] - d["truth"]) <= z * d["gvf_se"]).to_numpy(),
    })
    groups = []
    for name, table_ in res.tables(level=LEVEL).items():
        by = None if name == "england" else name
        target = group_truth(draw.homes, by)
        if by is None:
            table_ = table_.assign(group="all")
        else:
            table_ = table_.assign(group=table_[by].astype(str))
        table_ = table_.set_index("group").join(target.rename("truth"))
        table_["covered"] = (table_["ci_lower"] <= table_["truth"]) & (
            table_["truth"] <= table_["ci_upper"])
        table_["table"] = name
        groups.append(table_.reset_index()[["table", "group", "estimate", "truth", "covered"]])
    return scored, direct, pd.concat(groups, ignore_index=True), seconds, res


def fmt(v) -> str:
    if isinstance(v, (float, np.floating)):
        return f"{v:.3f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def md(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "\n".join("| " + " | ".join(fmt(v) for v in row) + " |"
                            for row in df.itertuples(index=False))


def council_measures(scored: pd.DataFrame, direct: pd.DataFrame) -> dict[str, float]:
    """Coverage and RMSE of the council shares over councils x draws."""
    share = scored[scored["quantity"] == "self_funded_share"]
    err_model = direct["model"] - direct["truth"]
    err_direct = direct["direct"] - direct["truth"]
    per_council = share.groupby("area_code")["covered"].mean()
    tiny = direct["n"] < 5
    sq = pd.DataFrame({"area_code": direct["area_code"], "m": err_model ** 2, "d": err_direct ** 2})
    by_council = sq.groupby("area_code")[["m", "d"]].mean()
    by_council = by_council[by_council["d"] > 0]
    return {
        "coverage": float(share["covered"].mean()),
        "councils_below_half": int((per_council < 0.5).sum()),
        "rmse_model": float(np.sqrt((err_model ** 2).mean())),
        "rmse_direct": float(np.sqrt((err_direct ** 2).mean())),
        "ratio": float(np.sqrt((err_model ** 2).mean() / (err_direct ** 2).mean())),
        "ratio_5plus": float(np.sqrt((err_model[~tiny] ** 2).mean() / (err_direct[~tiny] ** 2).mean())),
        "median_council_ratio": float(np.sqrt(by_council["m"] / by_council["d"]).median()),
        "shrinkage": float(direct["shrinkage"].mean()),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    draws = QUICK_DRAWS if args.quick else DRAWS
    from _sections import load1, machine_line, write_section

    import unmetneed as um

    eng = um.datasets.load_synthetic_england()
    draw, generator = full_homes(eng)
    admin = variant_admin(eng, SEED)
    load_before = load1()
    runs = {}
    wall = time.perf_counter()
    for variant in VARIANTS:
        rng = np.random.default_rng(SEED)  # the same non-response draws in every variant
        scored, direct, groups, times = [], [], [], []
        for k in range(draws):
            s, d, g, seconds, res = one_draw(um, eng, draw, generator, rng, admin[variant],
                                                  ADMIN_CV.get(variant, 0.0))
            for frame in (s, d, g):
                frame["draw"] = k
            scored.append(s)
            direct.append(d)
            groups.append(g)
            times.append(seconds)
        runs[variant] = (pd.concat(scored, ignore_index=True), pd.concat(direct, ignore_index=True),
                         pd.concat(groups, ignore_index=True), times, res.info["formula"])
    wall = time.perf_counter() - wall
    scored, direct, groups, times, formula = runs["admin"]

    # council shares, published variant
    share = scored[scored["quantity"] == "self_funded_share"]
    coverage = share.groupby("basis")["covered"].agg(["mean", "size"]).reset_index()
    m = council_measures(scored, direct)
    err_model = direct["model"] - direct["truth"]
    err_direct = direct["direct"] - direct["truth"]
    small = direct["n"] < 20
    rmse_small = (float(np.sqrt((err_model[small] ** 2).mean())),
                  float(np.sqrt((err_direct[small] ** 2).mean())))
    per_council = share.groupby("area_code")["covered"].mean()
    council_rows = pd.DataFrame([
        {"measure": "90% coverage, published estimate (all councils x draws)", "value": m["coverage"]},
        *({"measure": f"90% coverage, basis {b} ({int(n)} council-draws)", "value": float(v)}
          for b, v, n in coverage.itertuples(index=False)),
        {"measure": "councils whose coverage over the draws is below 0.5 (codes: "
                    + (", ".join(sorted(per_council.index[per_council < 0.5])) or "none") + ")",
         "value": m["councils_below_half"]},
        {"measure": "90% coverage, direct ratio with its Taylor SE",
         "value": float(direct["taylor_covered"].mean())},
        {"measure": "90% coverage, direct ratio with its smoothed (GVF) SE",
         "value": float(direct["gvf_covered"].mean())},
        {"measure": "RMSE, Fay-Herriot (councils with returns)", "value": m["rmse_model"]},
        {"measure": "RMSE, direct ratio", "value": m["rmse_direct"]},
        {"measure": "RMSE ratio Fay-Herriot / direct (target <= 0.7)", "value": m["ratio"]},
        {"measure": "RMSE ratio, councils with 5 or more responding homes", "value": m["ratio_5plus"]},
        {"measure": "RMSE ratio, councils with < 20 responding homes "
                    f"({int(small.sum())} council-draws)", "value": rmse_small[0] / rmse_small[1]},
        {"measure": "median over councils of the council's own RMSE ratio",
         "value": m["median_council_ratio"]},
        {"measure": "the same ratio expected if the model and the smoothed variances held: "
                    "sqrt(sum g_a v_a / sum v_a), g_a = shrinkage, v_a = GVF variance",
         "value": float(np.sqrt((direct["shrinkage"] * direct["gvf_var"]).sum()
                                / direct["gvf_var"].sum()))},
        {"measure": "mean bias, Fay-Herriot", "value": float(err_model.mean())},
        {"measure": "mean bias, direct", "value": float(err_direct.mean())},
        {"measure": "mean shrinkage (weight on the direct estimate)", "value": m["shrinkage"]},
    ])
    variant_rows = pd.DataFrame([
        {"covariates": f"{name}: {VARIANTS[name]}",
         **{k: v for k, v in council_measures(run[0], run[1]).items()}}
        for name, run in runs.items()
    ]).rename(columns={"coverage": "90% coverage", "councils_below_half": "councils < 0.5",
                       "rmse_model": "RMSE FH", "rmse_direct": "RMSE direct",
                       "ratio": "RMSE ratio (target <= 0.7)", "ratio_5plus": "ratio, 5+ returns",
                       "median_council_ratio": "median council ratio",
                       "shrinkage": "mean shrinkage"})
    counts = (scored[scored["quantity"] != "self_funded_share"]
              .assign(rel_error=lambda t: (t["estimate"] - t["truth"]) / t["truth"])
              .groupby("quantity").agg(coverage=("covered", "mean"),
                                       rel_rmse=("rel_error", lambda e: float(np.sqrt((e ** 2).mean()))),
                                       rel_bias=("rel_error", "mean"))
              .reset_index())
    group_table = (groups.groupby(["table", "group"])
                   .agg(truth=("truth", "first"), mean_estimate=("estimate", "mean"),
                        coverage=("covered", "mean")).reset_index())
    order = {"england": 0, "region": 1, "home_type": 2, "size_band": 3, "rating": 4}
    group_table = group_table.sort_values(["table", "group"], key=lambda c: c.map(order)
                                          if c.name == "table" else c).reset_index(drop=True)
    summary = eng.metadata["care_homes"]["summary"]
    text = (
        "## care_homes\n\n"
        f"Run {time.strftime('%Y-%m-%d %H:%M')} by `python benchmarks/care_homes.py` "
        f"(seed {SEED}, {draws} draws of the non-response, {len(VARIANTS)} covariate variants "
        f"on the same draws). Machine: {machine_line()}; "
        f"one `estimate_care_home_funding` call {np.median(times):.2f} s median "
        f"(whole run {wall:.0f} s wall); load {load_before:.1f}→{load1():.1f}.\n\n"
        f"The synthetic register ({summary['homes']:,} homes, {summary['beds']:,} beds, "
        f"{summary['residents']:,} residents, {summary['self_funded_share']:.1%} self-funded) "
        "and every home's residents are fixed; each draw redraws which homes return "
        "(the generator's response model: size, type, region, rating; about 75%) and runs "
        "`um.estimate_care_home_funding(eng.care_homes.register, returns, "
        f"calibrate_to={CALIBRATE_TO}, covariates=eng.care_homes.areas, admin=...)` as the pipeline does (calibration "
        "to homes and beds by each calibrate_to variable; Fay-Herriot REML on the direct "
        "council shares with GVF-smoothed variances; 90% intervals). Published covariates "
        "(variant `admin`): `eng.care_homes.areas` (owner-occupation) and "
        "the residential rows of `eng.admin`; the model is "
        f"`{formula}`. Truth: `eng.truth[\"care_homes_by_area\"]` (all homes).\n\n"
        "### Council self-funded shares by covariates (152 councils)\n\n" + md(variant_rows) + "\n\n"
        "### Council self-funded shares, published covariates\n\n" + md(council_rows) + "\n\n"
        "### Council counts\n\n" + md(counts) + "\n\n"
        "### England and the ONS-style tables (design-based 90% t intervals)\n\n"
        + md(group_table) + "\n\n"
        "**Reading.** Without the admin covariate the direct council shares are already "
        "precise (about 75% of homes return and the finite-population correction removes most "
        "of their variance) and the register and census covariates explain about half of the "
        "councils' differences, so the model keeps about 80% of the weight on the direct "
        "share and improves its RMSE by less than the 0.7 target (row no_admin). Council-funded "
        "residents are counted by every council in its own returns, and divided by the "
        "council's estimated residents (register beds x occupancy of the responding homes) "
        "they explain most of the rest (self-funded = residents - council-funded - NHS and "
        "other; the register's beds alone do not, as occupancy differs between councils): the model "
        "shrinks more and the ratio falls. The covariate is an estimate (the residents are), so it "
        "enters through the measurement-error model, whose intervals allow for it. With counts "
        "that are not the homes' own the coefficient absorbs a common scale, a council error "
        "becomes part of sigma2 and the gain shrinks (rows admin_off_5 and admin_off_15); "
        "sigma2 is estimated from the data, but it is one variance for every council, so "
        "councils whose counts are furthest off are covered less often unless the error is "
        "declared with `admin_cv` (row admin_off_5_cv). "
        "The pooled RMSE is dominated by the councils with one or two homes (the direct share "
        "of a council with 1 responding home is 0 or its one home's share), hence the rows "
        "for councils with 5 or more returns and the median council. Councils without "
        "returns: " + (", ".join(sorted(set(share.loc[share["basis"] == "model_no_returns",
                                                    "area_code"]))) or "none") + ".\n"
    )
    print(text)
    if not (args.quick or args.no_write):
        write_section("care_homes", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
