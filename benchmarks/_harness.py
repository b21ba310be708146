"""Benchmark harness: run every tool in its own process and venv, check, report.

* Peer venvs: ``_venvs.ensure_venv`` (``benchmarks/.venvs/<peer>/``, made once).
* Workload data: ``workloads.ensure_data`` (``benchmarks/.cache/``, made once).
* Each tool runs ``_child.py`` (Python) or ``_child.R`` (R) in a subprocess,
  which times only the estimation/weighting call (one warm-up, then the
  median of ``repeats`` calls, ``time.perf_counter``) and measures peak RSS
  in that process. ``unmetneed`` itself runs the same way, in
  ``/work/main/.venv``, so memory is measured alike for everyone.
* Every answer is checked against an independent numpy reference
  (``_references.py``) and the check is printed beside the time, so a wrong
  call is never timed silently.
* ``write_results`` updates ``RESULTS.md`` section by section.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import _references as REF
import _venvs
import workloads as W

BENCH_DIR = Path(__file__).resolve().parent
SNIPPETS = BENCH_DIR / "snippets"
RESULTS_MD = BENCH_DIR / "RESULTS.md"
OURS = "unmetneed"

# Tools per workload, in table order. "R" is R's survey package via Rscript.
TOOLS: dict[str, list[str]] = {
    "domain_means": [OURS, "svy", "samplics", "R"],
    "raking": [OURS, "balance", "svy", "samplics", "weightipy", "R"],
    "calibration": [OURS, "svy", "samplics", "R"],
}
PEERS = ("svy", "samplics", "balance", "weightipy", "R")

# Peak memory of R's survey package per million rows, from measurements here
# (svyby 1.4 GB, rake 0.8 GB, calibrate about 9 GB, with headroom): used to
# skip R runs that would not fit in memory.
R_GB_PER_MILLION_ROWS = {"domain_means": 2.0, "raking": 1.2, "calibration": 10.0}

# Relative tolerance for every correctness check.
CHECK_TOL = 1e-6


@dataclass
class ToolResult:
    tool: str
    status: str  # ok | error | not available | skipped | timeout
    version: str = ""
    median_s: float | None = None
    min_s: float | None = None
    max_s: float | None = None
    peak_MB: float | None = None
    call_MB: float | None = None
    setup_s: float | None = None
    cpu_s: float | None = None
    load: str = ""
    check: str = ""
    check_ok: bool | None = None
    detail: str = ""
    versions: dict = field(default_factory=dict)
    outputs: dict = field(default_factory=dict)


# --------------------------------------------------------------------------
# machine
# --------------------------------------------------------------------------

def machine_info() -> dict[str, str]:
    info: dict[str, str] = {}
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if ":" in line:
                k, v = (x.strip() for x in line.split(":", 1))
                fields.setdefault(k, v)
    except OSError:
        pass
    cpu = fields.get("model name", "unknown")
    extra = [f"family {fields['cpu family']} model {fields['model']}"] if "cpu family" in fields else []
    if "cpu MHz" in fields:
        extra.append(f"{float(fields['cpu MHz']):.0f} MHz")
    if "cache size" in fields:
        extra.append(f"cache {fields['cache size']}")
    if "hypervisor" in fields.get("flags", "").split():
        extra.append("virtual machine")
    info["CPU"] = cpu + (f" ({', '.join(extra)})" if extra else "")
    info["cores (os.cpu_count)"] = str(os.cpu_count())
    try:
        info["cores usable (affinity)"] = str(len(os.sched_getaffinity(0)))
    except AttributeError:
        pass
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                kb = float(line.split()[1])
                info["RAM"] = f"{kb / 1024**2:.1f} GiB"
    except OSError:
        pass
    info["OS"] = f"{platform.system()} {platform.release()}"
    code = (
        "import json, sys, platform, numpy as np\n"
        "out = {'python': platform.python_version(), 'numpy': np.__version__}\n"
        "try:\n"
        "    cfg = np.show_config(mode='dicts')\n"
        "    b = cfg['Build Dependencies']['blas']\n"
        "    out['blas'] = f\"{b.get('name')} {b.get('version')}\"\n"
        "except Exception as e:\n"
        "    out['blas'] = 'unknown'\n"
        "print(json.dumps(out))\n"
    )
    py = _venvs.MAIN_VENV_PYTHON if _venvs.MAIN_VENV_PYTHON.exists() else Path(sys.executable)
    try:
        res = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=True)
        d = json.loads(res.stdout)
        info["Python (unmetneed venv)"] = d["python"]
        info["numpy / BLAS (unmetneed venv)"] = f"{d['numpy']} / {d['blas']}"
    except Exception:  # pragma: no cover - machine description is best effort
        info["Python"] = platform.python_version()
    env = {k: v for k, v in os.environ.items()
           if k.startswith(("OPENBLAS_", "OMP_", "MKL_", "POLARS_MAX_THREADS"))}
    info["thread/BLAS environment"] = ", ".join(f"{k}={v}" for k, v in sorted(env.items())) or "none set"
    rscript = shutil.which("Rscript")
    if rscript:
        try:
            res = subprocess.run(
                [rscript, "-e", "cat(R.version.string, '|', extSoftVersion()[['BLAS']], '|', La_library())"],
                capture_output=True, text=True, timeout=60)
            info["R / BLAS / LAPACK"] = res.stdout.strip()
        except Exception:
            info["R"] = rscript
    else:
        info["R"] = "Rscript not found"
    return info


# --------------------------------------------------------------------------
# running one tool
# --------------------------------------------------------------------------

def _available_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable"):
                return float(line.split()[1]) / 1024**2
    except OSError:
        pass
    return float("inf")


def wait_for_quiet(max_wait: float, threshold: float = 0.7) -> float:
    """Wait (at most max_wait s) until the 1-minute load average drops below
    ``threshold``: the machine has 2 cores and may be shared with other work,
    which inflates wall times. Returns the load average at the end."""
    import time

    deadline = time.monotonic() + max_wait
    load = os.getloadavg()[0]
    while load >= threshold and time.monotonic() < deadline:
        time.sleep(10)
        load = os.getloadavg()[0]
    return load


def run_tool(tool: str, workload: str, rows: int, repeats: int, *,
             params: dict | None = None, timeout: float = 3600.0,
             wait_quiet: float = 0.0) -> ToolResult:
    npz = W.ensure_data(workload, rows)
    params = dict(params or {})
    params.update({"workload": workload, "rows": rows, "repeats": repeats})
    if tool == "R":
        rscript = shutil.which("Rscript")
        if rscript is None:
            return ToolResult(tool, "skipped", detail="Rscript not found on PATH")
        need = R_GB_PER_MILLION_ROWS[workload] * rows / 1e6
        avail = _available_gib()
        if need > 0.85 * avail:
            return ToolResult(tool, "skipped", detail=(
                f"R survey needs about {need:.0f} GiB at {rows:,} rows; "
                f"{avail:.0f} GiB available"))
        snippet = SNIPPETS / f"{workload}_R.R"
        cmd_prefix = [rscript, "--vanilla", str(BENCH_DIR / "_child.R"), str(snippet),
                      str(npz.with_suffix(""))]
    else:
        snippet = SNIPPETS / f"{workload}_{tool}.py"
        if tool == OURS:
            py = _venvs.MAIN_VENV_PYTHON
        else:
            try:
                py = _venvs.ensure_venv(tool)
            except subprocess.CalledProcessError as exc:
                return ToolResult(tool, "error", detail=f"venv install failed: {exc}")
        cmd_prefix = [str(py), str(BENCH_DIR / "_child.py"), str(snippet), str(npz)]
    if not snippet.exists():
        return ToolResult(tool, "not available", detail=f"no snippet {snippet.name}")
    tmpdir = Path(tempfile.mkdtemp(prefix=f"bench_{workload}_{tool}_", dir=W.CACHE_DIR))
    prefix = str(tmpdir / "out")
    cmd = cmd_prefix + [prefix, json.dumps(params)]
    env = dict(os.environ)
    env.setdefault("PYTHONWARNINGS", "ignore")
    load0 = wait_for_quiet(wait_quiet) if wait_quiet > 0 else os.getloadavg()[0]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              cwd=str(BENCH_DIR), env=env)
    except subprocess.TimeoutExpired:
        shutil.rmtree(tmpdir, ignore_errors=True)
        return ToolResult(tool, "timeout", detail=f"no result within {timeout:.0f} s")
    jpath = Path(prefix + ".json")
    if not jpath.exists():
        tail = (proc.stderr or proc.stdout)[-2000:]
        shutil.rmtree(tmpdir, ignore_errors=True)
        return ToolResult(tool, "error", detail=f"child exited {proc.returncode}: {tail}")
    out = json.loads(jpath.read_text())
    res = ToolResult(
        tool, out.get("status", "error"), version=str(out.get("version", "")),
        median_s=out.get("median_s"), min_s=out.get("min_s"), max_s=out.get("max_s"),
        peak_MB=out.get("peak_MB"), call_MB=out.get("call_MB"), setup_s=out.get("setup_s"),
        cpu_s=out.get("cpu_s"),
        versions=out.get("versions", {}),
        detail=out.get("error", "") or "",
    )
    # Load average before the run and at its end (1-minute, includes the run
    # itself: about 1-2 on this machine when nothing else runs).
    res.load = f"{load0:.1f}→{os.getloadavg()[0]:.1f}"
    if out.get("notes"):
        res.detail = (res.detail + " " + str(out["notes"])).strip()
    err_file = BENCH_DIR / ".cache" / f"last_error_{workload}_{tool}.txt"
    if res.status == "ok":
        err_file.unlink(missing_ok=True)
        if tool == "R":
            for name, path in (out.get("outputs") or {}).items():
                res.outputs[name] = np.fromfile(path, dtype="<f8")
        else:
            with np.load(prefix + ".npz") as f:
                res.outputs = {k: f[k] for k in f.files}
    elif out.get("traceback"):
        err_file.write_text(out["traceback"])
    shutil.rmtree(tmpdir, ignore_errors=True)
    return res


# --------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------

def _relmax(a: np.ndarray, b: np.ndarray) -> float:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def reference(workload: str, rows: int) -> dict[str, np.ndarray]:
    data = W.load(W.ensure_data(workload, rows))
    if workload == "domain_means":
        return REF.domain_means(data)
    if workload == "raking":
        return {"weights": REF.rake(data)}
    return {"weights": REF.linear_calibration(data)}


def check(workload: str, rows: int, res: ToolResult, ref: dict[str, np.ndarray]) -> None:
    """Compare a tool's answer with the numpy reference; sets res.check(_ok).

    A raking tool that cannot take base weights (weightipy) says so with an
    output ``unit_base``; it is compared with raking from equal weights.
    """
    if res.status != "ok":
        return
    out = res.outputs
    if workload == "domain_means":
        if "estimate" not in out or "se" not in out:
            res.check, res.check_ok = "no estimate/se returned", False
            return
        dm = _relmax(out["estimate"], ref["estimate"])
        ds = _relmax(out["se"], ref["se"])
        res.check_ok = dm <= CHECK_TOL and ds <= CHECK_TOL
        res.check = f"vs numpy ref: mean {dm:.1e}, SE {ds:.1e}"
    else:
        data = W.load(W.ensure_data(workload, rows))
        wts = out.get("weights")
        if wts is None or wts.shape != data["w"].shape:
            res.check, res.check_ok = "no weights of the right length returned", False
            return
        fit = REF.margin_fit(data, wts)
        if "unit_base" in out and workload == "raking":
            flat = dict(data)
            flat["w"] = np.full_like(data["w"], data["w"].sum() / data["w"].size)
            dw = _relmax(wts, REF.rake(flat))
            what = "weights vs numpy ref from equal base weights (no base weights)"
        else:
            dw = _relmax(wts, ref["weights"])
            what = "weights vs numpy ref"
        res.check_ok = fit <= CHECK_TOL and dw <= CHECK_TOL
        res.check = f"margins met to {fit:.1e}; {what} {dw:.1e}"


# --------------------------------------------------------------------------
# results store (results.json) and RESULTS.md
# --------------------------------------------------------------------------

RESULTS_JSON = BENCH_DIR / "results.json"
_RECORD_FIELDS = ("tool", "status", "version", "median_s", "min_s", "max_s", "peak_MB",
                  "call_MB", "setup_s", "cpu_s", "load", "check", "check_ok", "detail", "versions")


def to_record(res: ToolResult, repeats: int, when: str) -> dict:
    rec = {k: getattr(res, k) for k in _RECORD_FIELDS}
    rec["repeats"] = repeats
    rec["run_at"] = when
    # Domain means are small: keep them so later runs can compare with ours.
    for k in ("estimate", "se"):
        if k in res.outputs and res.outputs[k].size <= 10_000:
            rec[k] = [float(x) for x in res.outputs[k]]
    return rec


def load_store(path: Path = RESULTS_JSON) -> dict:
    if path.exists():
        return json.loads(path.read_text())
    return {"sections": {}, "machine": {}}


def section_key(workload: str, rows: int) -> str:
    return f"{workload}_n{rows}"


def machine_line(machine: dict[str, str]) -> str:
    return (f"{machine.get('CPU', '?')}, {machine.get('cores (os.cpu_count)', '?')} cores, "
            f"{machine.get('RAM', '?')}")


def update_store(store: dict, workload: str, rows: int, records: list[dict],
                 machine: dict[str, str]) -> None:
    """Replace the records of the tools just run; keep the others' earlier rows."""
    key = section_key(workload, rows)
    sec = store["sections"].setdefault(key, {"workload": workload, "rows": rows, "tools": {}})
    sec["machine"] = machine_line(machine)
    for rec in records:
        sec["tools"][rec["tool"]] = rec


def _fmt(x: float | None, digits: int = 3) -> str:
    if x is None:
        return "–"
    if 0 <= x < 5e-4:
        return "<0.001" if x > 0 else "0"
    if x >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def render_section(sec: dict, machine: dict[str, str], notes: list[str]) -> str:
    workload, rows = sec["workload"], sec["rows"]
    order = TOOLS.get(workload, [])
    recs = sorted(sec["tools"].values(),
                  key=lambda r: order.index(r["tool"]) if r["tool"] in order else 99)
    ours = sec["tools"].get(OURS)
    ours_ok = ours if ours and ours.get("status") == "ok" and ours.get("median_s") else None
    dates = sorted({r["run_at"] for r in recs})
    reps = sorted({r.get("repeats") for r in recs if r.get("status") == "ok"})
    lines = [f"## {workload} — {rows:,} rows", "",
             f"Run {', '.join(dates)}; median of {'/'.join(str(x) for x in reps) or '?'} timed calls "
             f"after one warm-up; {sec.get('machine') or machine_line(machine)}.", "",
             "| tool | version | time_s (median) | min | max | peak_MB | ratio_to_unmetneed | check "
             "| setup_s | call_MB | cpu_s | load |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        if r["status"] == "ok":
            ratio = _fmt(r["median_s"] / ours_ok["median_s"]) if ours_ok else "–"
            check_txt = r.get("check") or "not checked"
            if ours_ok and r is not ours_ok and "estimate" in r and "estimate" in ours_ok:
                check_txt += (f"; vs unmetneed: mean {_relmax(r['estimate'], ours_ok['estimate']):.1e},"
                              f" SE {_relmax(r['se'], ours_ok['se']):.1e}")
            verdict = "ok" if r.get("check_ok") else "FAIL"
            lines.append(
                f"| {r['tool']} | {r['version']} | {_fmt(r['median_s'])} | {_fmt(r['min_s'])} | "
                f"{_fmt(r['max_s'])} | {_fmt(r['peak_MB'], 4)} | {ratio} | {verdict}: {check_txt} | "
                f"{_fmt(r['setup_s'])} | {_fmt(r['call_MB'], 4)} | {_fmt(r.get('cpu_s'))} | "
                f"{r.get('load', '')} |")
        else:
            why = (r.get("detail") or "").replace("|", "/").replace("\n", " ")[:300]
            lines.append(f"| {r['tool']} | {r.get('version') or '–'} | {r['status']} | – | – | – | – | "
                         f"{why} | – | – | – | – |")
    lines.append("")
    busy = []
    for r in recs:
        try:
            if r["status"] == "ok" and float(str(r.get("load", "")).split("→")[0]) >= 2.0:
                busy.append(r["tool"])
        except ValueError:
            pass
    if busy:
        lines.append(f"Measured while other work shared the 2 cores (load >= 2 at the start): "
                     f"{', '.join(busy)}; their wall times are inflated, compare `cpu_s` "
                     f"(for multithreaded tools such as svy cpu_s can exceed the wall time).")
        lines.append("")
    if len(dates) > 1:
        lines.append("Rows measured at different times: "
                     + ", ".join(f"{r['tool']} {r['run_at']}" for r in recs) + ".")
        lines.append("")
    vers = [f"{r['tool']}: " + ", ".join(f"{k} {v}" for k, v in r["versions"].items())
            for r in recs if r.get("versions")]
    if vers:
        lines.append("Environments: " + "; ".join(vers) + ".")
        lines.append("")
    lines.extend(f"- {n}" for n in notes)
    if notes:
        lines.append("")
    return "\n".join(lines)


def render_machine(machine: dict[str, str], when: str) -> str:
    lines = [f"## Machine (last run {when})", ""]
    lines.extend(f"- {k}: {v}" for k, v in machine.items())
    lines.append("")
    return "\n".join(lines)


HEADER = """# Benchmark results

Written by `python benchmarks/run.py` (see `benchmarks/README.md`) from
`benchmarks/results.json`; do not edit by hand. Times are seconds of the
estimation/weighting call alone, measured inside each tool's own process
(each peer in its own venv under `benchmarks/.venvs/`, R via Rscript),
median of the timed calls after one warm-up. `peak_MB` is the peak resident
set of that process (data, library and all calls); `call_MB` is the peak
rise in resident memory during the timed calls; `setup_s` is building the
tool's design/sample object (timed once; samplics has none).
`cpu_s` is the median CPU time of the process per call (all threads);
`load` is the 1-minute load average before→after the tool's run (the
machine has 2 cores; a load well above 2 means other work shared it and
wall times are inflated: compare `cpu_s` then).
`ratio_to_unmetneed` is the tool's median over ours (> 1: we are faster).
`check` compares each answer with an independent numpy reference
(`benchmarks/_references.py`) to a relative {tol:g}: a FAIL row is a wrong or
different answer, not a comparable time. A workload that is re-run replaces
only the rows of the tools run; the others keep their earlier rows.
"""


def _order_key(key: str) -> tuple:
    m = re.match(r"(.+)_n(\d+)$", key)
    if not m:
        return (99, 0)
    wl, rows = m.group(1), int(m.group(2))
    return (W.WORKLOADS.index(wl) if wl in W.WORKLOADS else 99, rows)


_MY_HEADING = re.compile(r"## (Machine \(last run|(" + "|".join(W.WORKLOADS) + r") — )")


def foreign_sections(text: str) -> list[str]:
    """``## `` sections of RESULTS.md written by other benchmark scripts
    (``_sections.py``): kept byte for byte after ours."""
    parts = re.split(r"(?m)^(?=## )", text)
    return [p.rstrip("\n") + "\n" for p in parts[1:] if not _MY_HEADING.match(p)]


def write_results(store: dict, machine: dict[str, str], notes: dict[str, list[str]],
                  when: str, path: Path = RESULTS_MD, json_path: Path = RESULTS_JSON) -> None:
    import fcntl

    store["machine"] = machine
    store["machine_at"] = when
    json_path.write_text(json.dumps(store, indent=1))
    parts = [HEADER.format(tol=CHECK_TOL), render_machine(machine, when)]
    for key in sorted(store["sections"], key=_order_key):
        sec = store["sections"][key]
        parts.append(render_section(sec, machine, notes.get(sec["workload"], [])))
    # The same lock as _sections.py, which other benchmark scripts use to
    # splice their own sections into RESULTS.md.
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            others = foreign_sections(path.read_text()) if path.exists() else []
            tmp = path.with_suffix(".md.tmp")
            tmp.write_text("\n\n".join(p.strip("\n") for p in parts + others) + "\n")
            os.replace(tmp, path)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
