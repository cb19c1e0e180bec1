"""The CuPy code paths, run without a GPU on a stand-in for CuPy (tests/cupy_stand_in.py).

The stand-in is NumPy underneath, so these tests cannot show speed or GPU rounding
(test_gpu_parity.py does that on a real GPU).  They show what a GPU run depends on
and what a CPU-only machine could otherwise never check: that every CuPy branch
runs, that no array is silently copied to the host, that training reads the device
once per epoch and not once per step, and that the text of the fused Adam kernel
computes the reference update.
"""
import json

import numpy as np
import pytest

import cupy_stand_in
import test_fast_adam
import test_gpu_parity
from scratch_ae import Autoencoder
from scratch_ae.cli import main
from scratch_ae.labs import LABS, run_lab
from test_fast_adam import MAKERS


def host_reads_of_fit(X, **config):
    """(host reads during fit, the fitted model): every read `fit` makes, before, during and after the steps."""
    model = Autoencoder(sizes=[784, 32], backend="cupy", seed=0, **config)
    cupy_stand_in.HOST_READS.clear()
    model.fit(X)
    return list(cupy_stand_in.HOST_READS), model


def test_training_on_cupy_reads_the_device_once_per_epoch_not_once_per_step(stand_in, mnist_test_images):
    X = mnist_test_images[:1200]
    reads_12_steps, model = host_reads_of_fit(X, epochs=3, batch_size=100)
    reads_24_steps, _ = host_reads_of_fit(X, epochs=3, batch_size=50)
    assert type(model.parameters()["layers.0.W"]).__module__ == "cupy"  # the stand-in was in use
    # one read before the first step (the initial loss, the divergence yardstick), then the epoch's loss
    # once per epoch, nothing per step
    assert reads_12_steps == reads_24_steps == ["float"] * (1 + 3)


def test_validation_adds_one_read_per_epoch(stand_in, mnist_test_images):
    X = mnist_test_images[:1200]
    model = Autoencoder(sizes=[784, 32], backend="cupy", seed=0, epochs=2)
    cupy_stand_in.HOST_READS.clear()
    model.fit(X[:1000], X_val=X[1000:])
    # the initial loss once, then per epoch: the training loss, the validation loss
    assert cupy_stand_in.HOST_READS == ["float"] * (1 + 4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(MAKERS))
def test_the_cupy_adam_kernels_text_computes_the_reference_update(stand_in, name, dtype):
    """The GPU test of the ElementwiseKernel, on the stand-in: the kernel's body, run statement
    by statement in the parameter's dtype, against the plain xp reference (to rounding)."""
    test_fast_adam.test_cupy_fused_kernel_equals_the_reference(name, dtype)


@pytest.mark.parametrize("test", [
    test_gpu_parity.test_numpy_and_cupy_give_the_same_loss_curve_over_50_steps,
    test_gpu_parity.test_cupy_trainer_matches_numpy_trainer_and_checkpoints_load_on_the_cpu,
    test_gpu_parity.test_cupy_gradients_match_finite_differences,
], ids=lambda f: f.__name__)
def test_the_gpu_parity_tests_pass_on_the_stand_in(stand_in, test, mnist_test_images, mnist_sample, tmp_path):
    """The real-GPU tests' code paths (device batches, the fused kernel, checkpoints from the
    device, float64 gradient checks) on the stand-in."""
    fixtures = {"mnist_test_images": mnist_test_images, "mnist_sample": mnist_sample, "tmp_path": tmp_path}
    test(**{name: fixtures[name] for name in test.__code__.co_varnames[:test.__code__.co_argcount]})


@pytest.mark.parametrize("config", list(test_gpu_parity.OTHER_MODELS.values()), ids=list(test_gpu_parity.OTHER_MODELS))
def test_penalties_and_tied_weights_run_on_the_cupy_paths(stand_in, mnist_test_images, config):
    test_gpu_parity.test_penalties_tied_weights_and_bce_give_the_same_loss_curve_on_both_backends(mnist_test_images, config)


@pytest.mark.parametrize("config", list(test_gpu_parity.CONV_MODELS.values()), ids=list(test_gpu_parity.CONV_MODELS))
def test_conv_models_run_on_the_cupy_paths(stand_in, mnist_test_images, config):
    test_gpu_parity.test_conv_models_give_the_same_loss_curve_on_both_backends(mnist_test_images, config)


def test_the_train_command_runs_on_cupy_and_writes_a_checkpoint_the_cpu_loads(stand_in, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--backend", "cupy", "--limit", "1000", "--epochs", "2", "--no-progress",
                 "--noise", "gaussian:0.3", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["sse_per_image"] > 0
    model = Autoencoder.load(out / "model.npz")  # on the NumPy backend
    assert type(model.parameters()["layers.0.W"]) is np.ndarray


# The convolutional and VAE labs' code paths run on the stand-in above (their models' parity tests);
# their whole quick labs on the stand-in take minutes, so they join the slow set.
HEAVY_LABS = ("conv", "colored-denoise", "vae", "encoded-space")


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if name in HEAVY_LABS else name
                                  for name in LABS])
def test_every_lab_runs_on_the_cupy_paths_in_quick_mode(stand_in, tmp_path, name):
    results = run_lab(name, str(tmp_path), quick=True, backend="cupy")
    assert results["recipe"]["backend"] == "cupy"
    assert json.loads((tmp_path / "results.json").read_text())["recipe"]["backend"] == "cupy"
