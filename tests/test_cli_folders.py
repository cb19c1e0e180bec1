"""Output folders are claimed atomically: parallel starts get different folders, a folder a live run
holds is refused in one line (exit 2), and one left by a run that was killed outright is not."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scratch_ae.outputs import LOCK_FILE, OutputError, claim_folder, claim_fresh_folder

REPO = Path(__file__).resolve().parents[1]
SCRATCH_AE = Path(sys.executable).with_name("scratch-ae")  # the installed console script
TINY = ["--limit", "300", "--epochs", "1", "--no-progress"]


def start(*args, cwd=None):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([str(SCRATCH_AE), *map(str, args)], env=env, cwd=cwd, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, what, timeout=120):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.mark.skipif(not SCRATCH_AE.exists(), reason="the scratch-ae command is not installed")
@pytest.mark.parametrize("command, base", [(["train", *TINY], "train"),
                                           (["search", "--quick", "--trials", "1", "--limit", "300",
                                             "--no-progress"], "search-quick")])
def test_runs_started_at_once_get_their_own_default_folders(command, base, tmp_path):
    procs = [start(*command, cwd=tmp_path) for _ in range(3)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in results]
    expected = [base, f"{base}-2", f"{base}-3"]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == expected
    said = sorted(next(w for w in out.split() if w.startswith("runs/")).split("/")[1] for out, _ in results)
    assert said == expected  # each run names its own folder
    result_file = "metrics.json" if base == "train" else "search.json"
    for name in expected:
        assert sorted(p.name for p in (tmp_path / "runs" / name).iterdir() if p.name != "figures") == \
            (["metrics.json", "model.npz"] if base == "train" else ["search.json", "search.md"])
        json.loads((tmp_path / "runs" / name / result_file).read_text())


@pytest.mark.skipif(not SCRATCH_AE.exists(), reason="the scratch-ae command is not installed")
def test_an_explicit_out_held_by_a_live_run_is_refused_and_a_killed_runs_folder_is_not(tmp_path):
    held = tmp_path / "held"
    live = start("train", "--limit", "3000", "--epochs", "50", "--no-progress", "--out", held)
    wait_for(lambda: (held / LOCK_FILE).exists() and (held / LOCK_FILE).read_text().strip(), "the first run's claim")
    for argv in (["train", *TINY, "--overwrite"], ["search", "--quick"]):
        second = start(*argv, "--out", held)
        out, err = second.communicate(timeout=120)
        assert second.returncode == 2 and out == "", err
        assert err == (f"scratch-ae: error: argument --out: {held} is in use by another scratch-ae run "
                       f"(pid {live.pid}); wait for it to finish, or choose another --out\n")
    live.send_signal(signal.SIGKILL)  # killed outright: no chance to release anything
    live.communicate(timeout=60)
    assert (held / LOCK_FILE).exists()  # left behind, but no process holds it any more
    again = start("train", *TINY, "--overwrite", "--out", held)
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0, err
    assert (held / "metrics.json").exists() and not (held / LOCK_FILE).exists()


def test_a_claim_is_released_and_bad_input_leaves_no_folder_behind(tmp_path):
    first = claim_fresh_folder(str(tmp_path / "runs" / "lab"))
    second = claim_fresh_folder(str(tmp_path / "runs" / "lab"))
    assert (first.path, second.path) == (str(tmp_path / "runs" / "lab"), str(tmp_path / "runs" / "lab-2"))
    with pytest.raises(OutputError, match="is in use by another scratch-ae run"):
        claim_folder(first.path)
    first.release()
    claim_folder(first.path).release()  # free again
    second.release(discard=True)  # as after bad input: the folder it made goes
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["lab"]
    nested = claim_folder(str(tmp_path / "a" / "b"))
    nested.release(discard=True)
    assert not (tmp_path / "a").exists()


def test_bad_input_with_the_default_folder_writes_nothing(tmp_path, monkeypatch):
    from scratch_ae.cli import main
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--patience", "2", "--val-fraction", "0"]) == 2
    assert main(["search", "--quick", "--space", "lr=0:1"]) == 2
    assert main(["lab", "colored-denoise", "--quick", "--dataset", "mnist"]) == 2
    assert list(tmp_path.iterdir()) == []
