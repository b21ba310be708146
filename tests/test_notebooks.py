"""Every notebook in ``notebooks/`` runs from top to bottom without an error.

Each notebook is executed with nbclient in a fresh kernel, in the notebooks
folder (so relative paths work as they do for a reader). The kernel runs *this*
interpreter: a temporary kernelspec points at ``sys.executable``, so the test
never picks up another Python's ``python3`` kernel (the kernelspec that
ipykernel installs runs whatever ``python`` is first on the PATH). Warnings
inside a notebook are part of its output and do not fail the test; an
exception in any cell does, with the cell's source and traceback.

The notebooks are stored without outputs (they are run here, and by readers);
a separate check keeps it that way.
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


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    with_outputs = [
        i for i, cell in enumerate(notebook.cells)
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None)
    ]
    assert not with_outputs, (
        f"{path.name}: code cells {with_outputs} carry outputs or execution counts; clear them "
        "before saving (e.g. jupyter nbconvert --clear-output --inplace)"
    )
