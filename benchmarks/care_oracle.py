"""What the best possible model achieves: the oracle Bayes check behind issue 10's per-unit targets.

``care_simulation.py`` measures MRP (``fit_care_model`` + ``populations_by``)
against each generator's truth. Some of issue 10's targets are about single
councils ("no council covered in fewer than 60% of the draws", council
relative bias within 5%). This script asks how far *any* model-based
estimator can reach them on the same surveys, by running the estimator that
knows more than any real one can:

* the **oracle** knows the generating model exactly -- every fixed effect,
  every ethnic-group effect, the interaction, and the SD of the council
  effects -- and only the council effects ``u`` themselves are unknown. Its
  prior for each council's effect on link ``L`` is the true ``N(0, sigma_L^2)``
  and its posterior is exact: a 1-D grid (561 points over +-7 prior SDs) per
  council and link, ``p(u | y) ~ N(u; 0, sigma^2) prod_i Bernoulli(y_i;
  expit(eta0_i + u))``, where ``eta0_i`` is the true linear predictor of the
  respondent's cell without the council effect. Draws of ``u`` (400 per
  council, link by link: the likelihood factorises over the chain's links and
  the priors are independent) go through the true cell probabilities and the
  population counts, exactly as MRP's draws do. Its intervals are the 5% and
  95% quantiles of the draws and its point estimate their mean.

* A second oracle for the ethnic groups (shires only): it knows the council
  effects and each detailed group's broad-group effect, and not the detailed
  group's deviation from it (prior: the true ``N(0, ethnic_detail_sd^2)``);
  compared with MRP by ethnic group. Each oracle is scored only at the level
  whose effects it does not know (and in total).
* **shire_a / shire_b** (every link: need, help, paid, council). The truth is
  the realised population, so each draw adds the population's binomial
  variation ``N(0, sum_c N_c q_c (1 - q_c))`` per council and quantity.
* **synthetic_england** (``need`` only): the household probability of need
  depends on the council effects of need, help and paid (the conditioning on
  not living in a care home); the oracle knows the effects of help and paid and
  not that of need. The truth is the expected household count, so no
  population variation is added.

Because this posterior is exact for the generating process, its coverage
averaged over councils is 90% by construction; what it shows is the spread of
*conditional* coverage over single councils, which is a property of
shrinkage with the information a council's respondents carry, not of any
modelling choice: a council whose true effect lies far out gets shrunk towards
the others in every replicate. The surveys are the same as
``care_simulation.py``'s (``survey(seed + r)``), so its saved MRP records are
compared council by council.

Run: ``python benchmarks/care_oracle.py --reps 20`` (a few seconds a
replicate); writes the ``care_oracle`` section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit, logit

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "src"))

import care_generators as cg  # noqa: E402
from _sections import write_section  # noqa: E402

CACHE = BENCH_DIR / ".cache" / "care_oracle"
MRP_RECORDS = BENCH_DIR / ".cache" / "care_simulation"
DRAWS = 400
GRID = np.linspace(-7.0, 7.0, 561)  # in prior SDs
LINKS = ("need", "help", "paid", "council")
QUANTITIES = ("need", "council_funded", "self_funded", "unpaid_only", "unmet")
LEVEL = 0.9


def link_data(survey: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Row mask and 0/1 outcome of each link of the chain (as fit_care_model defines them)."""
    need = survey["need"].to_numpy() == 1
    help_ = survey["help"].astype("object").to_numpy()
    payer = survey["payer"].astype("object").to_numpy()
    helped = need & np.isin(help_, ["paid", "unpaid_only"])
    paid = need & (help_ == "paid")
    council = paid & np.isin(payer, ["council", "both"])
    return {
        "need": (np.ones(len(survey), dtype=bool), need),
        "help": (need, helped),
        "paid": (helped, paid),
        "council": (paid, council),
    }


def posterior_draws(eta0: np.ndarray, y: np.ndarray, area: np.ndarray, n_areas: int, sigma: float,
                    rng: np.random.Generator, prob=None) -> np.ndarray:
    """(areas x DRAWS) draws of each council's effect from its exact grid posterior.

    ``prob(eta0, t)`` gives the respondents' probabilities at effect ``t`` (default
    ``expit(eta0 + t)``).
    """
    t = sigma * GRID
    if prob is None:
        x = eta0[:, None] + t[None, :]
        loglik = np.where(y[:, None], -np.logaddexp(0.0, -x), -np.logaddexp(0.0, x))
    else:
        p = np.clip(prob(eta0[:, None], t[None, :]), 1e-300, 1 - 1e-16)
        loglik = np.where(y[:, None], np.log(p), np.log1p(-p))
    indicator = sp.csr_matrix((np.ones(area.size), (area, np.arange(area.size))), shape=(n_areas, area.size))
    log_post = np.asarray(indicator @ loglik) - 0.5 * GRID[None, :] ** 2
    w = np.exp(log_post - log_post.max(axis=1, keepdims=True))
    cdf = np.cumsum(w, axis=1)
    cdf /= cdf[:, -1:]
    step = t[1] - t[0]
    u = rng.random((n_areas, DRAWS))
    idx = np.stack([np.searchsorted(cdf[a], u[a]) for a in range(n_areas)])
    return t[np.minimum(idx, t.size - 1)] + (rng.random((n_areas, DRAWS)) - 0.5) * step


def summarise(draws: np.ndarray) -> dict[str, np.ndarray]:
    lo, hi = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2], axis=-1)
    return {"estimate": draws.mean(axis=-1), "se": draws.std(axis=-1, ddof=1), "ci_lower": lo, "ci_upper": hi}


class ShireOracle:
    """Shire oracle. ``unknown="council"``: only the council effects are unknown (prior
    N(0, council_sd^2)); ``"ethnic"``: only each detailed ethnic group's deviation from its
    broad group is unknown (prior N(0, ethnic_detail_sd^2); broad effects known)."""

    def __init__(self, name: str, unknown: str = "council") -> None:
        gen = cg.GENERATORS[name]()
        self.gen, self.config = gen, gen.config
        pop = gen.population
        cells = pop.cells
        full = pd.MultiIndex.from_product([pd.unique(cells["area_code"]), cg.AGES, cg.SEXES,
                                           [n for n, _ in cg.ETHNIC], cg.DISABILITY])
        self.keys = ["area_code", "age_band", "sex", "ethnic_group", "disability"]
        self.full = full
        self.position = full.get_indexer(pd.MultiIndex.from_frame(cells[self.keys].astype(str)))
        assert (self.position >= 0).all()
        effects = pop.notes["effects"]
        k = self.config.councils
        self.unknown = unknown
        self.area_of_cell = np.repeat(np.arange(k), len(full) // k)[self.position]
        self.counts = cells["count"].to_numpy(dtype=float)
        self.ethnic_levels = np.array([n for n, _ in cg.ETHNIC])
        self.ethnic_codes = pd.Index(self.ethnic_levels).get_indexer(cells["ethnic_group"].astype(str))
        self.area_levels = pd.unique(cells["area_code"].astype(str))
        full_shape = (k, len(cg.AGES), len(cg.SEXES), len(cg.ETHNIC), len(cg.DISABILITY))
        self.eta0 = {}
        for link in LINKS:
            eta = logit(gen.p[link])
            if unknown == "council":
                eta = eta - effects[link]["council"][:, None, None, None, None]
            else:
                deviation = effects[link]["ethnic"] - effects[link]["broad"]
                eta = eta - deviation[None, None, None, :, None]
            self.eta0[link] = np.broadcast_to(eta, full_shape).ravel()[self.position]
        if unknown == "council":
            self.unit_of_cell, self.n_units = self.area_of_cell, k
            self.sigma = {link: float(self.config.council_sd[link]) for link in LINKS}
        else:
            self.unit_of_cell, self.n_units = self.ethnic_codes, len(self.ethnic_levels)
            self.sigma = {link: float(self.config.ethnic_detail_sd) for link in LINKS}

    def cell_of(self, survey: pd.DataFrame) -> np.ndarray:
        index = pd.MultiIndex.from_frame(survey[self.keys].astype(str))
        pos = self.full.get_indexer(index)
        cell = pd.Index(self.position).get_indexer(pos)
        assert (cell >= 0).all()
        return cell

    def estimate(self, survey: pd.DataFrame, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        cell = self.cell_of(survey)
        u = {}
        for link, (rows, y) in link_data(survey).items():
            c = cell[rows]
            u[link] = posterior_draws(self.eta0[link][c], y[rows], self.unit_of_cell[c], self.n_units,
                                      self.sigma[link], rng)
        a, unit = self.area_of_cell, self.unit_of_cell
        p = {link: expit(self.eta0[link][:, None] + u[link][unit]) for link in LINKS}  # cells x draws
        n = self.counts[:, None]
        need = n * p["need"]
        helped = need * p["help"]
        paid = helped * p["paid"]
        per_cell = {
            "need": need, "council_funded": paid * p["council"], "self_funded": paid * (1 - p["council"]),
            "unpaid_only": helped * (1 - p["paid"]), "unmet": need * (1 - p["help"]),
        }
        out = {}
        levels = {"council": (a, self.area_levels),
                  "ethnic group": (self.ethnic_codes, self.ethnic_levels),
                  "total": (np.zeros_like(a), np.array(["all"]))}
        # Only the level whose effects are unknown is a fair comparison (the oracle knows the rest).
        keep = ("council" if self.unknown == "council" else "ethnic group", "total")
        for level, (codes, labels) in {k: v for k, v in levels.items() if k in keep}.items():
            indicator = sp.csr_matrix((np.ones(a.size), (codes, np.arange(a.size))),
                                      shape=(len(labels), a.size))
            rows = []
            for q, values in per_cell.items():
                totals = np.asarray(indicator @ values)
                share = values.mean(axis=1) / np.maximum(self.counts, 1e-12)
                var = indicator @ (self.counts * share * (1 - share))
                totals = totals + rng.standard_normal(totals.shape) * np.sqrt(var)[:, None]
                rows.append(pd.DataFrame({"unit": labels, "quantity": q, **summarise(totals)}))
            out[level] = pd.concat(rows, ignore_index=True)
        return out


class EnglandOracle:
    """Need only: the oracle knows every effect but the council effect of need."""

    def __init__(self) -> None:
        from unmetneed.datasets._synthetic_model import AGE_BANDS, DISABILITY, ETHNIC_GROUPS, SEXES

        gen = cg.SyntheticEngland()
        self.gen = gen
        model, state = gen.model, gen.state
        areas = gen.inputs.areas["area_code"].astype(str).to_numpy()
        self.area_levels = areas
        shape = state.settings.household.shape
        full = pd.MultiIndex.from_product([areas, list(AGE_BANDS), list(SEXES), list(ETHNIC_GROUPS),
                                           list(DISABILITY)])
        self.full = full
        self.keys = ["area_code", "age_band", "sex", "ethnic_group", "disability"]
        house = state.settings.household.astype(float).ravel()
        self.keep = np.flatnonzero(house > 0)
        self.counts = house[self.keep]
        u_true = model.area_effects.set_index("area_code")["need"].reindex(areas).to_numpy()
        from unmetneed.datasets._synthetic_model import PARAMETERS

        self.sigma = float(PARAMETERS["need"]["area_sd"])  # the prior's SD, not the realised effects

        def full_array(x: np.ndarray) -> np.ndarray:
            return np.broadcast_to(x, shape).ravel()[self.keep]

        pn = full_array(model.need)
        other = full_array(model.help * model.paid * model.residential)  # X = p_H p_P r
        self.other = other
        area_of = np.repeat(np.arange(len(areas)), int(np.prod(shape[1:])))[self.keep]
        self.area_of_cell = area_of
        self.eta0 = logit(pn) - u_true[area_of]
        self.ethnic_codes = np.asarray(np.unravel_index(self.keep, shape)[3])
        self.ethnic_levels = np.asarray(list(ETHNIC_GROUPS), dtype=object)

    @staticmethod
    def household_need(pn: np.ndarray, other: np.ndarray) -> np.ndarray:
        return pn * (1 - other) / (1 - pn * other)

    def estimate(self, survey: pd.DataFrame, rng: np.random.Generator) -> dict[str, pd.DataFrame]:
        index = pd.MultiIndex.from_frame(survey[self.keys].astype(str))
        pos = self.full.get_indexer(index)
        cell = pd.Index(self.keep).get_indexer(pos)
        assert (cell >= 0).all()
        y = survey["need"].to_numpy() == 1
        other = self.other[cell]

        def prob(eta0: np.ndarray, t: np.ndarray) -> np.ndarray:
            return self.household_need(expit(eta0 + t), other[:, None])

        u = posterior_draws(self.eta0[cell], y, self.area_of_cell[cell], len(self.area_levels), self.sigma, rng,
                            prob=prob)
        a = self.area_of_cell
        need = self.counts[:, None] * self.household_need(expit(self.eta0[:, None] + u[a]), self.other[:, None])
        out = {}
        for level, (codes, labels) in {"council": (a, self.area_levels),
                                       "total": (np.zeros_like(a), np.array(["all"]))}.items():
            indicator = sp.csr_matrix((np.ones(a.size), (codes, np.arange(a.size))),
                                      shape=(len(labels), a.size))
            totals = np.asarray(indicator @ need)
            out[level] = pd.DataFrame({"unit": labels, "quantity": "need", **summarise(totals)})
        return out


def truth_long(population, level: str) -> pd.DataFrame:
    by = {"council": ["area_code"], "ethnic group": ["ethnic_group"], "total": []}[level]
    t = population.truth_by(by)
    frames = []
    for q in QUANTITIES:
        s = t[q]
        unit = s.index.astype(str) if by else np.array(["all"])
        frames.append(pd.DataFrame({"unit": unit, "quantity": q, "truth": s.to_numpy()}))
    return pd.concat(frames, ignore_index=True)


def run(name: str, reps: int, seed: int, unknown: str = "council") -> pd.DataFrame:
    oracle = EnglandOracle() if name == "synthetic_england" else ShireOracle(name, unknown)
    truths = {level: truth_long(oracle.gen.population, level) for level in ("council", "ethnic group", "total")}
    rng = np.random.default_rng(seed + 999)
    records = []
    for r in range(reps):
        t0 = time.perf_counter()
        survey = oracle.gen.survey(seed + r)
        est = oracle.estimate(survey, rng)
        for level, table in est.items():
            merged = table.merge(truths[level], on=["unit", "quantity"], how="left", validate="1:1")
            records.append(merged.assign(rep=r, level=level, method=f"oracle ({unknown})", n=len(survey)))
        print(f"{name} rep {r + 1}/{reps}: n={len(survey):,} {time.perf_counter() - t0:.1f} s", flush=True)
    return pd.concat(records, ignore_index=True).assign(generator=name)


def unit_metrics(rec: pd.DataFrame) -> pd.DataFrame:
    ok = rec["truth"] > 0
    rec = rec.assign(cover=(rec["ci_lower"] <= rec["truth"]) & (rec["truth"] <= rec["ci_upper"]),
                     rel=np.where(ok, (rec["estimate"] - rec["truth"]) / rec["truth"].where(ok), np.nan))
    per_unit = rec.groupby(["generator", "method", "level", "quantity", "unit"], sort=False).agg(
        cover=("cover", "mean"), rel=("rel", "mean"), rel2=("rel", lambda x: float(np.mean(x**2))))
    g = per_unit.groupby(["generator", "method", "level", "quantity"], sort=False)
    return pd.DataFrame({
        "rel_bias": g["rel"].mean(),
        "rel_rmse": np.sqrt(g["rel2"].mean()),
        "coverage": g["cover"].mean(),
        "min_unit": g["cover"].min(),
        "below_60": g["cover"].apply(lambda c: int((c < 0.6).sum())),
        "units": g["cover"].size(),
    }).reset_index()


def mrp_records(name: str, reps: int, tag: str) -> pd.DataFrame | None:
    path = MRP_RECORDS / f"records_{name}{tag}.csv"
    if not path.exists():
        return None
    rec = pd.read_csv(path)
    rec = rec[(rec["method"] == "MRP") & (rec["rep"] < reps)]
    rec.loc[rec["level"] == "total", "unit"] = "all"
    return rec[["generator", "method", "level", "quantity", "unit", "rep", "truth", "estimate", "se",
                "ci_lower", "ci_upper"]]


def render(table: pd.DataFrame, reps: int, seconds: dict) -> str:
    lines = [
        "## care_oracle", "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')} by `python benchmarks/care_oracle.py --reps {reps}` "
        f"(seconds per replicate: " + ", ".join(f"{k} {v:.1f}" for k, v in seconds.items()) + "). "
        "The **oracle (council)** knows the generating model exactly except each council's effects: exact "
        "grid posterior of every council effect under its true N(0, sigma^2) prior, draws through the true "
        "cell probabilities and population counts (see the script's notes); **oracle (ethnic)** knows "
        "everything but each detailed ethnic group's deviation from its broad group. **MRP** is `fit_care_model` + "
        "`populations_by` on the same surveys (the saved records of `care_simulation.py`). "
        "synthetic_england: need only (the oracle knows the council effects of help and paid). Columns: "
        "mean over units of the per-unit relative bias; relative RMSE; coverage of 90% intervals; smallest "
        "single-unit coverage over the replicates and the number of units covered in fewer than 60% of them. "
        "Totals are left out: the oracle shrinks towards the superpopulation's mean effect (0), while a "
        "realised set of effects averages something else (+0.044 for the synthetic England's need), which "
        "MRP's intercept absorbs; its totals are no bound on MRP's.",
        "",
        "| generator | level | quantity | method | rel. bias | rel. RMSE | coverage | min unit | units < 0.6 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table[table["level"] != "total"].itertuples():
        lines.append(f"| {r.generator} | {r.level} | {r.quantity} | {r.method} | {r.rel_bias:.3f} | "
                     f"{r.rel_rmse:.3f} | {r.coverage:.3f} | {r.min_unit:.2f} | {r.below_60} of {r.units} |")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--seed", type=int, default=7000)
    ap.add_argument("--generators", default="shire_a,shire_b,synthetic_england")
    ap.add_argument("--mrp-tag", default="_v3", help="suffix of care_simulation's saved records to compare")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--note", help="a file whose text (a reading of the table) is appended to the section")
    args = ap.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)
    frames, seconds = [], {}
    for name in args.generators.split(","):
        t0 = time.perf_counter()
        rec = run(name, args.reps, args.seed)
        if name != "synthetic_england":
            rec = pd.concat([rec, run(name, args.reps, args.seed, unknown="ethnic")], ignore_index=True)
        seconds[name] = (time.perf_counter() - t0) / args.reps
        rec.to_csv(CACHE / f"records_{name}.csv", index=False)
        frames.append(rec)
        mrp = mrp_records(name, args.reps, args.mrp_tag)
        if mrp is not None:
            quantities = rec["quantity"].unique()
            frames.append(mrp[mrp["quantity"].isin(quantities)])
    table = unit_metrics(pd.concat(frames, ignore_index=True))
    table = table.sort_values(["generator", "level", "quantity", "method"], kind="stable",
                              key=lambda s: s.map({"council": 0, "ethnic group": 1, "total": 2}).fillna(0)
                              if s.name == "level" else s)
    table.to_csv(CACHE / "metrics.csv", index=False)
    (CACHE / "info.json").write_text(json.dumps({"seconds": seconds}))
    text = render(table, args.reps, seconds)
    if args.note:
        text += "\n" + Path(args.note).read_text().strip() + "\n"
    print(text)
    if not args.no_write:
        write_section("care_oracle", text)


if __name__ == "__main__":
    main()
