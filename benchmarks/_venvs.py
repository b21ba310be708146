"""Peer virtual environments for the benchmarks (created once, cached).

Each peer library lives in its own venv under ``benchmarks/.venvs/<peer>/`` so
that peers never become dependencies of ``unmetneed`` and so that conflicting
pins (balance needs ``numpy<2``; svy and samplics need ``numpy>=2``) can
coexist. A venv is reused while its recorded requirement list is unchanged.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
VENV_ROOT = BENCH_DIR / ".venvs"
MAIN_VENV_PYTHON = BENCH_DIR.parent / ".venv" / "bin" / "python"

# Pinned peer requirements. pandas is listed where the snippet builds a
# DataFrame from the cached .npz itself.
PEER_REQUIREMENTS: dict[str, list[str]] = {
    "svy": ["svy==0.35.0", "pandas"],
    "samplics": ["samplics==0.6.1", "pandas"],
    "balance": ["balance==0.23.0", "numpy<2", "pandas<3"],
    "weightipy": ["weightipy==0.4.2", "pandas"],
}

# Distribution names whose installed versions are recorded with the results.
RECORDED_DISTRIBUTIONS = ("numpy", "pandas", "polars", "scipy", "svy",
                          "samplics", "balance", "weightipy", "cvxpy",
                          "scikit-learn", "pyarrow")


def venv_python(peer: str) -> Path:
    return VENV_ROOT / peer / "bin" / "python"


def _marker(peer: str) -> Path:
    return VENV_ROOT / peer / ".benchmark-installed.json"


def installed_versions(python: Path | str) -> dict[str, str]:
    """Versions of the interesting distributions in the venv of ``python``."""
    code = (
        "import json, importlib.metadata as m\n"
        f"names = {list(RECORDED_DISTRIBUTIONS)!r}\n"
        "out = {}\n"
        "for n in names:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: pass\n"
        "print(json.dumps(out))\n"
    )
    res = subprocess.run([str(python), "-c", code], capture_output=True,
                         text=True, check=True)
    return json.loads(res.stdout)


def ensure_venv(peer: str, *, quiet: bool = True) -> Path:
    """Create (once) the venv for ``peer`` and return its python.

    The venv is rebuilt only when the requirement list changed since it was
    made (the list is stored in a marker file inside the venv).
    """
    reqs = PEER_REQUIREMENTS[peer]
    py = venv_python(peer)
    marker = _marker(peer)
    if py.exists() and marker.exists():
        info = json.loads(marker.read_text())
        if info.get("requirements") == reqs:
            return py
    VENV_ROOT.mkdir(parents=True, exist_ok=True)
    print(f"[venv] creating {VENV_ROOT / peer} with {reqs}", file=sys.stderr,
          flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear",
                    str(VENV_ROOT / peer)], check=True)
    pip = [str(py), "-m", "pip", "install", "--disable-pip-version-check"]
    if quiet:
        pip.append("--quiet")
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + reqs, check=True)
    versions = installed_versions(py)
    marker.write_text(json.dumps({"requirements": reqs,
                                  "versions": versions}, indent=2))
    return py


def recorded_versions(peer: str) -> dict[str, str]:
    marker = _marker(peer)
    if marker.exists():
        return json.loads(marker.read_text()).get("versions", {})
    return installed_versions(venv_python(peer))


if __name__ == "__main__":
    for name in sys.argv[1:] or PEER_REQUIREMENTS:
        print(name, ensure_venv(name, quiet=False))
