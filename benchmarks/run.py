"""Run the benchmarks and update benchmarks/RESULTS.md.

    python benchmarks/run.py [domain_means|raking|calibration|all]
        [--rows N] [--repeats 5] [--peers svy,samplics,...] [--no-r]
        [--no-ours] [--timeout SECONDS]

Each tool runs in its own subprocess: peers in their own venvs under
benchmarks/.venvs/ (created once), unmetneed in /work/main/.venv, R's survey
package through Rscript. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _harness as H  # noqa: E402
import workloads as W  # noqa: E402

DEFAULT_ROWS = {"domain_means": 1_000_000, "raking": 1_000_000, "calibration": 1_000_000}


def _print_row(r: H.ToolResult) -> None:
    if r.status == "ok":
        print(f"  {r.tool:10s} {r.version:10s} median {r.median_s:10.4f} s "
              f"(min {r.min_s:.4f}, max {r.max_s:.4f}) cpu {r.cpu_s or 0:.4f} s peak {r.peak_MB:8.0f} MB  "
              f"setup {r.setup_s:.3f} s  load {r.load}  "
              f"check {r.check}", flush=True)
    else:
        print(f"  {r.tool:10s} {r.status}: {r.detail[:400]}", flush=True)


def run_workload(workload: str, rows: int, repeats: int, tools: list[str],
                 timeout: float, when: str, wait_quiet: float, store: dict,
                 machine: dict[str, str], write: bool) -> None:
    """Run the tools one by one; store (and write) each row as it comes, so an
    interrupted run keeps the rows it measured."""
    print(f"\n== {workload}: {rows:,} rows, {repeats} repeats; tools {', '.join(tools)}", flush=True)
    t0 = time.perf_counter()
    W.ensure_data(workload, rows)
    ref = H.reference(workload, rows)
    print(f"  data + numpy reference ready ({time.perf_counter() - t0:.1f} s)", flush=True)
    params = {"tol": 1e-8}
    records = []
    for tool in tools:
        t1 = time.perf_counter()
        res = H.run_tool(tool, workload, rows, repeats, params=params, timeout=timeout,
                         wait_quiet=wait_quiet)
        H.check(workload, rows, res, ref)
        _print_row(res)
        print(f"    (wall {time.perf_counter() - t1:.0f} s)", flush=True)
        records.append(H.to_record(res, repeats, when))
        if write:
            # Re-read the store so rows written meanwhile by another run are kept.
            fresh = H.load_store()
            H.update_store(fresh, workload, rows, records, machine)
            H.write_results(fresh, machine, NOTES, when)
            store.clear()
            store.update(fresh)
        else:
            H.update_store(store, workload, rows, records, machine)


NOTES = {
    "domain_means": [
        "Task: weighted mean of y in each of 150 areas with Taylor-linearised SEs, "
        "50 strata, 303 PSUs sampled with replacement (no fpc).",
        "unmetneed: `um.SurveyDesign(df, weights='w', strata='stratum', clusters='psu', "
        "nest=True).mean('y', by='area')`; the design construction is `setup_s`.",
        "svy: `svy.Sample(df, svy.Design(stratum=, psu=, wgt=)).estimation.mean('y', by='area', "
        "method='taylor')` on a polars frame; no nest option, so globally unique PSU ids are passed.",
        "samplics: `TaylorEstimator(PopParam.mean).estimate(y, samp_weight, stratum=, psu=, domain=)`; "
        "globally unique PSU ids.",
        "R: `svyby(~y, ~area, svydesign(ids=~psu, strata=~stratum, weights=~w, nest=TRUE), svymean)`.",
    ],
    "raking": [
        "Task: rake lognormal base weights to 5 margins (area 150, age 10, sex 2, ethnic group 19, "
        "disability 3) of a synthetic population of 45 million, tol 1e-8.",
        "Check: weighted margins against the population totals, and weights against a numpy "
        "IPF run to 1e-13 (the raking solution is unique).",
        "weightipy has no base weights (it rakes weights of 1) and no absolute tolerance: it stops "
        "when the summed absolute weight change stops shrinking, which at 10,000,000 rows happens "
        "after a few sweeps with margins still 6% off (the FAIL row).",
        "R's rake() uses epsilon = tol/100 (its epsilon bounds cell changes of the full "
        "cross-classification relative to the total weight; 1e-8 meets margins only to ~2e-6).",
    ],
    "calibration": [
        "Task: linear (GREG, chi-square distance) calibration of lognormal base weights to the "
        "same 5 margins. Linear calibration may give negative weights; no bounds.",
        "Check: weighted margins, and weights against the closed-form solution "
        "(`_references.linear_calibration`).",
    ],
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("workload", nargs="?", default="all", choices=[*W.WORKLOADS, "all"])
    ap.add_argument("--rows", type=int, default=None, help="rows (default 1,000,000)")
    ap.add_argument("--repeats", type=int, default=5, help="timed calls after one warm-up (>= 5 advised)")
    ap.add_argument("--peers", default=None,
                    help=f"comma-separated subset of {','.join(H.PEERS)}, or 'none' "
                         "(default: every peer of the workload); tools not run keep their earlier rows")
    ap.add_argument("--no-r", action="store_true", help="skip R's survey package")
    ap.add_argument("--no-ours", action="store_true", help="skip unmetneed itself")
    ap.add_argument("--timeout", type=float, default=3600.0, help="seconds per tool (default 3600)")
    ap.add_argument("--wait-quiet", type=float, default=300.0,
                    help="before each tool, wait up to this many seconds for the 1-minute load "
                         "average to fall below 0.7 (default 300; 0 = do not wait)")
    ap.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    ap.add_argument("--render-only", action="store_true",
                    help="re-render RESULTS.md from results.json without running anything")
    args = ap.parse_args(argv)

    workloads = list(W.WORKLOADS) if args.workload == "all" else [args.workload]
    peers = None
    if args.peers:
        peers = [p.strip() for p in args.peers.split(",") if p.strip() and p.strip() != "none"]
        unknown = sorted(set(peers) - set(H.PEERS))
        if unknown:
            ap.error(f"unknown peers {unknown}; choose from {', '.join(H.PEERS)}")
    if args.render_only:
        store = H.load_store()
        H.write_results(store, store.get("machine") or H.machine_info(), NOTES,
                        store.get("machine_at") or time.strftime("%Y-%m-%d %H:%M"))
        print(f"re-rendered {H.RESULTS_MD}")
        return 0
    machine = H.machine_info()
    print("Machine:")
    for k, v in machine.items():
        print(f"  {k}: {v}")
    when = time.strftime("%Y-%m-%d %H:%M")
    store = H.load_store()
    for wl in workloads:
        tools = []
        for t in H.TOOLS[wl]:
            if t == H.OURS:
                if not args.no_ours:
                    tools.append(t)
                continue
            if peers is not None and t not in peers:
                continue
            if t == "R" and args.no_r:
                continue
            tools.append(t)
        rows = args.rows or DEFAULT_ROWS[wl]
        run_workload(wl, rows, args.repeats, tools, args.timeout, when, args.wait_quiet,
                     store, machine, not args.no_write)
        print()
        print(H.render_section(store["sections"][H.section_key(wl, rows)], machine,
                               NOTES.get(wl, [])), flush=True)
        if not args.no_write:
            print(f"  -> {H.RESULTS_MD}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
