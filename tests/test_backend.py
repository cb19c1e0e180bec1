"""The backend switch: NumPy always, CuPy with a clear error where it cannot run."""
import numpy as np
import pytest

import cupy_stand_in
from scratch_ae import Autoencoder, BackendError, get_backend
from scratch_ae.backend import cupy_unavailable_reason
from scratch_ae.metrics import reconstruction_metrics
from scratch_ae.pca import PCA


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
    assert "\n" not in message and 'pip install -e ".[gpu]"' in message and "--backend numpy" in message


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


# ---------------------------------------------------------------- CuPy's failure modes, on the stand-in
# No GPU is needed to check what the user is told: the NumPy stand-in for CuPy
# (tests/cupy_stand_in.py) is made to fail the way a real installation does at each stage.

def _raise(error):
    def fail(*args, **kwargs):
        raise error
    return fail


def test_a_cuda_driver_error_is_reported_in_one_line_with_its_message(monkeypatch, stand_in):
    error = RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient\nfor CUDA runtime version")
    monkeypatch.setattr(stand_in.cuda.runtime, "getDeviceCount", _raise(error))
    reason = cupy_unavailable_reason()
    assert reason == "CuPy found no usable CUDA GPU (RuntimeError: cudaErrorInsufficientDriver: CUDA driver version is insufficient)"


def test_a_gpu_without_the_cuda_toolkit_libraries_fails_at_the_backend_check_not_in_training(monkeypatch, stand_in):
    error = RuntimeError("CuPy failed to load libnvrtc.so.13: OSError: libnvrtc.so.13: cannot open shared object file")
    monkeypatch.setattr(stand_in, "arange", _raise(error), raising=False)  # the check's first kernel
    with pytest.raises(BackendError) as info:
        Autoencoder(sizes=[784, 32], backend="cupy")
    message = str(info.value)
    assert "\n" not in message
    assert "cannot run a kernel" in message and "libnvrtc.so.13" in message and "NVRTC, cuBLAS" in message
    assert 'pip install "cupy-cuda12x[ctk]"' in message and "--backend numpy" in message


def test_a_working_stand_in_cupy_passes_the_check(stand_in):
    assert cupy_unavailable_reason() is None
    assert get_backend("cupy").name == "cupy"


def test_to_numpy_on_the_cupy_backend_copies_a_host_array_too():
    from scratch_ae.backend import Backend
    host = np.arange(3.0)
    copy = Backend("cupy", cupy_stand_in).to_numpy(host)  # cupy.asnumpy returns host arrays as they are
    copy[0] = 7.0
    assert host[0] == 0.0


@pytest.mark.parametrize("call, what", [
    (lambda X: Autoencoder(sizes=[784, 8]).encode(X), "x"),
    (lambda X: Autoencoder(sizes=[784, 8]).transform(X), "X"),
    (lambda X: Autoencoder(sizes=[784, 8], epochs=1).fit(X), "training data"),
    (lambda X: PCA(n_components=2).fit(X), "X"),
    (lambda X: reconstruction_metrics(Autoencoder(sizes=[784, 8]), X), "X"),
])
def test_a_gpu_array_given_to_a_cpu_model_gets_a_one_line_error_naming_it(call, what):
    with pytest.raises(TypeError) as info:
        call(cupy_stand_in.ndarray(np.zeros((5, 784), np.float32)))
    message = str(info.value)
    assert message.startswith(f"{what} is a CuPy (GPU) array, but this object runs on backend 'numpy'")
    assert ".get()" in message and "backend='cupy'" in message and "\n" not in message
