"""Simulation-based calibration of ``MultilevelFit.draws`` on every case of ``tests/mrp/sbc_cases.py``.

    python benchmarks/sbc.py                 # 400 replicates per case, writes ## sbc
    python benchmarks/sbc.py --reps 50 --no-write

Each replicate draws every SD from the exponential(1) prior the draws use, the
fixed effects from a normal wide against their posterior, the data from the
model, fits it and takes 99 draws; the rank of each true value among them
should be uniform on 0..99. Reported per quantity: mean scaled rank (0.5),
chi-square over 10 bins with its p-value, and the share of ranks in the outer
10% (0.10; more means intervals too narrow, fewer too wide).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))
sys.path.insert(0, str(BENCH_DIR.parent / "tests" / "mrp"))

import sbc_cases  # noqa: E402

DRAWS = 99


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=400)
    ap.add_argument("--seed", type=int, default=20261204)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    from _sections import load1, machine_line, write_section

    parts = [
        "## sbc", "",
        f"Run {time.strftime('%Y-%m-%d %H:%M')} by `python benchmarks/sbc.py --reps {args.reps}` "
        f"(seed {args.seed}). Machine: {machine_line()}; load at start {load1():.1f}.", "",
        "Simulation-based calibration (Talts et al. 2018) of `fit.draws()`: per replicate, SDs "
        "from the exponential(1) prior, fixed effects from a wide normal, binary data from the "
        f"model, `MultilevelModel(...).fit().draws({DRAWS})`, and the rank of each true value among "
        "the draws (levels without respondents draw their effect from N(0, sd²), as "
        "poststratification does). Uniform ranks: mean 0.5, 10% in the outer 10%, chi-square on "
        "10 bins with 9 df.", "",
    ]
    worst = 1.0
    for case in sbc_cases.CASES:
        t0 = time.perf_counter()
        ranks = sbc_cases.ranks(case, args.reps, DRAWS, seed=args.seed)
        table = sbc_cases.uniformity(ranks, DRAWS)
        seconds = time.perf_counter() - t0
        worst = min(worst, float(table["p_value"].min()))
        parts += [f"### {case.name}: factors with {list(case.levels)} levels, "
                  f"{case.respondents:,} respondents"
                  + (f", factor g{case.tiny_factor}'s levels with 0–3 respondents"
                     if case.tiny_factor is not None else "")
                  + f" ({seconds:.0f} s; data sets the model refused and were redrawn: "
                  f"{ranks.attrs['refused']})", "",
                  "| quantity | mean rank | outer 10% | chi² | p |", "|---|---|---|---|---|"]
        parts += [f"| {r.quantity} | {r.mean_rank:.3f} | {r.share_in_outer_10pct:.3f} | "
                  f"{r.chi2:.1f} | {r.p_value:.3f} |" for r in table.itertuples()]
        parts.append("")
        print(case.name, f"{seconds:.0f} s", flush=True)
        print(table.drop(columns="bin_counts").round(3).to_string(), flush=True)
    n_tests = sum(len(c.levels) * 3 + 4 for c in sbc_cases.CASES)
    parts += [f"Smallest p-value over all {n_tests} rank tests: {worst:.4f} "
              f"(Bonferroni 5% bound {0.05 / n_tests:.4f}).", ""]
    text = "\n".join(parts)
    print(text)
    if not args.no_write:
        write_section("sbc", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
