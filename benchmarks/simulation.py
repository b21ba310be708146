"""Repeated-sampling check of MRP area estimates on the synthetic England.

For replicate r = 1..R a fresh general (household) survey is drawn from the
synthetic England's generator with its own seed, and need prevalence by council
(152 areas) is estimated three ways:

* **MRP**: ``um.MultilevelModel("need ~ sex + deprivation + (1|area_code) +
  (1|age_band) + (1|ethnic_group) + (1|disability)", survey).fit()`` (the
  default formula of the care model; unweighted), then
  ``fit.poststratify(eng.population, by="area_code", draws=200)``; 90% intervals
  are the 5-95% quantiles of the draws.
* **direct**: ``SurveyDesign(survey, weights="weight", strata="stratum",
  clusters="psu").mean("need", by="area_code", level=0.9)`` (Taylor SEs, t
  intervals).
* **no pooling**: a logistic regression with a fixed effect per area plus
  fixed effects for sex, age band, ethnic group and disability (maximum
  likelihood by Newton's method on a sparse design, no shrinkage), poststratified to the same frame
  by area; 90% intervals from 200 draws of the coefficients from
  N(beta_hat, cov_hat).

There is no public function to draw another survey sample: this script takes
the generator's state with ``unmetneed.datasets.synthetic.generator_state()``
(the population, care model and settings draw of the shipped files; the same
seed streams, checked against ``eng.truth``) and calls the internal
``_synthetic_surveys.general_survey`` on its household counts
(``state.settings.household``, as the shipped survey is drawn) with a new
generator per replicate.

Truth. The general survey covers private households only (its respondents'
outcomes are drawn conditional on not living in a care home). Both truths are
``eng.truth["by_area"]`` rows (synthetic England version 2): need among
household residents / household adults (``setting == "household"``, the
survey's population) and need among all adults / all adults (``setting ==
"all"``, care-home residents included); both comparisons are reported.

    python benchmarks/simulation.py            # R = 20 replicates, writes ## simulation
    python benchmarks/simulation.py --reps 50
    python benchmarks/simulation.py --quick    # R = 3, no write
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
CACHE = BENCH_DIR / ".cache" / "simulation"
SEED = 20261127
LEVEL = 0.9
DRAWS = 200
FORMULA = ("need ~ sex + deprivation + (1|area_code) + (1|age_band) + (1|ethnic_group) "
           "+ (1|disability)")


# ----------------------------------------------------------------------------- generator
def generator():
    """The shipped synthetic England's generator state (population, care model, settings)."""
    from unmetneed.datasets.synthetic import generator_state

    return generator_state()


def household_truth(state) -> pd.DataFrame:
    """Need prevalence by area: all adults and household residents only (as eng.truth's
    ``all`` and ``household`` rows, from the generator's state)."""
    from unmetneed.datasets._synthetic_model import UNITS, truth_by_setting

    units = truth_by_setting(state.settings, state.model)
    household, homes = state.settings.household, state.settings.care_home
    out = pd.DataFrame({
        "area_code": state.inputs.areas["area_code"].to_numpy(dtype=object),
        "adults": (household + homes).sum(axis=(1, 2, 3, 4)).astype(float),
        "need": units["all"]["need"].sum(axis=(1, 2, 3, 4)) / UNITS,
        "household_adults": household.sum(axis=(1, 2, 3, 4)).astype(float),
        "household_need": units["household"]["need"].sum(axis=(1, 2, 3, 4)) / UNITS,
    }).set_index("area_code")
    out["prevalence_all"] = out["need"] / out["adults"]
    out["prevalence_household"] = out["household_need"] / out["household_adults"]
    return out


def household_frame(frame, state):
    """The household rows of eng.population (the general survey's population)."""
    from unmetneed.estimates.settings import split_settings

    households, _ = split_settings(frame)
    by_area = households.totals("area_code").reindex(state.inputs.areas["area_code"].astype(str))
    assert np.array_equal(by_area.to_numpy(dtype=np.int64),
                          state.settings.household.sum(axis=(1, 2, 3, 4))), \
        "frame and generator household counts differ"
    return households


def draw_survey(state, seed: int) -> pd.DataFrame:
    from unmetneed.datasets import synthetic as syn
    from unmetneed.datasets._synthetic_surveys import general_survey

    table = general_survey(state.inputs, state.population, state.model, np.random.default_rng(seed),
                           household=state.settings.household)
    return syn._survey_frame(table)  # noqa: SLF001  (categoricals as the loaded survey)


# ----------------------------------------------------------------------------- estimators
def mrp(survey: pd.DataFrame, frames: dict, seed: int) -> dict[str, pd.DataFrame]:
    """One fit, one set of 200 draws, poststratified to each frame."""
    import unmetneed as um

    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = um.MultilevelModel(FORMULA, survey).fit()
        draws = fit.draws(DRAWS, seed=seed)
        for name, frame in frames.items():
            post = fit.poststratify(frame, by="area_code", draws=draws, seed=seed, level=LEVEL)
            t = post.summary().query("quantity == 'prevalence'").set_index("area_code")
            out[name] = t[["estimate", "ci_lower", "ci_upper"]]
    return out


def direct(survey: pd.DataFrame) -> pd.DataFrame:
    import unmetneed as um

    design = um.SurveyDesign(survey, weights="weight", strata="stratum", clusters="psu")
    t = design.mean("need", by="area_code", level=LEVEL).to_frame().set_index("area_code")
    return t[["estimate", "ci_lower", "ci_upper", "se"]]


NOPOOL_FACTORS = ("age_band", "ethnic_group", "disability")


def _logit_ml(X: sp.csr_matrix, y: np.ndarray, max_iter: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood logistic regression by Newton's method on a sparse design.

    Quasi-separated coefficients (an area with no case) stop where the
    log-likelihood no longer moves (about -15 on the logit scale).
    """
    from scipy.special import expit

    beta = np.zeros(X.shape[1])
    ll_old = -np.inf
    for _ in range(max_iter):
        mu = expit(X @ beta)
        w = mu * (1 - mu)
        H = (X.T @ X.multiply(w[:, None])).toarray()
        g = X.T @ (y - mu)
        H[np.diag_indices_from(H)] += 1e-10
        step = np.linalg.solve(H, g)
        beta = beta + step
        mu = expit(X @ beta)
        ll = float(np.sum(np.where(y > 0, np.log(np.clip(mu, 1e-300, None)),
                                   np.log(np.clip(1 - mu, 1e-300, None)))))
        if abs(ll - ll_old) < 1e-8:
            break
        ll_old = ll
    mu = expit(X @ beta)
    H = (X.T @ X.multiply((mu * (1 - mu))[:, None])).toarray()
    return beta, np.linalg.pinv(H, hermitian=True)


def no_pooling(survey: pd.DataFrame, cells: pd.DataFrame, counts: np.ndarray,
               seed: int) -> pd.DataFrame:
    """Fixed area effects + fixed sex/age/ethnic/disability; ML; poststratified by area."""
    from scipy.special import expit

    areas = pd.Index(sorted(survey["area_code"].unique()))
    levels = {f: pd.Index(survey[f].astype(str).unique()).sort_values() for f in NOPOOL_FACTORS}

    def design(df: pd.DataFrame) -> sp.csr_matrix:
        n = len(df)
        a = areas.get_indexer(df["area_code"])
        ok = a >= 0
        cols = [sp.csr_matrix((np.ones(ok.sum()), (np.flatnonzero(ok), a[ok])),
                              shape=(n, len(areas))),
                sp.csr_matrix((df["sex"].astype(str).to_numpy() == "Male").astype(float)[:, None])]
        for f in NOPOOL_FACTORS:  # treatment contrasts, first level as reference
            code = levels[f][1:].get_indexer(df[f].astype(str))
            ok = code >= 0
            cols.append(sp.csr_matrix((np.ones(ok.sum()), (np.flatnonzero(ok), code[ok])),
                                      shape=(n, len(levels[f]) - 1)))
        return sp.hstack(cols).tocsr()

    beta, cov = _logit_ml(design(survey), survey["need"].to_numpy(dtype=float))
    rng = np.random.default_rng(seed)
    w, v = np.linalg.eigh((cov + cov.T) / 2)
    root = v * np.sqrt(np.clip(w, 0, None))
    B = beta[None, :] + rng.standard_normal((DRAWS, beta.size)) @ root.T  # (D, p)
    known = areas.get_indexer(cells["area_code"]) >= 0
    Xc = design(cells.loc[known])
    cnt = counts[known]
    area_code = areas.get_indexer(cells.loc[known, "area_code"])
    G = sp.csr_matrix((cnt, (area_code, np.arange(cnt.size))), shape=(len(areas), cnt.size))
    pop = np.asarray(G.sum(axis=1)).ravel()
    point = (G @ expit(Xc @ beta)) / pop
    tot = np.zeros((len(areas), DRAWS))
    for s in range(0, DRAWS, 50):
        tot[:, s:s + 50] = G @ expit(np.asarray(Xc @ B[s:s + 50].T))
    prev = tot / pop[:, None]
    lo, hi = np.quantile(prev, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=1)
    return pd.DataFrame({"estimate": point, "ci_lower": lo, "ci_upper": hi}, index=areas)


# ----------------------------------------------------------------------------- metrics
def metrics(records: pd.DataFrame, truth_col: str) -> pd.DataFrame:
    """Bias, RMSE, coverage over areas x replicates, per method."""
    rows = []
    for method, d in records.groupby("method", sort=False):
        d = d.dropna(subset=["estimate"])
        t = d[truth_col]
        err = d["estimate"] - t
        cover = (d["ci_lower"] <= t) & (t <= d["ci_upper"])
        rows.append({
            "method": method,
            "estimates": len(d),
            "bias (pp)": 100 * err.mean(),
            "rel. bias": (err / t).mean(),
            "RMSE (pp)": 100 * np.sqrt((err ** 2).mean()),
            "rel. RMSE": np.sqrt(((err / t) ** 2).mean()),
            "mean |error| (pp)": 100 * err.abs().mean(),
            "90% coverage": cover.mean(),
            "coverage: min area": cover.groupby(d["area_code"]).mean().min(),
            "mean CI width (pp)": 100 * (d["ci_upper"] - d["ci_lower"]).mean(),
        })
    return pd.DataFrame(rows)


def md_table(df: pd.DataFrame) -> str:
    def f(v):
        if isinstance(v, str):
            return v
        if isinstance(v, (int, np.integer)):
            return f"{v:,}"
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:,.0f}"

    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "\n".join("| " + " | ".join(f(v) for v in row) + " |"
                            for row in df.itertuples(index=False))


def render(args, rec, truth, reps, n_resp, n_areas_seen, zero_se, timing, wall, cpu, load0,
           load_end, note: str = "") -> str:
    from _sections import machine_line

    m_house = metrics(rec, "truth_household")
    m_all = metrics(rec, "truth_all")
    diff = truth["prevalence_all"] - truth["prevalence_household"]
    mrp_rec = rec[rec["method"] == "MRP"]
    # MRP coverage by area size (respondents are ~proportional to household adults)
    size_q = pd.qcut(truth["household_adults"], 3, labels=["small third", "middle third", "large third"])
    cov_by = ((mrp_rec["ci_lower"] <= mrp_rec["truth_household"])
              & (mrp_rec["truth_household"] <= mrp_rec["ci_upper"])).groupby(
        mrp_rec["area_code"].map(size_q)).mean()

    when = time.strftime("%Y-%m-%d %H:%M")
    lines = [
        "## simulation", "",
        f"Run {when} by `python benchmarks/simulation.py --reps {reps}` (seeds {args.seed}..{args.seed + reps - 1}). "
        f"Machine: {machine_line()}. Whole run {wall:.0f} s wall, {cpu:.0f} s CPU, load {load0:.1f}→{load_end:.1f}; "
        f"per replicate (median) survey draw {np.median(timing['survey']):.1f} s, MRP fit + 200-draw "
        f"poststratification {np.median(timing['mrp']):.1f} s, direct {np.median(timing['direct']):.2f} s, "
        f"no pooling {np.median(timing['no_pooling']):.1f} s.", "",
        f"{reps} fresh general-survey samples from the synthetic England generator (respondents per "
        f"sample {min(n_resp):,}–{max(n_resp):,}, areas with respondents {min(n_areas_seen)}–{max(n_areas_seen)} "
        "of 152), need prevalence by area (152 councils) estimated by:", "",
        f"* **MRP** — `um.MultilevelModel(\"{FORMULA}\", survey).fit()` (unweighted), "
        "`fit.poststratify(eng.population, by=\"area_code\", draws=200)`; 90% intervals = 5–95% "
        "quantiles of the draws. **MRP, household frame**: the same fit and draws poststratified "
        "to the household rows of `eng.population` (`split_settings`: the adults of each cell "
        "living in private households), the survey's own population.",
        "* **direct** — `SurveyDesign(survey, weights=\"weight\", strata=\"stratum\", "
        "clusters=\"psu\").mean(\"need\", by=\"area_code\", level=0.9)`: Taylor SEs, t intervals "
        f"(df = PSUs − strata). Areas whose respondents all sit in one PSU get SE 0 (a degenerate "
        f"interval of width 0): {np.mean(zero_se):.1f} areas per sample on average.",
        "* **no pooling** — maximum-likelihood logistic regression with a fixed effect per area and "
        "fixed effects for sex, age band, ethnic group and disability (Newton's method on a "
        "sparse design, no shrinkage), poststratified to the same frame by area; 90% intervals from 200 draws of "
        "N(β̂, cov β̂). Areas with no case at all are quasi-separated (their area effect runs "
        "off), so their estimate is ~0.",
        "", "Areas without respondents in a sample have no direct or no-pooling estimate (left "
        "out of those rows; MRP predicts them from the covariate and the random-effect "
        "distribution and is scored on all 152). Errors are in percentage points (pp) of "
        "prevalence; relative bias / RMSE are means over areas × replicates of error / truth.", "",
        "A fresh sample is drawn with the generator's internal `general_survey` (no public "
        "function draws another sample) on the household counts of "
        "`unmetneed.datasets.synthetic.generator_state()` (the shipped population, care model "
        "and settings draw; checked equal to `eng.truth`).", "",
        "**Households vs care homes.** The general survey covers private households only, but "
        "`eng.population` includes care-home residents (`setting == \"care_home\"`, all of whom "
        "have need). Household truth below = `eng.truth[\"by_area\"]` need with `setting == "
        "\"household\"` / household adults; all-adult truth = `setting == \"all\"` need / all "
        "adults. The all-adult prevalence is higher by "
        f"{100 * diff.mean():.2f} pp on average across areas (range {100 * diff.min():.2f}–"
        f"{100 * diff.max():.2f} pp; national mean need prevalence "
        f"{100 * truth['need'].sum() / truth['adults'].sum():.2f}% all adults vs "
        f"{100 * truth['household_need'].sum() / truth['household_adults'].sum():.2f}% households). "
        "MRP on `eng.population` applies a household model to the all-adult frame, so its target "
        "is neither exactly (the care-home cells are old and disabled, and get the household "
        "rate); MRP on the household frame, the direct and the no-pooling estimates all target "
        "the household prevalence.", "",
        "### vs household truth (the survey's population)", "",
        md_table(m_house), "",
        "### vs all-adult truth (`eng.truth[\"by_area\"]`, setting all: need / adults)", "",
        md_table(m_all), "",
        "MRP 90% coverage (household truth) by area size: "
        + ", ".join(f"{k} {v:.3f}" for k, v in cov_by.items()) + ".", "",
        "Target: MRP coverage 0.85–0.95 → " + "; ".join(
            f"{m} vs {lab} truth {cov:.3f} ({'met' if 0.85 <= cov <= 0.95 else 'missed'})"
            for m, lab, cov in (
                ("MRP (household frame)", "household",
                 m_house.set_index("method").loc["MRP, household frame", "90% coverage"]),
                ("MRP (eng.population)", "household",
                 m_house.set_index("method").loc["MRP", "90% coverage"]),
                ("MRP (eng.population)", "all-adult",
                 m_all.set_index("method").loc["MRP", "90% coverage"]))) + ".", "",
    ]
    if note:
        lines.insert(3, f"({note}.)")
        lines.insert(4, "")
    return "\n".join(lines)


def summarise_saved(args, truth) -> int:
    """Render the section from saved replicate records (no new draws)."""
    rec = pd.read_csv(args.from_records)
    reps = int(rec["rep"].nunique())
    per = rec.drop_duplicates("rep").copy()
    for col in ("n_resp", "n_areas", "zero_se", "t_mrp", "t_nopool"):
        if col not in per:  # records of an older run
            per[col] = float("nan")
    if per["n_areas"].isna().all():
        per["n_areas"] = [rec.loc[(rec["rep"] == r) & (rec["method"] == "direct"), "estimate"].notna().sum()
                          for r in per["rep"]]
    text = render(args, rec, truth, reps, per["n_resp"].tolist(), per["n_areas"].tolist(),
                  per["zero_se"].tolist(),
                  {"survey": [float("nan")], "mrp": per["t_mrp"].tolist(), "direct": [float("nan")],
                   "no_pooling": per["t_nopool"].tolist()},
                  float("nan"), float("nan"), float("nan"), float("nan"),
                  note=f"summarised from `{Path(args.from_records).name}` "
                       f"(replicates saved by a run stopped early for time)")
    print(text)
    if not (args.quick or args.no_write):
        from _sections import write_section

        write_section("simulation", text)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="3 replicates, no write")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--from-records", metavar="CSV",
                    help="summarise replicates saved by an earlier (possibly interrupted) run, e.g. "
                         "benchmarks/.cache/simulation/records_partial.csv, instead of drawing")
    args = ap.parse_args(argv)
    reps = 3 if args.quick else args.reps

    import unmetneed as um
    from _sections import load1, write_section

    eng = um.datasets.load_synthetic_england()
    state = generator()
    truth = household_truth(state)
    # the rebuilt generator must be the shipped one (truth in whole 1/1024 persons: exact)
    need = eng.truth["by_area"].query("quantity == 'need'")
    for setting, column in (("all", "need"), ("household", "household_need")):
        shipped = need[need["setting"] == setting].set_index("area_code")["value"]
        gap = float(np.max(np.abs(truth[column].reindex(shipped.index.astype(str)).to_numpy()
                                  - shipped.to_numpy())))
        assert gap == 0.0, f"rebuilt generator differs from the shipped {setting} truth by {gap}"
    assert np.array_equal(state.population.counts.sum(axis=(1, 2, 3, 4)), eng.areas["adults"].to_numpy())
    frame = eng.population
    cells = frame.cells
    counts = frame.counts
    frames = {"MRP": frame, "MRP, household frame": household_frame(frame, state)}

    if args.from_records:
        return summarise_saved(args, truth)
    load0 = load1()
    t0, c0 = time.perf_counter(), time.process_time()
    records, timing = [], {"survey": [], "mrp": [], "direct": [], "no_pooling": []}
    n_resp, n_areas_seen, zero_se = [], [], []
    for r in range(reps):
        seed = args.seed + r
        s0 = time.perf_counter()
        survey = draw_survey(state, seed)
        s1 = time.perf_counter()
        est = mrp(survey, frames, seed)
        s2 = time.perf_counter()
        est["direct"] = direct(survey)
        s3 = time.perf_counter()
        est["no pooling"] = no_pooling(survey, cells, counts, seed)
        s4 = time.perf_counter()
        for k, v in zip(timing, (s1 - s0, s2 - s1, s3 - s2, s4 - s3), strict=True):
            timing[k].append(v)
        n_resp.append(len(survey))
        n_areas_seen.append(survey["area_code"].nunique())
        zero_se.append(int((est["direct"]["se"] == 0).sum()))
        for method, t in est.items():
            t = t.reindex(truth.index)
            records.append(pd.DataFrame({
                "rep": r, "method": method, "area_code": truth.index,
                "estimate": t["estimate"].to_numpy(), "ci_lower": t["ci_lower"].to_numpy(),
                "ci_upper": t["ci_upper"].to_numpy(),
                "truth_all": truth["prevalence_all"].to_numpy(),
                "truth_household": truth["prevalence_household"].to_numpy(),
                "n_resp": len(survey), "zero_se": zero_se[-1], "n_areas": n_areas_seen[-1],
                "t_mrp": s2 - s1, "t_nopool": s4 - s3,
            }))
        CACHE.mkdir(parents=True, exist_ok=True)
        pd.concat(records, ignore_index=True).to_csv(CACHE / "records_partial.csv", index=False)
        print(f"rep {r + 1}/{reps}: n={len(survey):,}, areas {n_areas_seen[-1]}, "
              f"times survey {s1 - s0:.1f} mrp {s2 - s1:.1f} direct {s3 - s2:.2f} "
              f"nopool {s4 - s3:.1f} s, load {load1():.1f}", flush=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    load_end = load1()
    rec = pd.concat(records, ignore_index=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    rec.to_csv(CACHE / ("records_quick.csv" if args.quick else "records.csv"), index=False)

    text = render(args, rec, truth, reps, n_resp, n_areas_seen, zero_se, timing, wall, cpu,
                  load0, load_end)
    print(text)
    (CACHE / ("summary_quick.json" if args.quick else "summary.json")).write_text(json.dumps({
        "household": metrics(rec, "truth_household").to_dict("records"),
        "all": metrics(rec, "truth_all").to_dict("records"),
        "reps": reps}, indent=1, default=float))
    if not (args.quick or args.no_write):
        write_section("simulation", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
