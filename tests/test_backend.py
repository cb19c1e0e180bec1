"""The backend switch: NumPy always, CuPy with a clear error where it cannot run."""
import numpy as np
import pytest

from scratch_ae import Autoencoder, BackendError, get_backend
from scratch_ae.backend import cupy_unavailable_reason


def test_numpy_backend_is_numpy():
    backend = get_backend("numpy")
    assert backend.xp is np and get_backend(backend) is backend


def test_unknown_backend_names_the_valid_choices():
    with pytest.raises(BackendError, match=r"unknown backend 'torch'; expected one of: numpy, cupy"):
        get_backend("torch")


@pytest.mark.skipif(cupy_unavailable_reason() is None, reason="CuPy and a GPU are present here")
def test_missing_cupy_or_gpu_gives_one_line_saying_how_to_fix_it():
    with pytest.raises(BackendError) as info:
        Autoencoder(sizes=[784, 32], backend="cupy")
    message = str(info.value)
    assert "\n" not in message and 'pip install "scratch-ae[gpu]"' in message and "--backend numpy" in message


def test_weights_are_drawn_on_the_host_so_they_do_not_depend_on_the_backend():
    a, b = Autoencoder(sizes=[784, 32], seed=4), Autoencoder(sizes=[784, 32], seed=4)
    np.testing.assert_array_equal(a.parameters()["layers.0.W"], b.parameters()["layers.0.W"])
    assert not np.array_equal(a.parameters()["layers.0.W"], Autoencoder(sizes=[784, 32], seed=5).parameters()["layers.0.W"])


def test_float32_stays_float32_through_forward_backward_and_update(mnist_test_images):
    from scratch_ae.optimizers import Adam
    model = Autoencoder(sizes=[784, 32, 8], loss="bce", output_activation="sigmoid", l1=1e-3, weight_decay=1e-4)
    loss, grads = model.loss_and_grads(mnist_test_images[:50])
    assert loss.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads.values())
    Adam(1e-3).step(model.parameters(), grads)
    assert all(p.dtype == np.float32 for p in model.parameters().values())
    assert model.encode(mnist_test_images[:5]).dtype == np.float32


def test_he_and_glorot_initialisation_have_the_stated_spread():
    relu = Autoencoder(sizes=[784, 512], activation="relu", seed=0).parameters()["layers.0.W"]
    assert relu.std() == pytest.approx(np.sqrt(2 / 784), rel=0.02)
    tanh = Autoencoder(sizes=[784, 512], activation="tanh", seed=0).parameters()["layers.0.W"]
    assert np.abs(tanh).max() <= np.sqrt(6 / (784 + 512))
    assert tanh.std() == pytest.approx(np.sqrt(2 / (784 + 512)), rel=0.02)
