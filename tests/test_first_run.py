"""A first run that cannot go wrong quietly: every bad case gives one line and loses nothing.

The command-line cases run `python -m scratch_ae` in a real subprocess and check the exit
status, that stderr is one line naming the argument, path or epoch, and what was (not)
left behind.  Library cases (input scaling, dtypes, data range, divergence) run in process.
"""
import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from scratch_ae import Autoencoder, CheckpointError, Trainer
from scratch_ae.checkpoint import save_arrays
from scratch_ae.optimizers import SGD, Adam
from scratch_ae.training import DivergenceWarning

REPO = Path(__file__).resolve().parents[1]
QUICK = ["--limit", "1000", "--epochs", "1", "--no-progress"]


def cli(*args, cwd=None):
    """Run the real command line; returns (returncode, stdout, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    done = subprocess.run([sys.executable, "-m", "scratch_ae", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)
    return done.returncode, done.stdout, done.stderr


def one_error_line(err, *needles):
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("scratch-ae: error:"), err
    for needle in needles:
        assert needle in lines[0], (needle, err)
    return lines[0]


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("finished")
    rc, stdout, err = cli("train", "--out", out, "--overwrite", *QUICK)
    assert rc == 0, err
    return out


# ---------------------------------------------------------------------------- output folders
def _unwritable_folder(tmp_path):
    """A folder nobody here may write in: chmod 0555 for an ordinary user; root ignores modes, so /sys."""
    if os.geteuid() != 0:
        folder = tmp_path / "locked"
        folder.mkdir()
        folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return folder
    if not os.path.isdir("/sys"):
        pytest.skip("running as root and no read-only /sys to stand for an unwritable folder")
    return Path("/sys")


@pytest.mark.parametrize("case", ["existing file", "under a file", "unwritable"])
@pytest.mark.parametrize("command", ["train", "evaluate", "reconstruct", "lab"])
def test_a_bad_output_folder_is_refused_before_any_work(case, command, tmp_path, finished_run):
    (tmp_path / "a-file").write_text("keep me")
    out = {"existing file": tmp_path / "a-file", "under a file": tmp_path / "a-file" / "run",
           "unwritable": _unwritable_folder(tmp_path) / "run"}[case]
    argv = {"train": ["train", *QUICK], "evaluate": ["evaluate", finished_run / "model.npz"],
            "reconstruct": ["reconstruct", finished_run / "model.npz"],
            "lab": ["lab", "pca-vs-ae", "--quick", "--no-progress"]}[command]
    before = listing(tmp_path), listing(finished_run)
    rc, stdout, err = cli(*argv, "--out", out, cwd=tmp_path)
    assert rc == 2, err
    reason = {"existing file": "is an existing file", "under a file": "is a file, not a folder",
              "unwritable": "cannot write in"}[case]
    one_error_line(err, "argument --out", reason)
    assert stdout == ""  # nothing trained, nothing evaluated
    assert (listing(tmp_path), listing(finished_run)) == before  # nothing written anywhere
    assert (tmp_path / "a-file").read_text() == "keep me"


def test_the_unwritable_reason_is_the_operating_systems(tmp_path, monkeypatch):
    from scratch_ae import outputs

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    monkeypatch.setattr(outputs.tempfile, "mkstemp", read_only)
    with pytest.raises(outputs.OutputError, match=r"argument --out: cannot write in .* \(Read-only file system\)"):
        outputs.check_writable(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_train_without_out_never_replaces_an_earlier_run(tmp_path):
    for expected in ("train", "train-2"):
        rc, stdout, err = cli("train", *QUICK, cwd=tmp_path)
        assert rc == 0, err
        assert f"wrote {os.path.join('runs', expected)}/metrics.json" in stdout.splitlines()[-1]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["train", "train-2"]


def test_an_explicit_out_holding_a_finished_run_needs_overwrite(finished_run):
    model_bytes = (finished_run / "model.npz").read_bytes()
    rc, stdout, err = cli("train", "--out", finished_run, *QUICK)
    assert rc == 2
    one_error_line(err, "argument --out", "already holds a finished run", "--overwrite")
    assert (finished_run / "model.npz").read_bytes() == model_bytes
    rc, stdout, err = cli("train", "--out", finished_run, "--overwrite", "--seed", "1", *QUICK)
    assert rc == 0, err
    assert (finished_run / "model.npz").read_bytes() != model_bytes


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_checkpoints_get_the_users_umask_not_0600(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        save_arrays(tmp_path / "model.npz", {"w": np.zeros(3)}, {"x": 1})
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "model.npz").stat().st_mode) == mode


def test_a_training_run_leaves_files_others_can_read(finished_run):
    for name in ("model.npz", "metrics.json"):
        assert stat.S_IMODE((finished_run / name).stat().st_mode) & 0o044 == 0o044 & ~_umask()


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------- diverging and dead runs
@pytest.mark.parametrize("argv", [["--lr", "1e6"], ["--optimizer", "sgd", "--lr", "1e6"]])
def test_a_diverging_run_exits_3_says_so_in_one_line_and_saves_no_weights(argv, tmp_path):
    out = tmp_path / "run"
    rc, stdout, err = cli("train", "--out", out, "--limit", "1000", "--epochs", "3", *argv)  # progress on: not a tty
    assert rc == 3, err
    lines = [line for line in err.splitlines() if not line.startswith("epoch ")]
    assert len(lines) == 1 and "diverged in epoch 1" in lines[0] and "no model.npz" in lines[0], err
    assert "last finite epoch" not in lines[0]
    assert "warnings.warn" not in err and "Warning" not in err  # one clean line, no source line glued on
    metrics = json.loads((out / "metrics.json").read_text())  # strict JSON: json.loads rejects NaN only if asked
    assert metrics["diverged"] is True and "diverged in epoch 1" in metrics["stop_reason"]
    assert metrics["test"] is None and metrics["epochs_run"] == 0
    assert listing(out) == ["metrics.json"]  # no model of random weights, no empty loss plot


def test_a_run_that_diverges_later_restores_its_best_finite_epoch(mnist_test_images):
    model = Autoencoder(sizes=[784, 32], seed=0)
    optimizer = Adam(1e-3)

    def blow_up(trainer, epoch):
        if epoch == 1:
            optimizer.lr = 1e6
    trainer = Trainer(model, optimizer, epochs=6, progress=False, callbacks=[blow_up])
    kept = {}
    trainer.callbacks.insert(0, lambda t, e: kept.setdefault(e, model.state_arrays()))
    with pytest.warns(DivergenceWarning, match=r"diverged in epoch \d|became"):
        history = trainer.fit(mnist_test_images[:1000], mnist_test_images[1000:1300])
    assert history["diverged"] and history["best_epoch"] in (1, 2)
    assert f"restored the weights of epoch {history['best_epoch']}, the best finite one" in history["stop_reason"]
    for name, value in model.state_arrays().items():
        np.testing.assert_array_equal(value, kept[history["best_epoch"] - 1][name])


def test_a_healthy_run_is_not_called_diverged(mnist_test_images):
    history = Trainer(Autoencoder(sizes=[784, 64]), Adam(1e-3), epochs=2, progress=False).fit(mnist_test_images[:1000])
    assert not history["diverged"] and history["stop_reason"] is None
    assert history["train_loss"][0] < history["initial_loss"]


def test_a_checkpoint_with_non_finite_weights_is_refused_everywhere(finished_run, tmp_path):
    model = Autoencoder.load(finished_run / "model.npz")
    arrays = model.state_arrays()
    arrays["layers.1.W"][3, 5] = np.nan
    bad = tmp_path / "bad.npz"
    save_arrays(bad, arrays, model.config())
    with pytest.raises(CheckpointError, match="layers.1.W holds NaN or inf"):
        Autoencoder.load(bad)
    for command in ("evaluate", "reconstruct"):
        rc, stdout, err = cli(command, bad, "--out", tmp_path / command)
        assert rc == 2 and stdout == ""
        one_error_line(err, "layers.1.W holds NaN or inf")
        assert not (tmp_path / command).exists()


def test_a_file_that_is_not_a_checkpoint_says_so_without_numpys_pickle_advice(tmp_path):
    (tmp_path / "notes.npz").write_text("these are my notes")
    rc, stdout, err = cli("evaluate", tmp_path / "notes.npz")
    assert rc == 2
    line = one_error_line(err, "is not a scratch-ae checkpoint")
    assert "pickle" not in line


# ---------------------------------------------------------------------------- technically valid, wrong input
def test_uint8_images_are_scaled_exactly_as_the_bundled_loader_does(mnist_test_images):
    pixels = np.rint(mnist_test_images[:600] * 255).astype(np.uint8)
    scaled = pixels.astype(np.float32) / np.float32(255)
    a = Autoencoder(sizes=[784, 32], epochs=1, seed=3).fit(pixels)
    b = Autoencoder(sizes=[784, 32], epochs=1, seed=3).fit(scaled)
    for name, value in a.parameters().items():
        np.testing.assert_array_equal(value, b.parameters()[name])
    np.testing.assert_array_equal(a.transform(pixels[:50]), b.transform(scaled[:50]))
    assert a.score(pixels[:50]) == b.score(scaled[:50])
    loss, _ = a.loss_and_grads(pixels[:20])
    assert float(loss) == float(a.loss_and_grads(scaled[:20])[0]) < 1.0  # per pixel, not ~4588


@pytest.mark.parametrize("kwargs", [dict(loss="bce", output_activation="sigmoid"),
                                    dict(output_activation="sigmoid")])
def test_data_far_outside_0_1_is_refused_by_a_sigmoid_or_bce_model(mnist_test_images, kwargs):
    raw = mnist_test_images[:200] * 255  # floats on the 0-255 scale
    model = Autoencoder(sizes=[784, 16], epochs=1, **kwargs)
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]: scale it"):
        model.fit(raw)
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        model.score(raw)
    standardised = (mnist_test_images[:200] - 0.13) / 0.31
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        model.fit(standardised)
    model.fit(mnist_test_images[:200])  # [0, 1] is fine
    Autoencoder(sizes=[784, 16], epochs=1).fit(raw[:100])  # a ReLU output may fit any scale


@pytest.mark.parametrize("bad, expected", [
    (np.array([["a"] * 784] * 3), "got dtype <U1"),
    (np.array([[None] * 784] * 3, dtype=object), "dtype object whose entries are not all numbers"),
    ([[0.0] * 784, [0.0] * 783], "ragged rows"),
    (np.zeros((3, 784), dtype=complex), "got dtype complex128"),
])
@pytest.mark.parametrize("method", ["fit", "transform", "score"])
def test_non_numeric_input_is_one_line_naming_the_argument_and_the_dtype(bad, expected, method):
    model = Autoencoder(sizes=[784, 8], epochs=1)
    with pytest.raises(TypeError) as caught:
        getattr(model, method)(bad)
    message = str(caught.value)
    assert "\n" not in message and expected in message and "float32, float64 or uint8" in message
    assert "ufunc" not in message
    assert message.startswith("training data" if method == "fit" else "X")


def test_an_object_array_of_numbers_is_converted(mnist_test_images):
    X = mnist_test_images[:100]
    model = Autoencoder(sizes=[784, 8], epochs=1)
    np.testing.assert_array_equal(model.transform(X.astype(object)), model.transform(X))


# ---------------------------------------------------------------------------- options not silently ignored
@pytest.fixture
def interrupted_run(tmp_path, monkeypatch):
    """A run stopped after its third step, as Ctrl-C stops it: DIR/resume.npz and nothing else."""
    from scratch_ae import training
    from scratch_ae.cli import main
    original = training.Trainer.__init__

    def stopping(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.step_callback = lambda trainer, epoch, step: step == 2 and trainer.request_stop()
    monkeypatch.setattr(training.Trainer, "__init__", stopping)
    out = tmp_path / "interrupted"
    assert main(["train", "--out", str(out), "--limit", "1000", "--epochs", "2", "--no-progress"]) == 130
    assert listing(out) == ["resume.npz"]
    return out


@pytest.mark.parametrize("flag", [["--lr", "0.01"], ["--hidden", "64"], ["--optimizer", "sgd"], ["--seed", "1"],
                                  ["--out", "elsewhere"]])
def test_resume_refuses_options_that_contradict_the_saved_run(interrupted_run, flag):
    resume_bytes = (interrupted_run / "resume.npz").read_bytes()
    rc, stdout, err = cli("train", "--resume", interrupted_run, *flag)
    assert rc == 2
    one_error_line(err, f"argument {flag[0]}", "--resume continues the saved run", "--epochs")
    assert (interrupted_run / "resume.npz").read_bytes() == resume_bytes and listing(interrupted_run) == ["resume.npz"]


def test_resume_honours_epochs(interrupted_run):
    rc, stdout, err = cli("train", "--resume", interrupted_run, "--epochs", "3", "--no-progress")
    assert rc == 0, err
    metrics = json.loads((interrupted_run / "metrics.json").read_text())
    assert metrics["config"]["epochs"] == 3 and len(metrics["history"]["train_loss"]) == 3


@pytest.mark.parametrize("argv, note, used", [
    (["--kl-rho", "0.05"], "--kl-rho: the code layer uses sigmoid", ("relu", "sigmoid", "relu")),
    (["--loss", "bce"], "--loss bce: the output activation is sigmoid", ("relu", "relu", "sigmoid")),
    ([], None, ("relu", "relu", "relu")),
])
def test_preset_switches_are_said_aloud_and_the_activations_used_recorded(argv, note, used, tmp_path):
    rc, stdout, err = cli("train", "--out", tmp_path / "r", *QUICK, *argv)
    assert rc == 0, err
    notes = [line for line in err.splitlines() if line.startswith("scratch-ae: note:")]
    assert (notes == []) if note is None else (len(notes) == 1 and note in notes[0]), err
    config = json.loads((tmp_path / "r" / "metrics.json").read_text())["config"]
    assert (config["activation"], config["code_activation"], config["output_activation"]) == used


@pytest.mark.parametrize("argv, needle", [
    (["--loss", "bce", "--output-activation", "relu"], "argument --output-activation: --loss bce needs"),
    (["--model", "shallow", "--hidden", "256,64"], "argument --hidden: --model shallow has one hidden layer"),
    (["--hidden", "256", "--code", "32"], "argument --code: in --model shallow the hidden layer is the code"),
])
def test_contradicting_presets_are_refused_before_any_work(argv, needle, tmp_path):
    rc, stdout, err = cli("train", "--out", tmp_path / "r", *QUICK, *argv)
    assert rc == 2 and stdout == ""
    one_error_line(err, needle)
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------- what is reported
def test_a_denoising_run_reports_clean_and_corrupted_test_error(tmp_path):
    rc, stdout, err = cli("train", "--model", "denoising", "--out", tmp_path / "d", *QUICK)
    assert rc == 0, err
    metrics = json.loads((tmp_path / "d" / "metrics.json").read_text())
    clean, noisy = metrics["test"], metrics["test_corrupted"]
    assert noisy["corruption"] == "gaussian:0.45" and noisy["sse_per_image"] != clean["sse_per_image"]
    last = stdout.splitlines()[-1]
    assert f"{clean['sse_per_image']:.4f} squared error per image on clean input" in last
    assert f"{noisy['sse_per_image']:.4f} on gaussian:0.45-corrupted input" in last


def test_evaluate_says_where_it_wrote(finished_run, tmp_path):
    rc, stdout, err = cli("evaluate", finished_run / "model.npz", "--out", tmp_path)
    assert rc == 0 and f"wrote {tmp_path / 'evaluation.json'}" in err
    json.loads((tmp_path / "evaluation.json").read_text())


def test_help_version_bare_command_and_info():
    rc, stdout, _ = cli()
    assert rc == 0 and "usage: scratch-ae" in stdout
    assert all(name in stdout for name in ("train", "evaluate", "reconstruct", "info", "lab"))
    rc, stdout, _ = cli("--version")
    assert rc == 0 and stdout.startswith("scratch-ae 0.")
    rc, stdout, _ = cli("train", "--help")
    flat = " ".join(stdout.split())
    for shown in ("(default: 0.001)", "(default: 8)", "(default: 100)", "(default: adam)", "(default: 0)",
                  "(default: 1.0)"):
        assert shown in flat, shown
    assert len([line for line in stdout.splitlines() if line.startswith("  --")]) > 20  # every option is listed
    assert [a.option_strings for a in _train_actions() if not a.help] == []  # each with a one-line help
    rc, stdout, _ = cli("info")
    assert rc == 0 and "numba:" in stdout


def _train_actions():
    from scratch_ae.cli import build_parser
    return build_parser().subcommands["train"]._actions


def test_progress_is_one_line_per_epoch_when_stderr_is_not_a_terminal(tmp_path):
    rc, stdout, err = cli("train", "--out", tmp_path / "p", "--limit", "1000", "--epochs", "2")
    assert rc == 0, err
    epochs = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"] and "\r" not in err


def test_progress_bar_on_a_terminal_names_the_epoch(mnist_test_images, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    screen = Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    Trainer(Autoencoder(sizes=[784, 16]), Adam(1e-3), epochs=2, progress=True).fit(mnist_test_images[:300])
    assert "epoch 2/2" in screen.getvalue() and "\r" in screen.getvalue()


def test_sgd_diverging_with_dead_units_is_caught_too(mnist_test_images):
    # SGD at lr 1e6 kills every ReLU: the loss stays finite but far above where it started.
    with pytest.warns(DivergenceWarning, match="diverged in epoch 1|became"):
        history = Trainer(Autoencoder(sizes=[784, 64]), SGD(lr=1e6), epochs=2, progress=False).fit(
            mnist_test_images[:1000])
    assert history["diverged"]
