"""Run one tool's snippet in the current interpreter and time it.

Invoked by ``_harness.py`` with the python of the tool's own venv::

    python _child.py SNIPPET.py DATA.npz OUT_PREFIX PARAMS_JSON

Needs only the standard library and numpy, so it runs in every peer venv.
A snippet module defines:

``VERSION``
    distribution name whose version is reported (e.g. ``"svy"``).
``load(data, params)``
    build the tool's input (DataFrame, arrays) from the cached columns;
    not timed.
``setup(obj, params)``
    build the tool's design/sample object; timed once, reported as
    ``setup_s`` (may simply return ``obj``).
``run(state, params)``
    the estimation or weighting call that is timed: one warm-up call, then
    ``params["repeats"]`` timed calls (``time.perf_counter``).
``extract(state, result, params)``
    dict of numpy arrays to check in the parent (means, SEs, weights).

A snippet raises ``NotAvailable`` (any exception class of that name) when
the tool lacks the feature; the run is then reported as not available.

Memory: ``peak_MB`` is the process's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``), which includes the data,
the library and the warm-up call. ``cpu_s`` is the median process CPU time
(all threads) of the timed calls. ``call_MB`` is the peak RSS during the
timed calls above the RSS just before them: the kernel's high-water mark is
reset through ``/proc/self/clear_refs`` where Linux allows it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import platform
import resource
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import workloads  # noqa: E402


def _status_kb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return float(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def main() -> int:
    snippet_path, data_path, out_prefix, params_json = sys.argv[1:5]
    params = json.loads(params_json)
    repeats = int(params.get("repeats", 5))
    out: dict = {"status": "ok", "python": platform.python_version()}
    try:
        spec = importlib.util.spec_from_file_location("snippet", snippet_path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        out["version"] = _version(mod.VERSION)
        out["versions"] = {d: _version(d) for d in
                           ("numpy", "pandas", "polars", "scipy")
                           if _version(d) != "unknown"}
        data = workloads.load(data_path)
        obj = mod.load(data, params)
        del data
        t0 = time.perf_counter()
        state = mod.setup(obj, params)
        out["setup_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        result = mod.run(state, params)
        out["warmup_s"] = time.perf_counter() - t0
        del result
        result = None
        # Resetting the high-water mark also resets ru_maxrss, so keep the
        # peak so far (data, library, set-up, warm-up) first.
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        can_reset = _reset_peak()
        base_kb = _status_kb("VmRSS")
        times = []
        cpu = []
        for _ in range(repeats):
            result = None
            c0 = time.process_time()
            t0 = time.perf_counter()
            result = mod.run(state, params)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        hwm_kb = _status_kb("VmHWM")
        out["times"] = times
        out["median_s"] = statistics.median(times)
        out["min_s"] = min(times)
        out["max_s"] = max(times)
        # CPU seconds of the process (all threads) per call: unlike wall time
        # it hardly moves when other work shares the machine.
        out["cpu_s"] = statistics.median(cpu)
        peak_kb = max(peak_kb, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        out["peak_MB"] = peak_kb / 1024.0
        if can_reset and base_kb is not None and hwm_kb is not None:
            out["call_MB"] = max(hwm_kb - base_kb, 0.0) / 1024.0
        extracted = mod.extract(state, result, params)
        np.savez(out_prefix + ".npz", **{k: np.asarray(v) for k, v in extracted.items()})
        notes = getattr(mod, "NOTES", None)
        if notes:
            out["notes"] = notes
    except Exception as exc:  # reported to the parent, never hidden
        name = type(exc).__name__
        out["status"] = "not available" if name == "NotAvailable" else "error"
        out["error"] = f"{name}: {exc}"
        out["traceback"] = traceback.format_exc()[-4000:]
        out.setdefault("version", "unknown")
    Path(out_prefix + ".json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
