"""Does estimate_council_funded split admin counts by ethnic group honestly?

A generator written for this benchmark (not the synthetic England): 9 regions x
8 councils, admin cells council x setting (community | residential) x age group
(18-64 | 65+). Each cell's ethnic composition (19 Census groups) is

    log theta_ck = log pi_k + (minority k) * (diversity_a + age/setting shift)
                   + u_rk (region) + v_ak (council, not explained by the region)

and its A_c council-funded people are a multinomial draw (the finite-population
truth). The ASCS-like survey: strata council x user group (18-64 | 65+
community | 65+ residential), a 15% simple random sample per stratum,
response depending on broad ethnic group (White 40% .. Other 22%) and a council
factor; weights = stratum base weight / the true response probability (a
correct non-response adjustment: the method splits by the weighted composition
and cannot repair weights). Many council x group cells have 0-3 respondents.

Scored over replicates (fresh population and sample each): coverage of 90%
intervals by council x group, by cell x group and by group nationally;
relative bias of national group totals; RMSE of council x group counts against
the direct weighted composition (sum over the council's cells of A_c p_hat_ck).
Variants compared: the default (Kish pseudo-counts with a design effect per
split, region pool, strengths by marginal likelihood, multinomial counts), Kish
without the design effect, England pool, raw respondent counts instead of Kish,
continuous counts A_c theta_c, weights with response rates estimated by stratum
x broad group ((region, user group, broad group) for classes with < 10 sampled
or no respondents; the frame holds ethnicity, as council records do; rescaled
to the stratum count), and stratum-only weights N_h / r_h (as the ASCS
publishes). Then one run on the synthetic England (by ethnic group, sex and
disability).

    python benchmarks/ascs_composition.py            # 40 replicates, writes ## ascs_composition
    python benchmarks/ascs_composition.py --quick    # 4 replicates, no write
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
SEED = 20261204
REPLICATES = 40
DRAWS = 400
LEVEL = 0.9

GROUPS = [  # label, broad group, national share among council-funded people
    ("White: English, Welsh, Scottish, Northern Irish or British", "White", 0.0),
    ("White: Irish", "White", 0.0090),
    ("White: Gypsy or Irish Traveller", "White", 0.0007),
    ("White: Roma", "White", 0.0006),
    ("White: Other White", "White", 0.0220),
    ("Mixed or Multiple ethnic groups: White and Black Caribbean", "Mixed", 0.0035),
    ("Mixed or Multiple ethnic groups: White and Black African", "Mixed", 0.0016),
    ("Mixed or Multiple ethnic groups: White and Asian", "Mixed", 0.0030),
    ("Mixed or Multiple ethnic groups: Other Mixed or Multiple ethnic groups", "Mixed", 0.0031),
    ("Asian, Asian British or Asian Welsh: Indian", "Asian", 0.0175),
    ("Asian, Asian British or Asian Welsh: Pakistani", "Asian", 0.0170),
    ("Asian, Asian British or Asian Welsh: Bangladeshi", "Asian", 0.0065),
    ("Asian, Asian British or Asian Welsh: Chinese", "Asian", 0.0019),
    ("Asian, Asian British or Asian Welsh: Other Asian", "Asian", 0.0050),
    ("Black, Black British, Black Welsh, Caribbean or African: African", "Black", 0.0075),
    ("Black, Black British, Black Welsh, Caribbean or African: Caribbean", "Black", 0.0130),
    ("Black, Black British, Black Welsh, Caribbean or African: Other Black", "Black", 0.0019),
    ("Other ethnic group: Arab", "Other", 0.0023),
    ("Other ethnic group: Any other ethnic group", "Other", 0.0052),
]
LABELS = [g[0] for g in GROUPS]
BROAD = np.array([g[1] for g in GROUPS])
RESPONSE = {"White": 0.40, "Mixed": 0.30, "Asian": 0.28, "Black": 0.24, "Other": 0.22}
CELLS = [  # setting, age group, user group, median admin count
    ("community", "18-64", "18-64", 900.0),
    ("residential", "18-64", "18-64", 110.0),
    ("community", "65+", "65+ community", 1200.0),
    ("residential", "65+", "65+ residential", 650.0),
]
BANDS = {"18-64": ["18-24", "25-34", "35-44", "45-54", "55-64"],
         "65+": ["65-74", "75-84", "85+"]}
N_REGIONS, PER_REGION, FRACTION = 9, 8, 0.15


@dataclasses.dataclass
class World:
    admin: pd.DataFrame          # area_code, setting, age_group, count
    truth: pd.DataFrame          # area_code, setting, age_group, ethnic_group, count
    design: object               # SurveyDesign (adjusted weights)
    design_unadjusted: object    # weights N_h / r_h
    design_oracle: object        # weights N_h / n_h / true response probability


def simulate(rng: np.random.Generator, um) -> World:
    """One population of council-funded people and one ASCS-like sample of it."""
    k = len(GROUPS)
    base = np.array([g[2] for g in GROUPS])
    base[0] = 1.0 - base.sum()
    minority = np.arange(k) > 0
    areas = [f"E{r:02d}{a:06d}" for r in range(N_REGIONS) for a in range(PER_REGION)]
    region = np.repeat([f"R{r}" for r in range(N_REGIONS)], PER_REGION)
    u = rng.normal(0, 0.4, (N_REGIONS, k)) * minority
    region_diversity = rng.normal(0, 0.6, N_REGIONS)
    v = rng.normal(0, 0.6, (len(areas), k)) * minority          # council effect
    diversity = rng.normal(0, 0.8, len(areas))                   # urban/rural, not the region's
    shift = {"community18-64": 0.3, "residential18-64": 0.1, "community65+": -0.2,
             "residential65+": -0.5}
    admin_rows, truth_rows, sample_parts = [], [], []
    for a, area in enumerate(areas):
        r = a // PER_REGION
        size = np.exp(rng.normal(0, 0.5))
        strata_people: dict[str, list[pd.DataFrame]] = {}
        for setting, age, user_group, median in CELLS:
            logit = (np.log(base) + minority * (diversity[a] + region_diversity[r]
                                                + shift[setting + age]) + u[r] + v[a])
            theta = np.exp(logit - logit.max())
            theta /= theta.sum()
            count = max(1, round(median * size * np.exp(rng.normal(0, 0.3))))
            people = rng.multinomial(count, theta)
            admin_rows.append((area, setting, age, count))
            truth_rows.extend((area, setting, age, LABELS[j], people[j]) for j in range(k))
            group = np.repeat(np.arange(k), people)
            strata_people.setdefault(user_group, []).append(pd.DataFrame({
                "group": group, "setting": "care home" if setting == "residential" else setting,
                "age_group": age}))
        council_response = np.exp(rng.normal(0, 0.2))
        for user_group, parts in strata_people.items():
            pop = pd.concat(parts, ignore_index=True)
            n_pop = len(pop)
            n_sample = min(n_pop, max(2, round(FRACTION * n_pop)))
            sample = pop.iloc[rng.choice(n_pop, n_sample, replace=False)].copy()
            p = np.array([RESPONSE[b] for b in BROAD[sample["group"]]]) * council_response
            sample["p_respond"] = np.minimum(p, 0.95)
            sample["responded"] = rng.random(n_sample) < sample["p_respond"]
            sample["area_code"], sample["region_code"] = area, region[a]
            sample["user_group"], sample["N_h"], sample["n_h"] = user_group, n_pop, n_sample
            sample_parts.append(sample)
    sampled = pd.concat(sample_parts, ignore_index=True)
    sampled["broad"] = BROAD[sampled["group"]]
    # response rates by stratum x broad group, from the sampled people's frame data; classes
    # with fewer than 10 sampled or no respondents use (region, user group, broad group)
    by_class = sampled.groupby(["area_code", "user_group", "broad"])["responded"]
    by_region = sampled.groupby(["region_code", "user_group", "broad"])["responded"]
    usable = (by_class.transform("size") >= 10) & (by_class.transform("sum") > 0)
    rate = by_class.transform("mean").where(usable, by_region.transform("mean"))
    resp = sampled[sampled["responded"]].copy()
    resp["w_adj"] = (resp["N_h"] / resp["n_h"]) / rate[sampled["responded"]]
    resp["stratum"] = resp["area_code"] + ": " + resp["user_group"]
    resp["w_adj"] *= resp["N_h"] / resp.groupby("stratum")["w_adj"].transform("sum")
    resp["w_raw"] = resp["N_h"] / resp.groupby("stratum")["w_adj"].transform("size")
    resp["w_true"] = (resp["N_h"] / resp["n_h"]) / resp["p_respond"]
    bands = np.where(resp["age_group"] == "18-64", rng.integers(0, 5, len(resp)),
                     rng.integers(0, 3, len(resp)))
    resp["age_band"] = [BANDS[g][b] for g, b in zip(resp["age_group"], bands, strict=True)]
    resp["ethnic_group"] = pd.Categorical(np.asarray(LABELS)[resp["group"]], categories=LABELS)
    resp["fpc"] = resp["N_h"]
    cols = ["area_code", "region_code", "stratum", "setting", "age_band", "ethnic_group", "fpc"]
    design = um.SurveyDesign(resp[cols + ["w_adj"]].reset_index(drop=True), weights="w_adj",
                             strata="stratum", fpc="fpc", lonely_psu="adjust")
    raw = um.SurveyDesign(resp[cols + ["w_raw"]].reset_index(drop=True), weights="w_raw",
                          strata="stratum", fpc="fpc", lonely_psu="adjust")
    oracle = um.SurveyDesign(resp[cols + ["w_true"]].reset_index(drop=True), weights="w_true",
                             strata="stratum", fpc="fpc", lonely_psu="adjust")
    admin = pd.DataFrame(admin_rows, columns=["area_code", "setting", "age_group", "count"])
    truth = pd.DataFrame(truth_rows, columns=["area_code", "setting", "age_group",
                                              "ethnic_group", "count"])
    return World(admin, truth, design, raw, oracle)


def run_variant(cf, world: World, variant: str, rng: np.random.Generator):
    design = {"unadjusted weights": world.design_unadjusted,
              "weights from estimated response classes": world.design}.get(
        variant, world.design_oracle)
    pool = None if variant == "England pool" else "region_code"
    prepared = cf._prepare(design, world.admin, ["ethnic_group"],
                           ["area_code", "setting", "age_group"], "count", None, None, None,
                           pool, True)
    if variant == "respondents, not Kish":
        n = prepared.respondents.sum(axis=1)
        prepared = dataclasses.replace(
            prepared, weight_sq=np.where(n > 0, prepared.weight_sum ** 2 / np.maximum(n, 1), 0))
    counts, alphas = cf._draw_counts(
        prepared, DRAWS, rng, None, "area_code", multinomial=variant != "continuous counts",
        design_effect=variant not in ("Kish only (no split design effect)",
                                      "respondents, not Kish"),
        parent_information=variant != "plug-in parents (all data at every level)")
    est = cf._result(prepared, counts, alphas, ["ethnic_group"],
                     ["area_code", "setting", "age_group"], LEVEL, {})
    return est, prepared


def score(est, prepared, world: World) -> dict[str, pd.DataFrame]:
    tables = est.tables()
    keys = ["area_code", "setting", "age_group", "ethnic_group"]
    truth_cell = world.truth.set_index(keys)["count"]
    out = {}
    cell = tables["cell"].set_index(keys)
    cell["truth"] = truth_cell.reindex(cell.index).to_numpy()
    area_truth = world.truth.groupby(["area_code", "ethnic_group"])["count"].sum()
    area = tables["area"].set_index(["area_code", "ethnic_group"])
    area["truth"] = area_truth.reindex(area.index).to_numpy()
    nat = tables["england"].set_index("ethnic_group")
    nat["truth"] = world.truth.groupby("ethnic_group")["count"].sum().reindex(nat.index).to_numpy()
    # direct: A_c x weighted composition; a cell without respondents has no direct estimate
    share = np.divide(prepared.weighted, prepared.weight_sum[:, None],
                      out=np.full_like(prepared.weighted, np.nan),
                      where=prepared.weight_sum[:, None] > 0)
    direct = prepared.cells["_count"].to_numpy()[:, None] * share
    d = prepared.cells[["area_code", "setting", "age_group"]].copy()
    d = d.loc[d.index.repeat(len(LABELS))].reset_index(drop=True)
    d["ethnic_group"] = np.tile(LABELS, len(prepared.cells))
    d["direct"] = direct.ravel()
    d["empty"] = np.isnan(d["direct"])
    d_area = d.groupby(["area_code", "ethnic_group"]).agg(direct=("direct", "sum"),
                                                          empty=("empty", "any"))
    area = area.join(d_area)
    for name, frame in (("cell", cell), ("area", area), ("england", nat)):
        frame = frame.copy()
        frame["covered"] = (frame["ci_lower"] <= frame["truth"]) & (frame["truth"] <= frame["ci_upper"])
        out[name] = frame.reset_index()
    return out


def fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def md(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "\n".join("| " + " | ".join(fmt(v) for v in row) + " |"
                            for row in df.itertuples(index=False))


VARIANTS = ["default", "plug-in parents (all data at every level)",
            "Kish only (no split design effect)", "England pool",
            "respondents, not Kish", "continuous counts",
            "weights from estimated response classes", "unadjusted weights"]


def simulation(um, cf, replicates: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    rng = np.random.default_rng(SEED)
    rows, national, info = [], [], {"respondents": [], "alphas": [], "tiny": []}
    for rep in range(replicates):
        world = simulate(rng, um)
        info["respondents"].append(len(world.design.data))
        for variant in VARIANTS:
            est, prepared = run_variant(cf, world, variant, rng)
            s = score(est, prepared, world)
            area, cell, nat = s["area"], s["cell"], s["england"]
            if variant == "default":
                info["alphas"].append([float(np.median(list(v.values()))) for v in est.attrs["prior_strength"].values()])
                info["tiny"].append(float((area["n"] <= 3).mean()))
                nat["replicate"] = rep
                national.append(nat)
            has = ~area["empty"]
            err_m = (area["estimate"] - area["truth"])[has]
            err_d = (area["direct"] - area["truth"])[has]
            small = has & (area["n"] <= 3)
            rows.append({
                "variant": variant, "replicate": rep,
                "cov_cell": cell["covered"].mean(),
                "cov_area": area["covered"].mean(),
                "cov_area_n0": area.loc[area["n"] == 0, "covered"].mean(),
                "cov_area_n1_3": area.loc[area["n"].between(1, 3), "covered"].mean(),
                "cov_area_white_british": area.loc[area["ethnic_group"] == LABELS[0],
                                                   "covered"].mean(),
                "cov_england": nat["covered"].mean(),
                "sse_model": float((err_m ** 2).sum()), "sse_direct": float((err_d ** 2).sum()),
                "sse_model_small": float((err_m[small] ** 2).sum()),
                "sse_direct_small": float((err_d[small] ** 2).sum()),
                "n_area": int(has.sum()), "n_small": int(small.sum()),
                "rel_error_nat": list((nat["estimate"] / nat["truth"] - 1).to_numpy()),
                "rel_error_minorities": float(
                    nat.loc[nat["ethnic_group"] != LABELS[0], "estimate"].sum()
                    / nat.loc[nat["ethnic_group"] != LABELS[0], "truth"].sum() - 1),
            })
    return pd.DataFrame(rows), pd.concat(national, ignore_index=True), info


def summarise(results: pd.DataFrame) -> pd.DataFrame:
    out = []
    for variant in VARIANTS:
        r = results[results["variant"] == variant]
        rel = np.array(r["rel_error_nat"].tolist())  # replicates x groups
        bias = rel.mean(axis=0)
        out.append({
            "variant": variant,
            "cov council x group": r["cov_area"].mean(),
            "cov, 0 respondents": r["cov_area_n0"].mean(),
            "cov, 1-3 respondents": r["cov_area_n1_3"].mean(),
            "cov cell x group": r["cov_cell"].mean(),
            "cov England x group": r["cov_england"].mean(),
            "max abs rel bias (England, 19 groups)": float(np.abs(bias).max()),
            "its MC SE": float(rel.std(axis=0, ddof=1)[np.abs(bias).argmax()] / np.sqrt(len(rel))),
            "groups with abs bias > 0.03 + 2 MC SE": int(np.sum(
                np.abs(bias) > 0.03 + 2 * rel.std(axis=0, ddof=1) / np.sqrt(len(rel)))),
            "rel bias, 18 minority groups combined": float(r["rel_error_minorities"].mean()),
            "RMSE / direct (council x group)":
                float(np.sqrt(r["sse_model"].sum() / r["sse_direct"].sum())),
            "RMSE / direct (<= 3 respondents)":
                float(np.sqrt(r["sse_model_small"].sum() / r["sse_direct_small"].sum())),
        })
    return pd.DataFrame(out)


def synthetic_england(um) -> tuple[pd.DataFrame, dict]:
    """One run on the synthetic England, scored against its national truth by group."""
    eng = um.datasets.load_synthetic_england()
    tables, info = [], {"respondents": len(eng.surveys["ascs"].data)}
    for by in ("ethnic_group", "sex", "disability"):
        start = time.perf_counter()
        est = um.estimate_council_funded(eng.surveys["ascs"], eng.admin, by=by, draws=1000,
                                         seed=SEED, allow_empty=True)
        result = est.tables()
        info[by] = {"seconds": time.perf_counter() - start,
                    "alphas": est.attrs["prior_strength"],
                    "empty": est.attrs["cells_without_respondents"]}
        if by == "ethnic_group":
            area = result["area"]
            info["area_rows_n0"] = int((area["n"] == 0).sum())
            info["area_rows"] = len(area)
            info["n0_zero_width"] = int(((area["n"] == 0)
                                         & (area["ci_upper"] == area["ci_lower"])).sum())
        nat = result["england"].set_index(by)
        truth = eng.truth[f"by_{by}"]
        truth = truth[truth["quantity"] == "council_funded"]
        if "setting" in truth.columns:  # v2: household | care_home | all
            truth = truth[truth["setting"].astype(str) == "all"]
        truth = pd.Series(truth["value"].astype(float).to_numpy(),
                          index=truth[by].astype(str).to_numpy())
        nat["truth"] = truth.reindex(nat.index.astype(str)).to_numpy()
        # the truth counts everyone council-funded; the admin counts may differ slightly
        scale = float(eng.admin["count"].sum()) / float(nat["truth"].sum())
        info.setdefault("scale", scale)
        nat["truth_scaled"] = nat["truth"] * scale
        nat["rel_error"] = nat["estimate"] / nat["truth_scaled"] - 1
        nat["covered"] = ((nat["ci_lower"] <= nat["truth_scaled"])
                          & (nat["truth_scaled"] <= nat["ci_upper"]))
        table = nat.reset_index()[[by, "n", "estimate", "ci_lower", "ci_upper", "truth_scaled",
                                   "rel_error", "covered"]].rename(columns={by: "group"})
        table["group"] = table["group"].astype(str).str.split(": ").str[-1]
        table.insert(0, "by", by)
        tables.append(table)
    return pd.concat(tables, ignore_index=True), info


def reading(table: pd.DataFrame, nat: pd.DataFrame) -> str:
    """A paragraph saying what the variants decided, from the measured table."""
    row = table.set_index("variant")
    d, kish, cont = (row.loc["default"], row.loc["Kish only (no split design effect)"],
                     row.loc["continuous counts"])
    plug = row.loc["plug-in parents (all data at every level)"]
    est, raw = row.loc["weights from estimated response classes"], row.loc["unadjusted weights"]
    worst = nat.loc[nat["rel_bias"].abs().idxmax()]
    return (
        "**Reading.** Council x group intervals cover "
        f"{d['cov council x group']:.3f} (groups with no respondents in the council "
        f"{d['cov, 0 respondents']:.3f}, with 1-3 {d['cov, 1-3 respondents']:.3f}; the direct "
        "composition gives those a zero or a zero-width interval), cell x group "
        f"{d['cov cell x group']:.3f}, and the estimates have "
        f"{d['RMSE / direct (council x group)']:.2f} x the direct composition's RMSE "
        f"({d['RMSE / direct (<= 3 respondents)']:.2f} x where a group has at most 3 "
        "respondents in the council). Multinomial counts are needed for honest small cells "
        f"(continuous A_c theta_c: cell x group coverage {cont['cov cell x group']:.3f}); the "
        "national intervals need the parents' information counted once (England x group "
        f"coverage {plug['cov England x group']:.3f} when a region's and England's "
        f"pseudo-counts are all their respondents, {d['cov England x group']:.3f} when they "
        "are what their children's data carry under the model) and the per-split design "
        f"effect over Kish ({kish['cov England x group']:.3f} without it). National totals of the 18 minority groups "
        f"combined are off by {d['rel bias, 18 minority groups combined']:+.3f}; single "
        f"groups' bias is within its Monte Carlo noise (largest: {worst['ethnic_group']} "
        f"{worst['rel_bias']:+.3f}, MC SE {worst['rel_bias_mc_se']:.3f}; "
        f"{int(d['groups with abs bias > 0.03 + 2 MC SE'])} group(s) beyond 0.03 + 2 MC SE). "
        "The split is only as good as the weights: with response classes estimated from "
        "the sample (empty classes lose their people to others) the minority total is "
        f"{est['rel bias, 18 minority groups combined']:+.3f}, and with stratum-only weights "
        f"(the ASCS as published) {raw['rel bias, 18 minority groups combined']:+.3f}, with "
        f"England x group coverage {raw['cov England x group']:.2f}.\n\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--no-england", action="store_true")
    args = ap.parse_args(argv)
    replicates = 4 if args.quick else REPLICATES
    from _sections import load1, machine_line, write_section

    import unmetneed as um
    from unmetneed.estimates import council_funded as cf

    load_before = load1()
    wall = time.perf_counter()
    results, national, info = simulation(um, cf, replicates)
    sim_seconds = time.perf_counter() - wall
    table = summarise(results)
    print(table.to_string())
    nat = national.assign(rel=lambda t: t["estimate"] / t["truth"] - 1).groupby("ethnic_group").agg(
        truth=("truth", "mean"), rel_bias=("rel", "mean"),
        rel_bias_mc_se=("rel", lambda r: float(r.std(ddof=1) / np.sqrt(len(r)))),
        coverage=("covered", "mean"), respondents=("n", "mean")).reset_index()
    nat["ethnic_group"] = nat["ethnic_group"].astype(str).str.split(": ").str[-1]
    print(nat.to_string())
    alphas = np.array(info["alphas"])
    england_text = ""
    if not args.no_england:
        eng_table, eng_info = synthetic_england(um)
        print(eng_table.to_string(), eng_info)
        eth = eng_info["ethnic_group"]
        ethnic = eng_table[(eng_table["by"] == "ethnic_group")
                           & ~eng_table["group"].str.startswith("English")]
        minorities = float(ethnic["estimate"].sum() / ethnic["truth_scaled"].sum() - 1)
        strengths = ", ".join(f"{np.median(list(d.values())):.3g}"
                              for d in eth["alphas"].values())
        england_text = (
            "### The synthetic England (one run)\n\n"
            "`um.estimate_council_funded(eng.surveys['ascs'], eng.admin, by=..., "
            f"allow_empty=True)`, 1,000 draws; {eng_info['respondents']:,} respondents; by "
            f"ethnic group {eth['seconds']:.1f} s, median strengths over the splits "
            f"(setting x age, region, council, cell) {strengths}; admin cells without "
            f"respondents: {eth['empty']}. Council x ethnic group rows with 0 respondents: "
            f"{eng_info['area_rows_n0']:,} of {eng_info['area_rows']:,}, of which "
            f"{eng_info['n0_zero_width']} have a zero-width interval. Truth: "
            "`eng.truth['by_<group>']` council_funded (national only; setting `all` where the "
            f"table has settings), scaled by {eng_info['scale']:.4f} to the admin total (the "
            "truth and the admin counts differ slightly in what they cover).\n\n"
            + md(eng_table) + "\n\n"
            f"Coverage {eng_table['covered'].mean():.2f} over {len(eng_table)} national "
            f"groups; max |relative error| {eng_table['rel_error'].abs().max():.3f}. "
            "The synthetic England's ASCS has lower response for minority groups (logit "
            "-0.35) and for men, and weights by stratum only (eligible / respondents), as the "
            "ASCS publishes them, so its weighted composition under-represents minorities "
            "and the split inherits that: minority groups combined "
            f"{minorities:+.3f} against the truth. This is the 'unadjusted weights' row of "
            "the simulation, not a fault of the split; the fix is weights adjusted to the "
            "councils' client records by ethnic group (which the records hold).\n\n")
    text = (
        "## ascs_composition\n\n"
        f"Run {time.strftime('%Y-%m-%d %H:%M')} by `python benchmarks/ascs_composition.py` "
        f"(seed {SEED}, {replicates} replicates, {DRAWS} draws each; simulation "
        f"{sim_seconds:.0f} s wall). Machine: {machine_line()}; load "
        f"{load_before:.1f}→{load1():.1f}.\n\n"
        "`um.estimate_council_funded`: admin council-funded counts (council x setting x age "
        "group) split by ethnic group with the ASCS composition (stick-breaking Beta "
        "hierarchy England > region > council > cell, Kish pseudo-counts with a design effect "
        "per split, strengths by marginal likelihood, multinomial counts; "
        "docs/methods/council-funded.md). "
        f"Generator (benchmarks/ascs_composition.py): {N_REGIONS} regions x {PER_REGION} "
        "councils x 4 admin cells, 19 groups, council effects on composition the region does "
        "not explain, 15% sample per stratum (council x user group), response by broad ethnic "
        "group 22-40% and a council factor; weights = stratum base weight / the true "
        "response probability (a correct non-response adjustment; variants: rates estimated by "
        "stratum x broad group, region x user group x broad group for small classes, and "
        f"stratum-only weights); respondents per replicate {min(info['respondents']):,}–"
        f"{max(info['respondents']):,}; council x group rows with 0-3 respondents "
        f"{np.mean(info['tiny']):.0%}. Median strength over the 18 splits (mean over replicates): "
        f"setting x age {alphas[:, 0].mean():.3g}, region {alphas[:, 1].mean():.3g}, council "
        f"{alphas[:, 2].mean():.3g}, cell {alphas[:, 3].mean():.3g}. Targets: coverage 0.85–0.95, |relative bias| of national "
        "group totals ≤ 0.03.\n\n"
        "### Variants (coverage of 90% intervals; RMSE ratio < 1 = better than direct)\n\n"
        + md(table) + "\n\n"
        "### Default, England by ethnic group (over replicates)\n\n" + md(nat) + "\n\n"
        + reading(table, nat)
        + england_text)
    print(text)
    if not (args.quick or args.no_write):
        write_section("ascs_composition", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
