"""Replace or append one ``## <name>`` section of ``benchmarks/RESULTS.md``.

Used by the stand-alone MRP benchmarks (``mrp_fit.py``, ``poststratify_scale.py``,
``simulation.py``, ``truth_recovery.py``). Everything outside the section is kept
byte for byte. Writing waits while ``benchmarks/run.py`` is running (it
re-renders the whole file) and holds an exclusive lock on ``RESULTS.md.lock``;
the file is re-read under the lock immediately before writing.

``run.py`` re-renders ``RESULTS.md`` from ``results.json`` and drops sections it
does not know, so every section written here is also kept in
``benchmarks/.cache/sections/<name>.md``; ``python benchmarks/_sections.py``
puts all of them back (``--list`` shows them).

Also: ``machine_line()`` (one line describing the machine) and ``load1()``.
"""

from __future__ import annotations

import fcntl
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_MD = BENCH_DIR / "RESULTS.md"
LOCK = BENCH_DIR / "RESULTS.md.lock"
STORE = BENCH_DIR / ".cache" / "sections"


def load1() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def harness_running() -> bool:
    """True while another process runs ``benchmarks/run.py``."""
    out = subprocess.run(["pgrep", "-f", "benchmarks/run.py"], capture_output=True, text=True)
    pids = [int(p) for p in out.stdout.split()]
    return any(p not in (os.getpid(), os.getppid()) for p in pids)


def machine_line() -> str:
    """CPU, cores, RAM, Python, numpy/BLAS, threads, load: one line for a section."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem = next(line for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
        ram = f"{int(mem.split()[1]) / 1024**2:.1f} GiB"
    except (OSError, StopIteration):
        ram = "?"
    import numpy as np

    blas = "?"
    try:
        cfg = np.show_config(mode="dicts")  # numpy >= 1.26
        info = cfg["Build Dependencies"]["blas"]
        blas = f"{info.get('name')} {info.get('version')}"
    except Exception:  # noqa: BLE001
        pass
    threads = ", ".join(f"{k}={os.environ[k]}" for k in
                        ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
                        if k in os.environ) or "no thread variables set"
    return (f"{cpu}, {os.cpu_count()} cores (affinity {len(os.sched_getaffinity(0))}), {ram} RAM; "
            f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
            f"numpy {np.__version__} / {blas}; {threads}")


def _splice(text: str, name: str, body: str) -> str:
    """``text`` with the section ``## name`` replaced by ``body`` (or appended)."""
    if not body.startswith(f"## {name}\n"):
        raise ValueError(f"the section must start with '## {name}' on its own line")
    body = body.rstrip("\n") + "\n"
    heading = re.compile(rf"^## {re.escape(name)}[ \t]*$", re.M)
    m = heading.search(text)
    if m is None:
        sep = "" if text.endswith("\n\n") or not text else ("\n" if text.endswith("\n") else "\n\n")
        return text + sep + body
    nxt = re.compile(r"^## ", re.M).search(text, m.end())
    end = nxt.start() if nxt else len(text)
    tail = text[end:]
    return text[:m.start()] + body + ("\n" if tail else "") + tail


def write_section(name: str, body: str, *, wait: float = 7200.0, store: bool = True) -> bool:
    """Replace or append ``## name`` in RESULTS.md; False if the harness kept running."""
    if store:
        STORE.mkdir(parents=True, exist_ok=True)
        (STORE / f"{name}.md").write_text(body)
    deadline = time.monotonic() + wait
    while harness_running():
        if time.monotonic() > deadline:
            print(f"benchmarks/run.py still running: section {name!r} not written "
                  f"(kept in {STORE / (name + '.md')}; run python benchmarks/_sections.py later)",
                  file=sys.stderr)
            return False
        time.sleep(15)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if harness_running():  # started while we waited for the lock
                return write_section(name, body, wait=max(0.0, deadline - time.monotonic()),
                                     store=False)
            text = RESULTS_MD.read_text() if RESULTS_MD.exists() else "# Benchmark results\n\n"
            new = _splice(text, name, body)
            if new != text:
                tmp = RESULTS_MD.with_suffix(".md.tmp")
                tmp.write_text(new)
                os.replace(tmp, RESULTS_MD)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    print(f"wrote section '## {name}' of {RESULTS_MD}")
    return True


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    stored = sorted(STORE.glob("*.md")) if STORE.is_dir() else []
    if "--list" in argv:
        for path in stored:
            print(path.stem, path)
        return 0
    order = ["mrp_fit", "poststratify", "simulation", "truth_recovery"]
    stored.sort(key=lambda p: (order.index(p.stem) if p.stem in order else 99, p.stem))
    for path in stored:
        if not argv or path.stem in argv:
            write_section(path.stem, path.read_text(), store=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
