"""The training loop on real MNIST: learning, early stopping, NaN handling, determinism, resume."""
import signal

import numpy as np
import pytest

from scratch_ae import Autoencoder, Trainer, TrainingInterrupted
from scratch_ae.optimizers import SGD, Adam
from scratch_ae.training import DivergenceWarning


def fresh(seed=0, sizes=(784, 256)):
    return Autoencoder(sizes=list(sizes), seed=seed)


def test_standard_784_256_784_network_lowers_the_loss_on_real_mnist(mnist_test_images):
    model = fresh()
    X, X_val = mnist_test_images[:2000], mnist_test_images[8000:9000]
    untrained = Trainer(model, Adam(1e-3), progress=False).evaluate(model.backend_.asarray(X_val))
    history = Trainer(model, Adam(1e-3), epochs=3, batch_size=100, progress=False).fit(X, X_val)
    assert history["train_loss"][2] < history["train_loss"][0]
    assert history["val_loss"][2] < history["val_loss"][0] < untrained
    assert len(history["epoch_seconds"]) == 3 and history["stop_reason"] is None


def test_early_stopping_stops_and_restores_the_best_weights(mnist_test_images):
    # 30 training images and a large learning rate: the network overfits and validation loss turns up.
    model = fresh(sizes=(784, 64))
    X, X_val = mnist_test_images[:30], mnist_test_images[5000:5500]
    trainer = Trainer(model, Adam(1e-2), epochs=200, batch_size=10, patience=3, progress=False)
    history = trainer.fit(X, X_val)
    assert history["epochs_run"] < 200
    assert "early stopping" in history["stop_reason"]
    best = min(history["val_loss"])
    assert history["best_epoch"] == history["val_loss"].index(best) + 1 == history["epochs_run"] - 3
    assert trainer.evaluate(model.backend_.asarray(X_val)) == pytest.approx(best, rel=1e-6)


def test_nan_in_the_data_is_rejected_before_training_starts(mnist_test_images):
    model = fresh(sizes=(784, 32))
    before = {k: v.copy() for k, v in model.parameters().items()}
    X = mnist_test_images[:100].copy()
    X[5, 300] = np.nan
    with pytest.raises(ValueError, match=r"training data contains NaN or inf \(first at row 5\)"):
        Trainer(model, Adam(1e-3), progress=False).fit(X)
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(value, before[name])


def test_the_finite_check_names_the_right_row_past_its_first_chunk(mnist_test_images):
    from scratch_ae.training import check_finite_data
    X = mnist_test_images[:1000].copy()
    X[777, 3] = np.inf
    with pytest.raises(ValueError, match=r"validation data contains NaN or inf \(first at row 777\)"):
        check_finite_data(X, "validation data", chunk_rows=100)
    check_finite_data(mnist_test_images[:1000], chunk_rows=100)  # clean data passes


@pytest.mark.parametrize("loss, output", [("mse", "relu"), ("bce", "sigmoid")])
def test_evaluate_is_the_mean_reconstruction_loss_without_penalties(mnist_test_images, loss, output):
    model = Autoencoder(sizes=[784, 32], loss=loss, output_activation=output, l1=1e-2)
    X = model.backend_.asarray(mnist_test_images[:300])
    by_batch = Trainer(model, Adam(1e-3), progress=False, eval_batch_size=128).evaluate(X)
    assert by_batch == pytest.approx(float(model.reconstruction_loss(X)), rel=1e-5)
    assert float(model.objective(X)) > float(model.reconstruction_loss(X))  # the L1 term is left out


def test_wrongly_shaped_data_is_rejected_with_the_expected_shape(mnist_test_images):
    with pytest.raises(ValueError, match=r"shape \(n_samples, 784\), got \(100, 28, 28\)"):
        Trainer(fresh(sizes=(784, 32)), Adam(1e-3), progress=False).fit(mnist_test_images[:100].reshape(-1, 28, 28))


def test_a_diverging_loss_stops_training_and_keeps_the_last_finite_weights(mnist_test_images):
    # A linear network cannot die like a ReLU one: with a huge step it overflows to inf/NaN.
    model = Autoencoder(sizes=[784, 32], activation="identity", output_activation="identity")
    X = mnist_test_images[:500]
    trainer = Trainer(model, SGD(lr=1e-3), epochs=1, progress=False)
    trainer.fit(X)
    good = {k: v.copy() for k, v in model.parameters().items()}
    trainer = Trainer(model, SGD(lr=1e6), epochs=3, progress=False)
    with pytest.warns(DivergenceWarning, match="training loss (became|diverged)"):
        history = trainer.fit(X)
    assert history["epochs_run"] == 0 and history["diverged"] and history["best_epoch"] is None
    assert "reset to the weights it started from" in history["stop_reason"]
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(value, good[name])


def test_same_seed_gives_identical_weights(mnist_test_images):
    runs = []
    for _ in range(2):
        model = fresh(sizes=(784, 32))
        Trainer(model, Adam(1e-3), epochs=2, progress=False, seed=7).fit(mnist_test_images[:600])
        runs.append(model.state_arrays())
    for name in runs[0]:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])


def _interrupted_then_resumed(X, tmp_path, stop_at, use_signal, noise=None):
    resume = tmp_path / "resume.npz"

    def interrupt(trainer, epoch, step):
        if (epoch, step) == stop_at:
            if use_signal:
                signal.raise_signal(signal.SIGINT)  # what Ctrl-C delivers
            else:
                trainer.request_stop()

    model = fresh(sizes=(784, 32))
    trainer = Trainer(model, Adam(1e-3), epochs=3, batch_size=100, progress=False, resume_path=resume,
                      step_callback=interrupt, noise=noise)
    with pytest.raises(TrainingInterrupted, match="resumable checkpoint written"):
        trainer.fit(X, X[:200])
    assert resume.exists()
    model = fresh(sizes=(784, 32), seed=0)
    trainer = Trainer(model, Adam(1e-3), epochs=3, batch_size=100, progress=False, resume_path=resume, noise=noise)
    trainer.load_resume(resume)
    history = trainer.fit(X, X[:200])
    assert not resume.exists()  # removed once training finishes
    return model.state_arrays(), history


@pytest.mark.parametrize("stop_at, use_signal", [((1, 2), True), ((0, 5), False)])
def test_resumed_run_ends_with_the_same_weights_as_an_uninterrupted_one(mnist_test_images, tmp_path, stop_at, use_signal):
    X = mnist_test_images[:1000]
    model = fresh(sizes=(784, 32))
    reference = Trainer(model, Adam(1e-3), epochs=3, batch_size=100, progress=False).fit(X, X[:200])
    resumed, history = _interrupted_then_resumed(X, tmp_path, stop_at, use_signal)
    for name, value in model.state_arrays().items():
        np.testing.assert_array_equal(resumed[name], value)
    assert history["val_loss"] == pytest.approx(reference["val_loss"], rel=1e-6)
    assert history["train_loss"] == pytest.approx(reference["train_loss"], rel=1e-6)


def test_denoising_run_resumes_with_the_same_noise(mnist_test_images, tmp_path):
    X = mnist_test_images[:600]
    model = fresh(sizes=(784, 32))
    Trainer(model, Adam(1e-3), epochs=3, batch_size=100, progress=False, noise="gaussian:0.45").fit(X)
    resumed, _ = _interrupted_then_resumed(X, tmp_path, (1, 3), False, noise="gaussian:0.45")
    for name, value in model.state_arrays().items():
        np.testing.assert_array_equal(resumed[name], value)


def test_denoising_training_reconstructs_the_clean_target(mnist_test_images):
    model = Autoencoder(sizes=[784, 128], seed=0, epochs=3, noise="gaussian:0.45").fit(mnist_test_images[:2000])
    assert model.history_["train_loss"][-1] < model.history_["train_loss"][0]
