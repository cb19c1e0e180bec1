"""NumPy-vs-CuPy parity: the same seed gives the same loss curve over 50 steps (to 1e-4 relative)."""
import numpy as np
import pytest

from scratch_ae import Autoencoder
from scratch_ae.backend import cupy_unavailable_reason
from scratch_ae.optimizers import Adam

REASON = cupy_unavailable_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"needs CuPy and a CUDA GPU: {REASON}")]


def loss_curve(backend, X, steps=50, batch=100, seed=0, model_class=Autoencoder, **config):
    defaults = {"sizes": [784, 256]} if model_class is Autoencoder else {}
    model = model_class(**{**defaults, **config}, backend=backend, seed=seed)
    opt = Adam(1e-3)
    order = np.random.default_rng(seed).permutation(X.shape[0])
    Xd = model.backend_.asarray(X)
    losses = []
    for step in range(steps):
        idx = order[(step * batch) % X.shape[0]:][:batch]
        rng = np.random.default_rng([seed, step]) if model.stochastic_ else None  # the same masks on both
        loss, grads = model.loss_and_grads(Xd[model.backend_.asarray(idx)], rng=rng)
        opt.step(model.parameters(), grads)
        losses.append(float(loss))
    return np.array(losses), model


def test_numpy_and_cupy_give_the_same_loss_curve_over_50_steps(mnist_test_images):
    X = mnist_test_images[:5000]
    cpu, _ = loss_curve("numpy", X)
    gpu, _ = loss_curve("cupy", X)
    rel = np.abs(cpu - gpu) / np.abs(cpu)
    print(f"max relative difference over 50 steps: {rel.max():.3g}")
    assert rel.max() < 1e-4


# The models whose layers and penalties the 784-256 ReLU/MSE curve above does not reach.
OTHER_MODELS = {
    "kl-sparsity": {"sizes": [784, 64], "activation": "sigmoid", "output_activation": "sigmoid", "kl_rho": 0.05, "kl_beta": 3.0},
    "tied": {"sizes": [784, 128, 32], "tied": True},
    "bce-l1-l2": {"sizes": [784, 64], "loss": "bce", "output_activation": "sigmoid", "l1": 1e-4, "weight_decay": 1e-4},
    "dropout": {"sizes": [784, 128, 32], "dropout": 0.2},
}

# The convolutional layers: im2col/col2im, max-pool and unpool routing, transposed convolutions.
CONV_MODELS = {
    "pooled-deconv-unpool": {"channels": (8, 4), "decoder": "deconv+unpool"},
    "pooled-unpool": {"channels": (8, 4), "decoder": "unpool"},
    "stride2-bce": {"channels": (8, 4, 4), "downsample": "stride", "decoder": "deconv", "loss": "bce", "weight_decay": 1e-4},
}


@pytest.mark.parametrize("config", list(CONV_MODELS.values()), ids=list(CONV_MODELS))
def test_conv_models_give_the_same_loss_curve_on_both_backends(mnist_test_images, config):
    from scratch_ae.models.conv import ConvAutoencoder
    X = mnist_test_images[:1000]
    cpu, _ = loss_curve("numpy", X, steps=10, batch=50, model_class=ConvAutoencoder, **config)
    gpu, _ = loss_curve("cupy", X, steps=10, batch=50, model_class=ConvAutoencoder, **config)
    rel = np.abs(cpu - gpu) / np.abs(cpu)
    print(f"{config}: max relative difference over 10 steps: {rel.max():.3g}")
    assert rel.max() < 1e-4


@pytest.mark.parametrize("config", list(OTHER_MODELS.values()), ids=list(OTHER_MODELS))
def test_penalties_tied_weights_and_bce_give_the_same_loss_curve_on_both_backends(mnist_test_images, config):
    X = mnist_test_images[:3000]
    cpu, _ = loss_curve("numpy", X, steps=30, **config)
    gpu, _ = loss_curve("cupy", X, steps=30, **config)
    rel = np.abs(cpu - gpu) / np.abs(cpu)
    print(f"{config}: max relative difference over 30 steps: {rel.max():.3g}")
    assert rel.max() < 1e-4


def test_cupy_trainer_matches_numpy_trainer_and_checkpoints_load_on_the_cpu(mnist_test_images, tmp_path):
    X = mnist_test_images[:2000]
    histories = []
    for backend in ("numpy", "cupy"):
        model = Autoencoder(sizes=[784, 64], backend=backend, seed=0, epochs=2)
        histories.append(model.fit(X).history_["train_loss"])
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-4)
    model.save(tmp_path / "gpu.npz")
    cpu = Autoencoder.load(tmp_path / "gpu.npz")
    np.testing.assert_allclose(cpu.reconstruct(X[:10]), model.backend_.to_numpy(model.reconstruct(X[:10])), rtol=1e-5, atol=1e-6)


def test_cupy_gradients_match_finite_differences(mnist_sample):
    from scratch_ae.gradcheck import check_model
    model = Autoencoder(sizes=[12, 6], backend="cupy", dtype="float64", seed=3, engine="reference")
    assert max(check_model(model, mnist_sample(5, width=12)).values()) < 1e-6
