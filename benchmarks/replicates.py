"""Replicate designs of a raked design, re-raking every replicate (issue 15), beside R ``survey``.

Workload: the ``raking`` workload at ``--rows`` (default 100,000) respondents
with five margins (area 150, age 10, sex 2, ethnic 19, disability 3), placed in
300 PSUs (seeded, unequal sizes; unstratified, as JK1 requires). Timed, per method:

* unmetneed: ``um.rake(design.replicate(method), margins, tol=1e-8)`` -- the
  replicate weights are made, then every replicate is raked to the margins
  along with the full-sample weights (as R does for a replicate design) --
  and the raked replicate design's ``mean("y", by="area")``;
* R: ``as.svrepdesign(des, type=)`` then ``rake(rep, ...)`` and
  ``svyby(~y, ~area, ., svymean)`` in one Rscript process (only the calls
  timed, with ``system.time``).

Methods: ``jk1`` (300 replicates) and ``bootstrap`` with 500 replicates (R:
``type="subbootstrap"``, Rao-Wu; different random numbers, so only times and
the SEs' order of magnitude compare). For jk1, whose replicates are
deterministic, the SEs of the 150 area means are compared with R's.

    .venv/bin/python benchmarks/replicates.py [--rows N] [--repeats K] [--no-r] [--no-write]
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
sys.path.insert(0, str(BENCH_DIR.parent / "src"))
import workloads as W  # noqa: E402

import unmetneed as um  # noqa: E402

MARGINS = list(W.MARGIN_SIZES)
STRATA, PSUS_PER_STRATUM = 30, 10
BOOTSTRAP_REPLICATES = 500


def workload(rows: int) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    data = W.load(W.ensure_data("raking", rows))
    df = pd.DataFrame({n: pd.Categorical.from_codes(data[n].astype("int64"), W.labels(n)) for n in MARGINS})
    df["w"], df["y"] = data["w"], data["y"]
    rng = np.random.default_rng(20261205)
    sizes = rng.gamma(2.0, 1.0, STRATA * PSUS_PER_STRATUM)
    psu = rng.choice(sizes.size, size=rows, p=sizes / sizes.sum())
    df["psu"] = [f"P{p:03d}" for p in psu]
    totals = {n: pd.Series(data[f"total__{n}"], index=pd.Index(W.labels(n), name=n)) for n in MARGINS}
    return df, totals


def ours(df: pd.DataFrame, totals: dict[str, pd.Series], method: str, repeats: int) -> dict:
    design = um.SurveyDesign(df, weights="w", clusters="psu")
    margins = um.Margins(dict(totals))
    kwargs = {"n_replicates": BOOTSTRAP_REPLICATES, "seed": 1} if method == "bootstrap" else {}

    def call() -> tuple[float, float, object]:
        t0, c0 = time.perf_counter(), time.process_time()
        raked = um.rake(design.replicate(method, **kwargs), margins, tol=1e-8).design
        t1, c1 = time.perf_counter(), time.process_time()
        est = raked.mean("y", by="area")
        return t1 - t0, c1 - c0, (est, time.perf_counter() - t1)

    call()  # warm-up
    runs = [call() for _ in range(repeats)]
    est, mean_s = runs[-1][2]
    return {
        "wall": statistics.median(r[0] for r in runs),
        "cpu": statistics.median(r[1] for r in runs),
        "mean_wall": mean_s,
        "replicates": int(design.replicate(method, **kwargs).replicate_weights.shape[1]),
        "se": est.to_frame().set_index("area")["se"],
    }


R_SCRIPT = r"""
suppressMessages(library(survey))
args <- commandArgs(TRUE)
df <- read.csv(args[1], stringsAsFactors = TRUE)
pop <- jsonlite::fromJSON(args[2])
method <- args[3]; repeats <- as.integer(args[4])
des <- svydesign(ids = ~psu, weights = ~w, data = df)
margins <- lapply(names(pop), function(n) as.formula(paste0("~", n)))
tables <- lapply(names(pop), function(n) {
  t <- data.frame(names(pop[[n]]), unlist(pop[[n]])); names(t) <- c(n, "Freq"); t })
times <- c(); mean_times <- c()
for (i in seq_len(repeats + 1)) {
  t <- system.time({
    rep <- if (method == "jk1") as.svrepdesign(des, type = "JK1") else
      as.svrepdesign(des, type = "subbootstrap", replicates = 500)
    raked <- rake(rep, margins, tables, control = list(maxit = 100, epsilon = 1e-8))
  })
  m <- system.time(est <- svyby(~y, ~area, raked, svymean))
  if (i > 1) { times <- c(times, t[["elapsed"]]); mean_times <- c(mean_times, m[["elapsed"]]) }
}
cpu <- t[["user.self"]] + t[["sys.self"]]
cat(jsonlite::toJSON(list(wall = median(times), cpu = cpu, mean_wall = median(mean_times),
  area = as.character(est$area), se = as.numeric(SE(est))), digits = 17, auto_unbox = TRUE))
"""


def r_run(df: pd.DataFrame, totals: dict[str, pd.Series], method: str, repeats: int, timeout: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data_path, pop_path, script = (Path(tmp) / n for n in ("data.csv", "pop.json", "run.R"))
        df.to_csv(data_path, index=False)
        pop_path.write_text(json.dumps({n: {str(k): float(v) for k, v in s.items()} for n, s in totals.items()}))
        script.write_text(R_SCRIPT)
        out = subprocess.run(["Rscript", str(script), str(data_path), str(pop_path), method, str(repeats)],
                             capture_output=True, text=True, timeout=timeout, check=True,
                             env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    result = json.loads(out.stdout)
    result["se"] = pd.Series(result.pop("se"), index=result.pop("area"))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--r-timeout", type=int, default=3600)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    from _sections import load1, machine_line, write_section

    df, totals = workload(args.rows)
    load_start = load1()
    rows = []
    for method in ("jk1", "bootstrap"):
        mine = ours(df, totals, method, args.repeats)
        row = {"method": method, "replicates": mine["replicates"], "ours": mine}
        if not args.no_r:
            try:
                row["R"] = r_run(df, totals, method, 1, args.r_timeout)
            except (subprocess.SubprocessError, OSError) as exc:  # R missing or too slow
                row["R_error"] = str(exc)[:200]
        rows.append(row)
        print(method, {k: v for k, v in mine.items() if k != "se"}, flush=True)
    lines = [
        "## replicates", "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')} by `python benchmarks/replicates.py --rows {args.rows} "
        f"--repeats {args.repeats}`. Machine: {machine_line()}; load {load_start:.1f} at start, "
        f"{load1():.1f} at end.", "",
        f"A raked design's replicate variance with every replicate re-raked: {args.rows:,} respondents "
        f"(the `raking` workload) in {STRATA * PSUS_PER_STRATUM} PSUs (unstratified), raked to five margins "
        "(area 150, age 10, sex 2, ethnic 19, disability 3; tol 1e-8). Timed: making the replicate "
        "weights and raking the full sample and every replicate (`um.rake(design.replicate(m), "
        "margins)`; R: `rake(as.svrepdesign(des, type=), ...)`); then, separately, the 150 area means "
        "with replicate SEs (`mean('y', by='area')`; R `svyby(~y, ~area, ., svymean)`). unmetneed: "
        f"median of {args.repeats} after a warm-up; R: one call after a warm-up. Bootstrap: Rao-Wu, "
        f"{BOOTSTRAP_REPLICATES} replicates (R `subbootstrap`), different random numbers.", "",
        "| method | replicates | unmetneed s (CPU s) | R s (CPU s) | ratio | area means: unmetneed s / R s "
        "| max rel. diff of the 150 SEs vs R |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        mine, r = row["ours"], row.get("R")
        if r is not None:
            diff = float(np.max(np.abs(mine["se"].reindex(r["se"].index).to_numpy() / r["se"].to_numpy() - 1)))
            diff_text = f"{diff:.1e}" if row["method"] == "jk1" else f"(other random numbers: {diff:.2f})"
            lines.append(f"| {row['method']} | {row['replicates']} | {mine['wall']:.3f} ({mine['cpu']:.3f}) | "
                         f"{r['wall']:.2f} ({r['cpu']:.2f}) | {r['wall'] / mine['wall']:.0f}x | "
                         f"{mine['mean_wall']:.3f} / {r['mean_wall']:.2f} | {diff_text} |")
        else:
            lines.append(f"| {row['method']} | {row['replicates']} | {mine['wall']:.3f} ({mine['cpu']:.3f}) | "
                         f"{row.get('R_error', 'not run')} | | {mine['mean_wall']:.3f} / | |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section("replicates", text)


if __name__ == "__main__":
    main()
