"""Every notebook in notebooks/ runs top to bottom without an error, in quick mode.

Each notebook reads SCRATCH_AE_QUICK=1 and then runs small (well under a minute).  The kernel is
started by nbclient with the environment of this process, so the test sets SCRATCH_AE_QUICK and
puts the repository on PYTHONPATH before executing.  The kernel is "python3" from a kernelspec that
runs *this* interpreter: ipykernel's own python3 spec is used where jupyter_client finds it (its
argv "python" is replaced by sys.executable), and otherwise one is written into a temporary
directory with ipykernel.kernelspec.install, so a fresh `pip install -e .[test]` is enough.
"""
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT = 300  # seconds per cell


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 5, [p.name for p in NOTEBOOKS]


@pytest.fixture(scope="module")
def kernel_env(tmp_path_factory):
    """The environment for the kernel: quick mode, the repository importable, a python3 kernelspec
    that runs this interpreter.  Yields nothing; the tests read os.environ."""
    pytest.importorskip("nbclient", reason="nbclient is not installed (pip install -e '.[test]')")
    pytest.importorskip("nbformat", reason="nbformat is not installed (pip install -e '.[test]')")
    pytest.importorskip("ipykernel", reason="ipykernel is not installed (pip install -e '.[test]')")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    extra = {}
    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
        runs_here = spec.argv and (spec.argv[0] in ("python", "python3") or Path(spec.argv[0]) == Path(sys.executable))
    except NoSuchKernel:
        runs_here = False
    if not runs_here:
        from ipykernel.kernelspec import install
        prefix = tmp_path_factory.mktemp("kernelspec")
        install(kernel_name="python3", prefix=str(prefix))  # argv: this interpreter
        extra["JUPYTER_PATH"] = os.pathsep.join([str(prefix / "share" / "jupyter"), os.environ.get("JUPYTER_PATH", "")])
    return extra


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, kernel_env, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("SCRATCH_AE_QUICK", "1")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    for name, value in kernel_env.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=TIMEOUT, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent)}})  # run where Jupyter would
    client.execute()  # raises CellExecutionError, naming the cell, on the first error
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"]
    assert not errors, errors
