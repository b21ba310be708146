"""Binomial GLMM fit: unmetneed vs lme4::glmer vs statsmodels, same data, same run.

Model: ``y ~ sex + x + (1|area) + (1|age) + (1|ethnic)`` (150 areas, 10 age
bands, 19 ethnic groups; ``x`` an area-level covariate), simulated with a fixed
seed at 20,000 and 100,000 respondents.

* unmetneed: ``um.MultilevelModel(formula, df).fit()`` (construction, which
  collapses rows to cells, included) and ``fit.draws(1000)`` timed separately.
* lme4: ``glmer(..., family=binomial, control=glmerControl(optimizer="bobyqa"))``
  on the individual rows and on aggregated cells ``cbind(k, n - k)``; only the
  glmer call is timed (``system.time`` inside R).
* statsmodels: ``BinomialBayesMixedGLM.from_formula(...).fit_vb()`` (the
  construction is reported as setup).

Every tool runs in its own subprocess (this script with ``--child``, or
Rscript): peak RSS and the rise of the resident high-water mark during the
timed call (reset through ``/proc/self/clear_refs``). Wall time (perf_counter)
and CPU time (process_time; R: user + system) are medians of the timed calls
after one warm-up; the 1-minute load average is recorded before and after.

    python benchmarks/mrp_fit.py            # 20,000 and 100,000, writes ## mrp_fit
    python benchmarks/mrp_fit.py --quick    # 20,000 only, 3 repeats, no write
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
CACHE = BENCH_DIR / ".cache" / "mrp_fit"
SEED = 20261126
FORMULA = "y ~ sex + x + (1|area) + (1|age) + (1|ethnic)"
TRUE = {"intercept": -2.0, "sex_M": 0.3, "x": 0.4, "sd_area": 0.3, "sd_age": 0.7, "sd_ethnic": 0.4}
N_AREA, N_AGE, N_ETHNIC = 150, 10, 19


# ----------------------------------------------------------------------------- data
def simulate(n: int, seed: int = SEED) -> pd.DataFrame:
    """n respondents; unequal area sizes and ethnic shares, as in a national survey."""
    rng = np.random.default_rng(seed)
    rng_fixed = np.random.default_rng(seed + 1)  # same population/effects at every n
    area_w = rng_fixed.gamma(4.0, 1.0, N_AREA)
    eth_w = np.r_[40.0, rng_fixed.gamma(0.8, 1.0, N_ETHNIC - 1)]
    age_w = rng_fixed.uniform(0.7, 1.3, N_AGE)
    x_area = rng_fixed.standard_normal(N_AREA)
    b_area = rng_fixed.normal(0, TRUE["sd_area"], N_AREA)
    b_age = rng_fixed.normal(0, TRUE["sd_age"], N_AGE)
    b_eth = rng_fixed.normal(0, TRUE["sd_ethnic"], N_ETHNIC)
    area = rng.choice(N_AREA, n, p=area_w / area_w.sum())
    age = rng.choice(N_AGE, n, p=age_w / age_w.sum())
    eth = rng.choice(N_ETHNIC, n, p=eth_w / eth_w.sum())
    male = rng.random(n) < 0.48
    eta = (TRUE["intercept"] + TRUE["sex_M"] * male + TRUE["x"] * x_area[area]
           + b_area[area] + b_age[age] + b_eth[eth])
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    return pd.DataFrame({
        "y": y,
        "sex": np.where(male, "M", "F"),
        "x": np.round(x_area[area], 6),
        "area": np.char.add("A", np.char.zfill(area.astype(str), 3)),
        "age": np.char.add("G", np.char.zfill(age.astype(str), 2)),
        "ethnic": np.char.add("E", np.char.zfill(eth.astype(str), 2)),
    })


def data_paths(n: int) -> tuple[Path, Path]:
    """Cached CSVs of the rows and of the aggregated cells (written once)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    rows, cells = CACHE / f"rows_{n}.csv", CACHE / f"cells_{n}.csv"
    if not rows.exists() or not cells.exists():
        df = simulate(n)
        df.to_csv(rows, index=False)
        agg = (df.groupby(["area", "age", "ethnic", "sex", "x"], observed=True)["y"]
               .agg(k="sum", n="size").reset_index())
        agg.to_csv(cells, index=False)
    return rows, cells


# ----------------------------------------------------------------------------- memory
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_hwm() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def measure(fn, repeats: int):
    """(result, stats): one warm-up, then `repeats` timed calls; memory rise per call."""
    import gc

    result = fn()
    walls, cpus, rises = [], [], []
    for _ in range(repeats):
        del result
        gc.collect()
        base = _status_kb("VmRSS")
        _reset_hwm()
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        t1, c1 = time.perf_counter(), time.process_time()
        walls.append(t1 - t0)
        cpus.append(c1 - c0)
        rises.append((_status_kb("VmHWM") - base) / 1024)
    return result, {"wall": statistics.median(walls), "min": min(walls), "max": max(walls),
                    "cpu": statistics.median(cpus), "call_MB": max(rises), "n": repeats}


# ----------------------------------------------------------------------------- children
def child_ours(rows: Path, repeats: int) -> dict:
    import unmetneed as um

    df = pd.read_csv(rows)
    for c in ("sex", "area", "age", "ethnic"):
        df[c] = df[c].astype("category")
    out: dict = {"tool": "unmetneed", "version": um.__version__}
    load0 = os.getloadavg()[0]
    _, model_only = measure(lambda: um.MultilevelModel(FORMULA, df), repeats)
    fit, s_fit = measure(lambda: um.MultilevelModel(FORMULA, df).fit(), repeats)
    _, s_draws = measure(lambda: fit.draws(1000, seed=1), repeats)
    out.update(
        load=f"{load0:.1f}→{os.getloadavg()[0]:.1f}",
        fit=s_fit, draws=s_draws, model_s=model_only["wall"],
        cells=int(fit.model.data.cells.X.shape[0]),
        fixef=fit.fixed_effects["estimate"].to_dict(),
        sd=fit.variance_components.to_dict(),
        loglik=float(fit.loglik), converged=bool(fit.converged),
    )
    import resource

    out["peak_MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def child_statsmodels(rows: Path, repeats: int, budget: float) -> dict:
    import statsmodels
    from statsmodels.genmod.bayes_mixed_glm import BinomialBayesMixedGLM

    df = pd.read_csv(rows)
    vc = {"area": "0 + C(area)", "age": "0 + C(age)", "ethnic": "0 + C(ethnic)"}
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    model = BinomialBayesMixedGLM.from_formula("y ~ sex + x", vc, df)
    setup = time.perf_counter() - t0
    # fit_vb is slow at 1e5 rows: no warm-up, and stop repeating past the budget
    import gc

    walls, cpus, rises = [], [], []
    res = None
    for i in range(repeats):
        res = None
        gc.collect()
        base = _status_kb("VmRSS")
        _reset_hwm()
        c0, t0 = time.process_time(), time.perf_counter()
        res = model.fit_vb()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        rises.append((_status_kb("VmHWM") - base) / 1024)
        if sum(walls) + walls[-1] > budget:
            break
    import resource

    names = list(model.exog_names)
    fe = dict(zip(names, np.asarray(res.fe_mean, dtype=float), strict=True))
    sd = dict(zip(list(model.vcp_names), np.exp(np.asarray(res.vcp_mean, dtype=float)),
                  strict=True))
    return {"tool": "statsmodels", "version": statsmodels.__version__,
            "load": f"{load0:.1f}→{os.getloadavg()[0]:.1f}", "setup_s": setup,
            "fit": {"wall": statistics.median(walls), "min": min(walls), "max": max(walls),
                    "cpu": statistics.median(cpus), "call_MB": max(rises), "n": len(walls)},
            "peak_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "fixef": {"(Intercept)" if k == "Intercept" else ("sex[T.M]" if k == "sex[T.M]" else k): v
                      for k, v in fe.items()},
            "sd": sd}


R_SCRIPT = r"""
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
path <- args[1]; kind <- args[2]; repeats <- as.integer(args[3]); budget <- as.numeric(args[4])
out <- args[5]
d <- read.csv(path, stringsAsFactors = TRUE)
ctrl <- glmerControl(optimizer = "bobyqa")
hwm <- function() {
  s <- readLines("/proc/self/status"); l <- s[grepl("^VmHWM:", s)]
  as.numeric(strsplit(trimws(sub("VmHWM:", "", l)), " +")[[1]][1]) / 1024
}
rss <- function() {
  s <- readLines("/proc/self/status"); l <- s[grepl("^VmRSS:", s)]
  as.numeric(strsplit(trimws(sub("VmRSS:", "", l)), " +")[[1]][1]) / 1024
}
reset <- function() try(cat("5", file = "/proc/self/clear_refs"), silent = TRUE)
fitit <- if (kind == "rows") {
  function() glmer(y ~ sex + x + (1|area) + (1|age) + (1|ethnic), data = d,
                   family = binomial, control = ctrl)
} else {
  function() glmer(cbind(k, n - k) ~ sex + x + (1|area) + (1|age) + (1|ethnic), data = d,
                   family = binomial, control = ctrl)
}
# warm-up on a small subset (loads and JITs lme4's code paths without a full fit)
invisible(suppressWarnings(fitit.small <- glmer(
  if (kind == "rows") y ~ sex + x + (1|area) + (1|age) + (1|ethnic)
  else cbind(k, n - k) ~ sex + x + (1|area) + (1|age) + (1|ethnic),
  data = d[seq_len(min(nrow(d), 3000)), ], family = binomial, control = ctrl)))
load0 <- as.numeric(strsplit(readLines("/proc/loadavg"), " ")[[1]][1])
walls <- c(); cpus <- c(); rises <- c(); fit <- NULL
for (i in seq_len(repeats)) {
  fit <- NULL; invisible(gc())
  base <- rss(); reset()
  st <- system.time(fit <- fitit())
  walls <- c(walls, st[["elapsed"]]); cpus <- c(cpus, st[["user.self"]] + st[["sys.self"]])
  rises <- c(rises, hwm() - base)
  if (sum(walls) + walls[length(walls)] > budget) break
}
load1 <- as.numeric(strsplit(readLines("/proc/loadavg"), " ")[[1]][1])
fe <- fixef(fit); vc <- as.data.frame(VarCorr(fit))
s <- readLines("/proc/self/status"); l <- s[grepl("^VmPeak:|^VmHWM:", s)]
res <- list(tool = paste0("lme4 (", kind, ")"), version = as.character(packageVersion("lme4")),
            r = paste(R.version$major, R.version$minor, sep = "."),
            load = sprintf("%.1f→%.1f", load0, load1),
            fit = list(wall = median(walls), min = min(walls), max = max(walls),
                       cpu = median(cpus), call_MB = max(rises), n = length(walls)),
            peak_MB = hwm(),
            fixef = as.list(fe), sd = as.list(setNames(vc$sdcor, vc$grp)),
            loglik = as.numeric(logLik(fit)), rows = nrow(d),
            messages = paste(fit@optinfo$conv$lme4$messages, collapse = "; "))
writeLines(jsonlite_free <- (function(x) {
  enc <- function(v) {
    if (is.list(v)) {
      nm <- names(v)
      paste0("{", paste(sprintf('"%s": %s', nm, sapply(v, enc)), collapse = ", "), "}")
    } else if (is.character(v)) sprintf('"%s"', gsub('"', "'", v))
    else if (length(v) == 1) format(v, digits = 15) else paste0("[", paste(format(v, digits = 15), collapse = ", "), "]")
  }
  enc(x)
})(res), out)
"""


def run_r(path: Path, kind: str, repeats: int, budget: float, timeout: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "glmer.R"
        script.write_text(R_SCRIPT)
        out = Path(tmp) / "out.json"
        proc = subprocess.run(["Rscript", str(script), str(path), kind, str(repeats),
                               str(budget), str(out)], capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0 or not out.exists():
            return {"tool": f"lme4 ({kind})", "error": proc.stderr.strip()[-500:]}
        return json.loads(out.read_text())


def run_child(kind: str, rows: Path, repeats: int, budget: float, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--data", str(rows),
           "--repeats", str(repeats), "--budget", str(budget)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        return {"tool": kind, "error": proc.stderr.strip()[-800:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- comparison
def _canon(name: str) -> str:
    n = name.replace(" ", "")
    if n in ("(Intercept)", "Intercept"):
        return "intercept"
    if n.startswith("sex"):
        return "sex"
    return n


def rel_diff(a: dict, b: dict) -> tuple[float, float]:
    """Max relative difference of fixed effects and of SDs (b is the reference)."""
    fa = {_canon(k): v for k, v in a["fixef"].items()}
    fb = {_canon(k): v for k, v in b["fixef"].items()}
    fe = max(abs(fa[k] - fb[k]) / abs(fb[k]) for k in fb)
    sa, sb = a["sd"], b["sd"]
    sd = max(abs(sa[k] - sb[k]) / abs(sb[k]) for k in sb if k in sa)
    return fe, sd


def fmt(v: float | None, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "—"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}"


def render(results: dict[int, list[dict]], when: str, machine: str, repeats: int) -> str:
    lines = ["## mrp_fit", "",
             f"Run {when} by `python benchmarks/mrp_fit.py` (seed {SEED}). Machine: {machine}.", "",
             f"Model `{FORMULA}`: binomial logit GLMM, random intercepts for area (150), age "
             "(10), ethnic group (19), fixed effects sex and an area-level covariate `x`; "
             f"true values {TRUE}. `time_s` is the median wall time of the timed calls "
             f"(unmetneed: {repeats} after one warm-up; glmer: up to {repeats}, fewer when a call "
             "is long, after a warm-up fit on 3,000 rows; statsmodels: up to 3, no warm-up), "
             "`cpu_s` the median CPU time per call (process_time; R user+system; > wall means "
             "two threads), `call_MB` the largest rise of the resident high-water mark during a "
             "timed call, `peak_MB` the process's peak RSS (data, libraries and all calls), "
             "`load` the 1-minute load average before→after that tool (2 cores: a load well "
             "above 2 inflates wall time, compare cpu_s).", ""]
    for n, rows in results.items():
        lines += [f"### {n:,} respondents", "",
                  "| tool | call | time_s (median) | min | max | cpu_s | calls | call_MB | peak_MB | load | note |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        ours = next((r for r in rows if r.get("tool") == "unmetneed" and "error" not in r), None)
        glmer_rows = next((r for r in rows if r.get("tool") == "lme4 (rows)" and "error" not in r), None)
        glmer_cells = next((r for r in rows if r.get("tool") == "lme4 (cells)" and "error" not in r), None)
        for r in rows:
            if "error" in r:
                lines.append(f"| {r['tool']} | — | — | — | — | — | — | — | — | — | failed: {r['error'][-200:].replace(chr(10), ' ').replace('|', '/')} |")
                continue
            calls = [("fit", r["fit"])]
            if r["tool"] == "unmetneed":
                calls = [("`MultilevelModel(...).fit()`", r["fit"]), ("`fit.draws(1000)`", r["draws"])]
                note = (f"{r['cells']:,} cells; model construction (row→cell collapse) "
                        f"{r['model_s']:.3f} s of the fit; converged {r['converged']}")
                version = f"unmetneed {r['version']}"
            elif r["tool"].startswith("lme4"):
                calls = [("`glmer(..., bobyqa)`", r["fit"])]
                note = f"{r['rows']:,} data rows; R {r['r']}" + (
                    f"; {r['messages']}" if r.get("messages") else "")
                version = f"{r['tool']} {r['version']}"
            else:
                calls = [("`fit_vb()`", r["fit"])]
                note = f"from_formula setup {r['setup_s']:.2f} s (not in time_s); variational Bayes"
                version = f"statsmodels {r['version']}"
            for i, (call, s) in enumerate(calls):
                lines.append(
                    f"| {version if i == 0 else ''} | {call} | {fmt(s['wall'])} | {fmt(s['min'])} | "
                    f"{fmt(s['max'])} | {fmt(s['cpu'])} | {s['n']} | {fmt(s['call_MB'])} | "
                    f"{fmt(r['peak_MB']) if i == 0 else ''} | {r['load'] if i == 0 else ''} | "
                    f"{note if i == 0 else ''} |")
        lines.append("")
        # agreement
        if ours:
            lines += ["Agreement (max relative difference over the 3 fixed effects and over the 3 SDs):", "",
                      "| comparison | fixef | SDs |", "|---|---|---|"]
            for ref in (glmer_rows, glmer_cells):
                if ref:
                    fe, sd = rel_diff(ours, ref)
                    lines.append(f"| unmetneed vs {ref['tool']} | {fe:.2e} | {sd:.2e} |")
            if glmer_rows and glmer_cells:
                fe, sd = rel_diff(glmer_cells, glmer_rows)
                lines.append(f"| lme4 (cells) vs lme4 (rows) | {fe:.2e} | {sd:.2e} |")
            sm = next((r for r in rows if r.get("tool") == "statsmodels" and "error" not in r), None)
            if sm and glmer_rows:
                fe, sd = rel_diff(sm, glmer_rows)
                lines.append(f"| statsmodels fit_vb vs lme4 (rows) | {fe:.2e} | {sd:.2e} |")
            lines += ["", "Estimates: " + "; ".join(
                f"{r['tool']}: fixef " + ", ".join(f"{_canon(k)} {v:.5f}" for k, v in r["fixef"].items())
                + " / SD " + ", ".join(f"{k} {v:.5f}" for k, v in r["sd"].items())
                for r in rows if "error" not in r) + ".", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="20,000 rows only, 3 repeats, no write")
    ap.add_argument("--sizes", default="20000,100000")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=240.0,
                    help="per slow tool and size: stop repeating when the next call would pass it (s)")
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--no-statsmodels", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--timeout", type=float, default=1800)
    ap.add_argument("--child", choices=["unmetneed", "statsmodels"])
    ap.add_argument("--data")
    args = ap.parse_args(argv)
    if args.child:
        fn = child_ours if args.child == "unmetneed" else child_statsmodels
        res = fn(Path(args.data), args.repeats) if args.child == "unmetneed" else \
            fn(Path(args.data), min(args.repeats, 3), args.budget)
        print(json.dumps(res))
        return 0
    from _sections import machine_line, write_section

    sizes = [20000] if args.quick else [int(s) for s in args.sizes.split(",")]
    repeats = 3 if args.quick else args.repeats
    results: dict[int, list[dict]] = {}
    for n in sizes:
        rows_csv, cells_csv = data_paths(n)
        res = []
        print(f"[{n:,}] unmetneed ...", flush=True)
        res.append(run_child("unmetneed", rows_csv, repeats, args.budget, args.timeout))
        print(json.dumps(res[-1])[:400], flush=True)
        if not args.no_r:
            for kind, path in (("cells", cells_csv), ("rows", rows_csv)):
                print(f"[{n:,}] glmer {kind} ...", flush=True)
                try:
                    res.append(run_r(path, kind, repeats, args.budget, args.timeout))
                except subprocess.TimeoutExpired:
                    res.append({"tool": f"lme4 ({kind})", "error": f"timeout {args.timeout} s"})
                print(json.dumps(res[-1])[:400], flush=True)
        if not args.no_statsmodels:
            print(f"[{n:,}] statsmodels fit_vb ...", flush=True)
            try:
                res.append(run_child("statsmodels", rows_csv, repeats, args.budget, args.timeout))
            except subprocess.TimeoutExpired:
                res.append({"tool": "statsmodels", "error": f"timeout {args.timeout} s"})
            print(json.dumps(res[-1])[:400], flush=True)
        results[n] = res
    when = time.strftime("%Y-%m-%d %H:%M")
    text = render(results, when, machine_line(), repeats)
    print(text)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / ("results_quick.json" if args.quick else "results.json")).write_text(
        json.dumps(results, indent=1, default=str))
    if not (args.quick or args.no_write):
        write_section("mrp_fit", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
