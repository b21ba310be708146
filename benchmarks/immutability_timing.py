"""What the design's own copy of the data costs, at 1,000,000 rows (issue 16).

Times, in this process, the steps that copy or read the data: building a
``SurveyDesign`` (it keeps its own deep copy), reading ``design.data``, a cold
``mean("y", by="area")`` with Taylor SEs (the ``domain_means`` workload) and a
cold ``rake`` to five margins (the ``raking`` workload). Median of ``--repeats``
calls after one warm-up.

    .venv/bin/python benchmarks/immutability_timing.py [--rows N] [--repeats K]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads as W  # noqa: E402

import unmetneed as um  # noqa: E402

MARGINS = list(W.MARGIN_SIZES)


def _median_seconds(call, repeats: int) -> float:
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    data = W.load(W.ensure_data("domain_means", args.rows))
    df = pd.DataFrame({k: data[k] for k in ("stratum", "psu", "area", "w", "y")})

    def build() -> um.SurveyDesign:
        return um.SurveyDesign(df, weights="w", strata="stratum", clusters="psu", nest=True)

    design = build()

    def domain_means() -> object:
        design._cache.clear()  # noqa: SLF001 - a cold call, as benchmarks/run.py times it
        return design.mean("y", by="area")

    wdata = W.load(W.ensure_data("raking", args.rows))
    wdf = pd.DataFrame({n: pd.Categorical.from_codes(wdata[n].astype("int64"), W.labels(n))
                        for n in MARGINS})
    wdf["w"] = wdata["w"]
    series = {n: pd.Series(wdata[f"total__{n}"], index=pd.Index(W.labels(n), name=n))
              for n in MARGINS}
    wdesign = um.SurveyDesign(wdf, weights="w")

    def rake() -> object:
        wdesign._cache.clear()  # noqa: SLF001 - a cold call
        return um.rake(wdesign, um.Margins(dict(series)), tol=1e-8)

    rows = {
        "SurveyDesign(...) build": _median_seconds(build, args.repeats),
        "design.data": _median_seconds(lambda: design.data, args.repeats),
        "mean('y', by='area')": _median_seconds(domain_means, args.repeats),
        "rake, 5 margins": _median_seconds(rake, args.repeats),
    }
    print(f"{args.rows:,} rows, median of {args.repeats} (pandas {pd.__version__})")
    for name, seconds in rows.items():
        print(f"  {name:<28} {seconds:8.4f} s")


if __name__ == "__main__":
    main()
