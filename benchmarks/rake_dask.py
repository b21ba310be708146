"""Raking a Dask DataFrame of person-level rows on a LocalCluster (issue 15).

Workload: ``--rows`` people (default 50,000,000) with five categorical margin
variables (area 150, age 10, sex 2, ethnic 19, disability 3: 171,000 cells)
and gamma base weights. The rows are made partition by partition on the
workers (``dd.from_map``, ``--partition-rows`` rows each, a seeded generator
per partition), so they never sit in one process. The sample's category shares
are the population's distorted at random, so raking has work to do; the
targets are the population shares times a population of 45 million.

Timed, on ``LocalCluster(n_workers=--workers, threads_per_worker=1,
memory_limit=--memory-limit)``:

* ``rake``: ``um.rake(frame, margins, weights="w", tol=1e-10)`` -- one pass
  over the partitions (cell totals of the base weights), the raking on the
  cells in memory, the lazy weights;
* ``check pass``: the weights computed and summed by each margin variable in
  one more pass (weights mapped over the partitions), giving the largest
  relative margin error measured on the rows, not on the cells.

Reported: wall seconds of each step, CPU seconds of the client and of the
workers (their ``getrusage`` before and after), the peak RSS of the largest
worker process and of the client, the cells and the iterations. Then a check
of equality with the in-memory result on ``--check-rows`` rows (the same
generator, a few partitions): the largest relative difference of the weights.

    python benchmarks/rake_dask.py --rows 2000000          # a quick check
    python benchmarks/rake_dask.py                         # 50,000,000 rows

Needs the ``dask`` extra. Writes nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
import unmetneed as um

SIZES = {"area": 150, "age": 10, "sex": 2, "ethnic": 19, "disability": 3}
POPULATION = 45_000_000.0
SEED = 20261205


def labels(name: str) -> list[str]:
    return [f"{name}_{k:03d}" for k in range(SIZES[name])]


def shares(seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per variable: the population's category shares and the sample's (distorted) ones."""
    rng = np.random.default_rng(seed)
    population, sample = {}, {}
    for name, k in SIZES.items():
        p = rng.dirichlet(np.full(k, 4.0))
        q = p * np.exp(rng.normal(0.0, 0.3, k))
        population[name], sample[name] = p, q / q.sum()
    return population, sample


def make_partition(index: int, rows: int, seed: int) -> pd.DataFrame:
    """The rows of one partition, from a generator seeded by (seed, index)."""
    _, sample = shares(seed)
    rng = np.random.default_rng([seed, index])
    frame = pd.DataFrame(
        {
            name: pd.Categorical.from_codes(
                rng.choice(k, rows, p=sample[name]).astype(np.int16), labels(name)
            )
            for name, k in SIZES.items()
        }
    )
    frame["w"] = rng.gamma(4.0, 0.25, rows)
    frame.index = pd.RangeIndex(index * 10**9, index * 10**9 + rows)
    return frame


def margins_for(seed: int) -> um.Margins:
    population, _ = shares(seed)
    return um.Margins(
        {
            name: pd.Series(POPULATION * p, index=pd.Index(labels(name), name=name))
            for name, p in population.items()
        }
    )


def partition_sizes(rows: int, per_partition: int) -> list[int]:
    full, rest = divmod(rows, per_partition)
    return [per_partition] * full + ([rest] if rest else [])


def frame_of(rows: int, per_partition: int, seed: int):
    import dask.dataframe as dd

    sizes = partition_sizes(rows, per_partition)
    return dd.from_map(
        make_partition,
        list(range(len(sizes))),
        sizes,
        [seed] * len(sizes),
        meta=make_partition(0, 0, seed),
        enforce_metadata=False,
    )


def worker_usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"cpu": usage.ru_utime + usage.ru_stime, "peak_rss_gb": usage.ru_maxrss / 2**20}


def max_margin_error(frame, weights, margins: um.Margins) -> float:
    import dask

    with_w = frame.assign(_raked=weights)
    sums = dask.compute(*[with_w.groupby(name, observed=True)["_raked"].sum() for name in SIZES])
    errors = [
        float(np.max(np.abs(got.reindex(margins[name].index).to_numpy() / margins[name].to_numpy() - 1.0)))
        for name, got in zip(SIZES, sums, strict=True)
    ]
    return max(errors)


def check_equal(rows: int, seed: int, margins: um.Margins) -> dict[str, float]:
    """In memory vs Dask on ``rows`` rows in 4 partitions: the largest relative weight difference."""
    per = -(-rows // 4)
    frame = frame_of(rows, per, seed)
    people = pd.concat([make_partition(i, n, seed) for i, n in enumerate(partition_sizes(rows, per))])
    want = um.rake(um.SurveyDesign(people, weights="w"), margins, tol=1e-10)
    got = um.rake(frame, margins, weights="w", tol=1e-10).weights.compute()
    assert got.index.equals(people.index)
    diff = np.abs(got.to_numpy() / want.design.weights - 1.0)
    return {"check_rows": rows, "check_max_rel_diff": float(diff.max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000_000)
    parser.add_argument("--partition-rows", type=int, default=1_000_000)
    parser.add_argument("--check-rows", type=int, default=200_000, help="0 to skip the in-memory check")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1.5GB", help="per Dask worker")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    margins = margins_for(args.seed)
    out: dict[str, object] = {
        "rows": args.rows,
        "partition_rows": args.partition_rows,
        "workers": args.workers,
    }
    start = time.perf_counter()
    with (
        LocalCluster(
            n_workers=args.workers,
            threads_per_worker=1,
            memory_limit=args.memory_limit,
            dashboard_address=None,
        ) as cluster,
        Client(cluster) as client,
    ):
        out["cluster_start_s"] = round(time.perf_counter() - start, 2)
        frame = frame_of(args.rows, args.partition_rows, args.seed)
        out["partitions"] = frame.npartitions
        before = client.run(worker_usage)
        wall, cpu = time.perf_counter(), time.process_time()
        result = um.rake(frame, margins, weights="w", tol=1e-10)
        out["rake_wall_s"] = round(time.perf_counter() - wall, 2)
        out["rake_client_cpu_s"] = round(time.process_time() - cpu, 2)
        middle = client.run(worker_usage)
        wall, cpu = time.perf_counter(), time.process_time()
        out["max_rel_margin_error"] = max_margin_error(frame, result.weights, margins)
        out["check_pass_wall_s"] = round(time.perf_counter() - wall, 2)
        out["check_pass_client_cpu_s"] = round(time.process_time() - cpu, 2)
        after = client.run(worker_usage)
        out["rake_workers_cpu_s"] = round(sum(middle[w]["cpu"] - before[w]["cpu"] for w in before), 2)
        out["check_pass_workers_cpu_s"] = round(sum(after[w]["cpu"] - middle[w]["cpu"] for w in before), 2)
        out["worker_peak_rss_gb"] = round(max(u["peak_rss_gb"] for u in after.values()), 3)
        out["cells"] = len(result.cells)
        out["iterations"] = result.report.iterations
        out["report_max_rel_error"] = result.report.max_rel_error
        if args.check_rows:
            out.update(check_equal(args.check_rows, args.seed, margins))
    out["client_peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
