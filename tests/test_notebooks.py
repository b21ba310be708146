"""Every notebook in ``notebooks/`` runs from top to bottom without an error.

Each notebook is executed with nbclient in a fresh kernel, in the notebooks
folder (so relative paths work as they do for a reader). The kernel runs *this*
interpreter: a temporary kernelspec points at ``sys.executable``, so the test
never picks up another Python's ``python3`` kernel (the kernelspec that
ipykernel installs runs whatever ``python`` is first on the PATH). Warnings
inside a notebook are part of its output and do not fail the test; an
exception in any cell does, with the cell's source and traceback.

The notebooks are stored *with* their outputs, so they read on a code host
without running them; ``python notebooks/execute.py`` writes them. This test
runs each one and checks the stored outputs are up to date: the same outputs,
cell by cell, after ``notebooks/execute.py``'s ``normalise`` (digits, paths,
addresses and spacing masked, so the last digits of a number may differ between
machines but a changed table, message, warning or error may not).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notebooks"))
import execute as notebook_outputs

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PATHS = sorted(NOTEBOOKS.glob("*.ipynb"))
KERNEL = "unmetneed-test-python"
CELL_TIMEOUT_S = 600  # per cell; every notebook takes well under a minute in all
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")  # colours of IPython tracebacks


def test_there_are_notebooks() -> None:
    names = [p.name for p in PATHS]
    assert "00-quickstart.ipynb" in names, f"notebooks found: {names}"


@pytest.fixture(scope="module")
def kernel_specs(tmp_path_factory: pytest.TempPathFactory) -> KernelSpecManager:
    """A kernelspec folder with one kernel: ipykernel under this interpreter."""
    kernels = tmp_path_factory.mktemp("jupyter") / "kernels"
    spec = kernels / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Python {sys.version_info.major}.{sys.version_info.minor} (unmetneed tests)",
        "language": "python",
    }), encoding="utf-8")
    return KernelSpecManager(kernel_dirs=[str(kernels)])


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_runs(path: Path, kernel_specs: KernelSpecManager) -> None:
    notebook = nbformat.read(path, as_version=4)
    manager = AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=kernel_specs)
    client = NotebookClient(
        notebook,
        km=manager,
        kernel_name=KERNEL,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # the kernel's working directory
    )
    failure = None
    try:
        # cleanup_kc: shut the kernel down and close its channels afterwards, as nbclient does
        # for kernel managers it creates itself (it leaves a manager it was given running).
        client.execute(cleanup_kc=True)
    except CellExecutionError as error:  # its text: the failing cell's source and traceback
        failure = ANSI_ESCAPE.sub("", str(error))
    if failure is not None:
        pytest.fail(f"{path.name} failed:\n{failure}", pytrace=False)
    stored = notebook_outputs.output_signature(nbformat.read(path, as_version=4))
    fresh = notebook_outputs.output_signature(notebook)
    stale = [i for i, (a, b) in enumerate(zip(stored, fresh, strict=True)) if a != b]
    assert not stale, (
        f"{path.name}: the stored outputs of code cells {stale} differ from what the code prints "
        f"now (first: {stored[stale[0]]!r:.300} vs {fresh[stale[0]]!r:.300}); refresh them with "
        "python notebooks/execute.py"
    )


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stored_with_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    missing = [i for i, cell in enumerate(notebook.cells)
               if cell.cell_type == "code" and cell.execution_count is None]
    assert not missing, (
        f"{path.name}: code cells {missing} were never run; store the notebook with its outputs "
        "(python notebooks/execute.py)"
    )
    errors = [i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
              and any(out.output_type == "error" for out in cell.outputs)]
    assert not errors, f"{path.name}: stored outputs of cells {errors} are errors"


def test_a_print_split_into_pieces_compares_equal() -> None:
    """The kernel may send one print as several stream messages; the comparison joins them."""
    def notebook(*texts: str) -> nbformat.NotebookNode:
        cell = nbformat.v4.new_code_cell("print('ons_custom', '-> True')")
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in texts]
        return nbformat.v4.new_notebook(cells=[cell])

    whole = notebook_outputs.output_signature(notebook("ons_custom -> True\n"))
    assert notebook_outputs.output_signature(notebook("ons_custom", " -> True\n")) == whole
    assert notebook_outputs.output_signature(notebook("ons_custom -> False\n")) != whole
