"""The scratch-ae command line: outputs, one-line errors with exit status 2, Ctrl-C and --resume."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scratch_ae import Autoencoder
from scratch_ae.cli import main

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--limit", "1500", "--epochs", "2", "--no-progress"]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", "--out", str(out), *QUICK]) == 0
    return out


def test_train_writes_metrics_checkpoint_and_figures(trained_run):
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert len(metrics["history"]["train_loss"]) == len(metrics["history"]["val_loss"]) == 2
    assert len(metrics["history"]["epoch_seconds"]) == 2
    for part in ("train", "test"):
        assert set(metrics[part]) >= {"mse_per_pixel", "sse_per_image"}
        assert metrics[part]["sse_per_image"] == pytest.approx(784 * metrics[part]["mse_per_pixel"])
    assert metrics["test"]["n_images"] == 10000
    assert metrics["backend"] == "numpy" and "numpy" in metrics["versions"] and metrics["device"]
    config = metrics["config"]
    assert config["sizes"] == [784, 256] and config["optimizer"] == "adam" and config["lr"] == 1e-3
    assert config["batch_size"] == 100 and config["loss"] == "mse"
    assert {p.name for p in (trained_run / "figures").iterdir()} == {"loss_curves.png", "reconstructions.png", "filters.png"}
    model = Autoencoder.load(trained_run / "model.npz")
    assert model.layer_config_[0] == {"type": "dense", "in": 784, "out": 256, "activation": "relu"}


def test_evaluate_prints_and_writes_test_metrics_under_noise(trained_run, capsys, tmp_path):
    assert main(["evaluate", str(trained_run / "model.npz"), "--out", str(tmp_path)]) == 0
    clean = json.loads((tmp_path / "evaluation.json").read_text())["test"]
    assert main(["evaluate", str(trained_run / "model.npz"), "--noise", "gaussian:0.5", "--out", str(tmp_path)]) == 0
    noisy = json.loads((tmp_path / "evaluation.json").read_text())
    assert noisy["corruption"] == "gaussian:0.5" and noisy["test"]["sse_per_image"] > clean["sse_per_image"]
    assert main(["evaluate", str(trained_run / "model.npz"), "--occlusion", "0.3", "--out", str(tmp_path)]) == 0
    assert '"sse_per_image"' in capsys.readouterr().out


def test_lab_takes_an_epoch_count(tmp_path, capsys):
    assert main(["lab", "deep-30", "--quick", "--epochs", "1", "--no-progress", "--out", str(tmp_path)]) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["recipe"]["epochs"] == results["recipe"]["epochs_run"] == 1
    assert main(["lab", "deep-30", "--epochs", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--epochs" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_reconstruct_and_info(trained_run, tmp_path, capsys):
    assert main(["reconstruct", str(trained_run / "model.npz"), "--out", str(tmp_path)]) == 0
    assert (tmp_path / "reconstruct.png").stat().st_size > 1000
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "numpy: available" in out and "cupy:" in out and "mnist:" in out


@pytest.mark.parametrize("argv, message", [
    (["--dataset", "cifar"], "argument --dataset: invalid choice: 'cifar'"),
    (["--model", "gan"], "argument --model: invalid choice: 'gan' (choose from 'shallow', 'deep'"),
    (["--optimizer", "rmsprop"], "argument --optimizer: invalid choice: 'rmsprop'"),
    (["--backend", "torch"], "argument --backend: invalid choice: 'torch' (choose from 'numpy', 'cupy')"),
    (["--hidden", "0"], "argument --hidden: expected a positive integer, got '0'"),
    (["--code", "-3"], "argument --code: expected a positive integer, got '-3'"),
    (["--lr", "0"], "argument --lr: expected a positive finite number, got '0'"),
    (["--epochs", "0"], "argument --epochs: expected a positive integer, got '0'"),
    (["--batch-size", "-1"], "argument --batch-size: expected a positive integer"),
    (["--noise", "purple:1"], "unknown"),
    (["--patience", "2", "--val-fraction", "0"], "patience"),
])
def test_bad_arguments_give_one_line_exit_2_and_write_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", "--out", str(out), *QUICK, *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("scratch-ae: error:") and message in err, err
    assert not out.exists()


def test_an_unreadable_data_file_is_reported_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SCRATCH_AE_MIRROR", "http://127.0.0.1:9/")  # nothing listens: never the network
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        (folder / name).write_bytes(b"\x1f\x8b\x08\x00 this is not really gzip")
    out = tmp_path / "out"
    assert main(["train", "--dataset", "fashion-mnist", "--data-dir", str(tmp_path / "data"), "--out", str(out), *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "train-images-idx3-ubyte.gz" in err, err
    assert not out.exists()


def test_missing_gpu_is_reported_in_one_line(tmp_path, capsys):
    from scratch_ae.backend import cupy_unavailable_reason
    if cupy_unavailable_reason() is None:
        pytest.skip("a GPU is present here")
    assert main(["train", "--backend", "cupy", "--out", str(tmp_path / "o"), *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and 'pip install -e ".[gpu]"' in err
    assert not (tmp_path / "o").exists()


def _cli(*args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    return [sys.executable, "-m", "scratch_ae", *args], env


def test_ctrl_c_saves_a_resumable_checkpoint_and_resume_matches_an_uninterrupted_run(tmp_path):
    # 30 short epochs: long enough that the signal lands during training even on a busy machine
    args = ["train", "--hidden", "64", "--limit", "3000", "--epochs", "30", "--no-progress", "--seed", "3"]
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    cmd, env = _cli(*args, "--out", str(reference))
    subprocess.run(cmd, env=env, check=True, capture_output=True)

    cmd, env = _cli(*args, "--out", str(interrupted))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while not (interrupted / "resume.npz").exists() and time.time() < deadline:  # epoch 1 finished
        time.sleep(0.05)
    time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "continue with: scratch-ae train --resume" in err and not (interrupted / "model.npz").exists()

    cmd, env = _cli("train", "--resume", str(interrupted), "--no-progress")
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    a, b = Autoencoder.load(reference / "model.npz"), Autoencoder.load(interrupted / "model.npz")
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(b.parameters()[name], value)
    assert not (interrupted / "resume.npz").exists()


def test_resume_of_a_directory_without_a_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --resume" in err and "does not exist" in err


@pytest.mark.parametrize("argv, dataset", [(["colored-denoise"], None), (["conv"], None),
                                           (["colored-denoise", "--dataset", "colored-mnist"], "colored-mnist")])
def test_lab_dataset_defaults_to_the_labs_own(argv, dataset, tmp_path, monkeypatch):
    # `scratch-ae lab colored-denoise` alone must run: the lab, not the CLI, knows its images.
    import scratch_ae.labs as labs
    seen = {}

    def fake_run_lab(name, out_dir, **options):
        seen.update(options, name=name)
        return {"rows": []}
    monkeypatch.setattr(labs, "run_lab", fake_run_lab)
    assert main(["lab", *argv, "--out", str(tmp_path / "lab")]) == 0
    assert seen["name"] == argv[0] and seen.get("dataset") == dataset


def test_lab_colored_denoise_default_dataset_is_colored_mnist():
    import inspect
    from scratch_ae.labs import colored_denoise
    assert inspect.signature(colored_denoise.run).parameters["dataset"].default == "colored-mnist"
