"""Poststratification of a partitioned Parquet frame: in memory vs streamed on a Dask LocalCluster.

The frame crosses MSOA x age band x sex x ethnic group (19) x disability (3).
Its age structure is the census's: TS007A (usual residents by five-year age
band per MSOA, ``census2021-ts007a-msoa.csv`` in the shared reference data,
``../shared/reference-data`` from the repository), adults aged 20 and over
(14 bands); sex, ethnic group and disability split each band with fixed
synthetic shares. Without the file, the MSOAs and their age counts are
simulated. ``--cells`` takes as many MSOAs as make about that many cells, in
file order, and writes one Parquet file per ``--msoas-per-file`` MSOAs (made a
file at a time: the frame is never held whole by this script).

The model, ``y ~ sex + (1|area_code) + (1|age_band) + (1|ethnic)``, is fitted
(not timed) to a simulated survey of ``--respondents`` people in the first
``--surveyed`` MSOAs, so the other MSOAs are levels unseen in fitting (their
effects drawn from N(0, sd^2), as in production).

Each mode runs in a fresh subprocess, timed from reading the frame to the
result (``fit.poststratify(frame, by="area_code", draws=<the same draws>,
seed=...)``):

* ``memory``: ``pd.read_parquet`` of the directory, then the in-memory path;
* ``dask``: ``dd.read_parquet`` under ``with Client(LocalCluster(n_workers=
  --workers, threads_per_worker=1, memory_limit=--memory-limit))``.

Reported: wall and CPU seconds of the parent process (``process_time``; the
Dask workers' CPU is not in it; the cluster's start-up is timed apart), the peak RSS of the process (for ``dask``
the client, and separately the largest worker process, from
``RUSAGE_CHILDREN`` once the cluster has closed), and the largest absolute
relative difference between the two results' counts.

    python benchmarks/poststratify_dask.py --cells 20000 --draws 100    # a quick check
    python benchmarks/poststratify_dask.py --cells 5000000              # the real thing

Needs the ``dask`` and ``parquet`` extras. Writes nothing but its temporary
directory (``--work``, default a fresh one under the system's temp folder,
removed afterwards unless given).
"""

from __future__ import annotations

import argparse
import json
import pickle
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
TS007A = ROOT.parent / "shared" / "reference-data" / "census2021-ts007a-msoa.csv"
FORMULA = "y ~ sex + (1|area_code) + (1|age_band) + (1|ethnic)"
AGE_BANDS = [f"{a}-{a + 4}" for a in range(20, 85, 5)] + ["85+"]  # 14 bands
ETHNIC = [f"ethnic_{i:02d}" for i in range(19)]
DISABILITY = ["Disabled: limited a lot", "Disabled: limited a little", "Not disabled"]
SEED = 20261205


def msoa_ages(path: Path, n_msoas: int) -> pd.DataFrame:
    """Adults by age band (columns ``AGE_BANDS``) per MSOA (index ``area_code``)."""
    if path.exists():
        table = pd.read_csv(path)
        ages = [c for c in table.columns if c.startswith("Age: Aged") and "under" not in c]
        adult = [c for c in ages if int(c.split("Aged ")[1].split(" ")[0]) >= 20]
        counts = table.set_index("geography code")[adult].iloc[:n_msoas]
        counts.columns = AGE_BANDS
        counts.index.name = "area_code"
        return counts.astype(np.float64)
    rng = np.random.default_rng(SEED)
    index = pd.Index([f"E02{i:06d}" for i in range(n_msoas)], name="area_code")
    return pd.DataFrame(rng.integers(100, 900, (n_msoas, len(AGE_BANDS))).astype(float), index, AGE_BANDS)


def cells_of(ages: pd.DataFrame) -> pd.DataFrame:
    """Every cell of these MSOAs, with counts: the age count split by fixed shares."""
    rng = np.random.default_rng(SEED + 1)
    sex_share = np.array([0.51, 0.49])
    ethnic_share = rng.dirichlet(np.full(len(ETHNIC), 0.6))
    disability_share = np.array([0.08, 0.1, 0.82])
    grid = pd.MultiIndex.from_product(
        [ages.index, AGE_BANDS, ["Female", "Male"], ETHNIC, DISABILITY],
        names=["area_code", "age_band", "sex", "ethnic", "disability"],
    ).to_frame(index=False)
    per_msoa = len(AGE_BANDS) * 2 * len(ETHNIC) * len(DISABILITY)
    base = np.repeat(ages.to_numpy().ravel(), per_msoa // len(AGE_BANDS))
    shares = np.einsum("i,j,k->ijk", sex_share, ethnic_share, disability_share).ravel()
    grid["count"] = np.round(base * np.tile(shares, len(ages) * len(AGE_BANDS)), 3)
    return grid


def write_frame(directory: Path, n_cells: int, per_file: int) -> int:
    per_msoa = len(AGE_BANDS) * 2 * len(ETHNIC) * len(DISABILITY)
    ages = msoa_ages(TS007A, max(1, -(-n_cells // per_msoa)))
    directory.mkdir(parents=True)
    for i, start in enumerate(range(0, len(ages), per_file)):
        cells_of(ages.iloc[start : start + per_file]).to_parquet(
            directory / f"part-{i:05d}.parquet", index=False
        )
    return len(ages) * per_msoa


def fit_model(directory: Path, respondents: int, surveyed: int, n_draws: int, out: Path) -> None:
    import unmetneed as um

    areas = pd.read_parquet(directory, columns=["area_code"])["area_code"].unique()[:surveyed]
    rng = np.random.default_rng(SEED + 2)
    area, age, ethnic = (
        rng.integers(0, len(areas), respondents),
        rng.integers(0, 14, respondents),
        rng.integers(0, 19, respondents),
    )
    sex = rng.integers(0, 2, respondents)
    eta = (
        -2.0
        + 0.2 * sex
        + rng.normal(0, 0.4, len(areas))[area]
        + np.linspace(-1, 1.5, 14)[age]
        + rng.normal(0, 0.3, 19)[ethnic]
    )
    survey = pd.DataFrame(
        {
            "y": (rng.random(respondents) < 1 / (1 + np.exp(-eta))).astype(int),
            "area_code": np.asarray(areas)[area],
            "age_band": np.asarray(AGE_BANDS)[age],
            "sex": np.where(sex == 1, "Male", "Female"),
            "ethnic": np.asarray(ETHNIC)[ethnic],
        }
    )
    fit = um.MultilevelModel(FORMULA, data=survey).fit()
    draws = fit.draws(n_draws, seed=SEED + 3)
    out.write_bytes(pickle.dumps((fit, draws)))


def child(mode: str, work: Path, workers: int, memory_limit: str) -> None:
    import warnings

    import unmetneed as um

    warnings.simplefilter("ignore", um.mrp.NewLevelWarning)
    fit, draws = pickle.loads((work / "fit.pkl").read_bytes())
    startup = 0.0
    if mode == "memory":
        wall, cpu = time.perf_counter(), time.process_time()
        frame = um.PopulationFrame(pd.read_parquet(work / "frame"))
        result = fit.poststratify(frame, by="area_code", draws=draws, seed=SEED)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        worker_rss = 0.0
    else:
        import dask.dataframe as dd
        from distributed import Client, LocalCluster

        startup = time.perf_counter()
        with (
            LocalCluster(
                n_workers=workers, threads_per_worker=1, memory_limit=memory_limit, dashboard_address=None
            ) as cluster,
            Client(cluster),
        ):
            startup = time.perf_counter() - startup
            wall, cpu = time.perf_counter(), time.process_time()
            frame = um.PopulationFrame(dd.read_parquet(work / "frame"))
            result = fit.poststratify(frame, by="area_code", draws=draws, seed=SEED)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        worker_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
    np.save(work / f"{mode}.npy", result.draws["count"].values)
    print(
        json.dumps(
            {
                "mode": mode,
                "wall_s": round(wall, 2),
                "cpu_s": round(cpu, 2),
                "cluster_start_s": round(startup, 2),
                "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
                "worker_peak_rss_gb": round(worker_rss, 3),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=1_000_000, help="about this many frame cells")
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--msoas-per-file", type=int, default=50, help="MSOAs per Parquet file (partition)")
    parser.add_argument("--respondents", type=int, default=20_000)
    parser.add_argument("--surveyed", type=int, default=500, help="MSOAs with respondents")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="1.5GB", help="per Dask worker")
    parser.add_argument("--work", type=Path, help="working directory (kept); default a temporary one")
    parser.add_argument("--child", choices=["memory", "dask"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.work, args.workers, args.memory_limit)
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="poststratify_dask_"))
    try:
        n_cells = write_frame(work / "frame", args.cells, args.msoas_per_file)
        fit_model(work / "frame", args.respondents, args.surveyed, args.draws, work / "fit.pkl")
        source = "TS007A" if TS007A.exists() else "simulated ages (TS007A not found)"
        print(
            f"{n_cells:,} cells ({source}), {args.draws} draws, {len(list((work / 'frame').iterdir()))} files"
        )
        for mode in ("memory", "dask"):
            command = [
                sys.executable,
                __file__,
                "--child",
                mode,
                "--work",
                str(work),
                "--workers",
                str(args.workers),
                "--memory-limit",
                args.memory_limit,
            ]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            print(done.stdout.strip())
            if done.stderr.strip():
                print(done.stderr.strip(), file=sys.stderr)
        memory, streamed = np.load(work / "memory.npy"), np.load(work / "dask.npy")
        with np.errstate(invalid="ignore", divide="ignore"):
            difference = np.nanmax(np.abs(streamed - memory) / np.abs(memory))
        print(f"largest relative difference, dask vs memory: {difference:.2e}")
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
