"""Ctrl-C, through the installed command (.venv/bin/scratch-ae) and a real SIGINT, for every command
that runs long: exit status 130, one line on stderr saying what was kept and how to continue.

(`train` is tested the same way in tests/test_cli.py.)  Each run is small: a few seconds."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRATCH_AE = Path(sys.executable).with_name("scratch-ae")  # the installed console script
pytestmark = pytest.mark.skipif(not SCRATCH_AE.exists(), reason="the scratch-ae command is not installed")


def start(*args, cwd=None):
    # one BLAS thread: a search's table is reproducible to the last digit only there (scratch_ae/search.py)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([str(SCRATCH_AE), *map(str, args)], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def run(*args, cwd=None):
    proc = start(*args, cwd=cwd)
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def wait_for(condition, what, timeout=120):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def rows_in(path):
    try:
        return len(json.loads(Path(path).read_text())["rows"])
    except (OSError, ValueError, KeyError):
        return 0


def trials_in(path):
    try:
        return len(json.loads(Path(path).read_text())["trials"])
    except (OSError, ValueError, KeyError):
        return 0


def interrupt(proc):
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


SEARCH = ["--trials", "3", "--folds", "2", "--epochs", "8", "--no-early-stopping", "--limit", "1200", "--no-progress"]


def test_ctrl_c_in_a_search_keeps_its_trials_and_resume_ends_with_the_uninterrupted_table(tmp_path):
    out = tmp_path / "search"
    proc = start("search", *SEARCH, "--out", out)
    wait_for(lambda: trials_in(out / "search.json") >= 1, "the first trial")
    rc, stdout, err = interrupt(proc)
    assert rc == 130, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scratch-ae: search interrupted in trial "), err
    assert f"continue with: scratch-ae search --resume {out}" in lines[0] and "Traceback" not in err
    saved = json.loads((out / "search.json").read_text())
    kept = len(saved["trials"])
    assert saved["interrupted"] is True and saved["stopped_in_trial"] == kept + 1 and 1 <= kept < 3
    assert "train_config" not in saved and "Interrupted in trial" in (out / "search.md").read_text()

    rc, resumed, err = run("search", "--resume", out, "--no-progress")
    assert rc == 0, err
    assert err == f"scratch-ae: resuming {out}: {kept} of 3 trials finished\n"
    rc, uninterrupted, err = run("search", *SEARCH, "--out", tmp_path / "whole")
    assert rc == 0, err
    table = lambda text: text.split("\nbest:")[0]  # noqa: E731  (the last line names the folder)
    assert table(resumed) == table(uninterrupted) and resumed.count("\n") == 5
    final = json.loads((out / "search.json").read_text())
    assert "interrupted" not in final and "partial" not in final and final["train_config"]
    rc, _, err = run("search", "--resume", out)
    assert rc == 2 and "holds a finished search, not an interrupted one" in err


def test_ctrl_c_in_a_lab_keeps_its_rows_and_resume_skips_them(tmp_path):
    out = tmp_path / "lab"
    proc = start("lab", "hidden-sizes", "--quick", "--epochs", "10", "--no-progress", "--out", out)
    wait_for(lambda: rows_in(out / "results.json") >= 1, "the first row")
    rc, stdout, err = interrupt(proc)
    assert rc == 130, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scratch-ae: lab hidden-sizes interrupted; kept "), err
    assert lines[0].endswith(f"continue with: scratch-ae lab hidden-sizes --resume {out}")
    partial = json.loads((out / "results.json").read_text())
    kept = len(partial["rows"])
    assert partial["partial"] is True and 1 <= kept < 3, partial
    assert "Partial" in (out / "results.md").read_text()
    from scratch_ae.cli import main
    assert main(["lab", "hidden-sizes", "--quick", "--out", str(out)]) == 2  # never silently started afresh
    assert (out / "checkpoints" / "fit-1.npz").exists()

    rc, stdout, err = run("lab", "hidden-sizes", "--resume", out, "--no-progress")
    assert rc == 0, err
    assert stdout == f"lab hidden-sizes: wrote {out}/results.json, results.md and figures/ (3 rows)\n"
    final = json.loads((out / "results.json").read_text())
    assert "partial" not in final and len(final["rows"]) == 3
    # the finished rows were loaded, not trained again: the very same training time
    assert [r["train_seconds"] for r in final["rows"][:kept]] == [r["train_seconds"] for r in partial["rows"]]
    assert (out / "figures" / "inputs_through_each.png").exists() and not (out / "checkpoints").exists()


@pytest.fixture(scope="module")
def vae_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("vae")
    rc, _, err = run("train", "--model", "vae", "--hidden", "32", "--latent", "4", "--limit", "300", "--epochs", "1",
                     "--is-samples", "2", "--no-progress", "--out", out)
    assert rc == 0, err
    return out / "model.npz"


@pytest.mark.parametrize("command", ["evaluate", "reconstruct"])
def test_ctrl_c_in_evaluate_or_reconstruct_writes_nothing_and_says_so(command, vae_checkpoint, tmp_path):
    slow = ["--is-samples", "5000"] if command == "evaluate" else ["--n", "3000"]
    proc = start(command, vae_checkpoint, *slow, "--out", tmp_path)
    first = proc.stderr.readline()  # said once the model and the test images are loaded
    assert first.startswith(f"scratch-ae: {command.rstrip('e')}ing {vae_checkpoint}"), first
    rc, stdout, err = interrupt(proc)
    assert rc == 130, err
    assert err.startswith(f"scratch-ae: {command} interrupted") and err.count("\n") == 1, err
    assert "run it again" in err and list(tmp_path.iterdir()) == []
