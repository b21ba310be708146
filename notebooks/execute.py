"""Run the notebooks and store them with their outputs, or check the stored outputs.

    python notebooks/execute.py            # run every notebook, write it back with outputs
    python notebooks/execute.py 02-mrp     # only the notebooks whose name contains this

Each notebook runs in a fresh kernel of *this* interpreter (a temporary
kernelspec points at ``sys.executable``), in the notebooks folder, so relative
paths work as they do for a reader. ``tests/test_notebooks.py`` runs them the
same way and compares the outputs with the stored ones after
:func:`normalise` (digits, paths, addresses and whitespace masked): a notebook
whose stored outputs no longer match what the code prints is out of date, and
this script refreshes it. Outputs are seeded, so they are the same from run to
run on one machine; numbers may differ in the last digits between machines,
which is why digits are masked in the comparison.
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent
KERNEL = "unmetneed-notebooks-python"
CELL_TIMEOUT_S = 600
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
_PATH = re.compile(r"(?:/[\w.+-]+){2,}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
_DIGITS = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")


def kernel_specs(folder: Path) -> KernelSpecManager:
    """A kernelspec folder with one kernel: ipykernel under this interpreter."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (unmetneed)",
        "language": "python",
    }), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(folder / "kernels")])


def execute(path: Path, specs: KernelSpecManager) -> nbformat.NotebookNode:
    """The notebook at ``path`` run top to bottom (raises nbclient's CellExecutionError)."""
    notebook = nbformat.read(path, as_version=4)
    manager = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=specs)
    client = NotebookClient(notebook, km=manager, kernel_name=KERNEL, timeout=CELL_TIMEOUT_S,
                            record_timing=False,  # no timestamps: reruns change nothing
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute(cleanup_kc=True)
    return notebook


def normalise(text: str) -> str:
    """Outputs as compared: ANSI colours, paths, addresses, digits and spacing masked."""
    text = ANSI_ESCAPE.sub("", text)
    text = _PATH.sub("<path>", text)
    text = _ADDRESS.sub("<address>", text)
    text = _DIGITS.sub("0", text)
    return _SPACE.sub(" ", text).strip()


def output_signature(notebook: nbformat.NotebookNode) -> list[list[tuple[str, str]]]:
    """Per code cell, its outputs as (kind, normalised text); images by their type only.

    Consecutive pieces of one stream are one output: the kernel flushes a print in one
    message or several depending on timing (``'a -> True'`` can arrive as ``'a'`` then
    ``' -> True'`` on a loaded machine).
    """
    cells = []
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        raw: list[tuple[str, str]] = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                kind = f"stream:{out.name}"
                if raw and raw[-1][0] == kind:
                    raw[-1] = (kind, raw[-1][1] + out.text)
                else:
                    raw.append((kind, out.text))
            elif out.output_type == "error":
                raw.append(("error", out.ename + ": " + out.evalue))
            else:
                data = out.get("data", {})
                raw.append(("display:" + ",".join(sorted(data)), "".join(data.get("text/plain", ""))))
        cells.append([(kind, normalise(text)) for kind, text in raw])
    return cells


def main(argv: list[str] | None = None) -> int:
    pattern = (argv if argv is not None else sys.argv[1:]) or [""]
    with tempfile.TemporaryDirectory() as folder:
        specs = kernel_specs(Path(folder))
        for path in sorted(NOTEBOOKS.glob("*.ipynb")):
            if not any(p in path.stem for p in pattern):
                continue
            notebook = execute(path, specs)
            notebook.metadata.pop("widgets", None)
            for cell in notebook.cells:
                cell.metadata.pop("execution", None)  # timestamps of an earlier run
            nbformat.write(notebook, path)
            print(f"wrote {path.name} with outputs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
