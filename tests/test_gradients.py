"""Every backward pass against central finite differences in float64 (relative error < 1e-6)."""
import numpy as np
import pytest

from scratch_ae import Autoencoder
from scratch_ae.backend import get_backend
from scratch_ae.gradcheck import check_layer, check_loss, check_model, numerical_gradient, relative_error
from scratch_ae.layers import Dense, Identity, LeakyReLU, ReLU, Sigmoid, Tanh, TiedDense
from scratch_ae.layers.activations import HE_FAMILY
from scratch_ae.losses import BCEWithLogitsLoss, MSELoss
from scratch_ae.penalties import KLSparsityPenalty, L1ActivityPenalty, L2WeightDecay

TOL = 1e-6
rng = np.random.default_rng(1234)


def away_from_zero(shape, low=0.1, high=1.5):
    """Random values with |v| >= low: keeps ReLU-family and |.| checks off their kinks."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


def test_dense_backward_matches_finite_differences():
    layer = Dense.create(7, 5, "glorot", rng, get_backend("numpy"), np.float64)
    layer.params["b"][:] = rng.standard_normal(5)
    errors = check_layer(layer, rng.standard_normal((4, 7)))
    assert set(errors) == {"x", "W", "b"}
    assert max(errors.values()) < TOL, errors


def test_first_dense_layer_skips_the_input_gradient_but_keeps_parameter_gradients():
    layer = Dense.create(7, 5, "he", rng, get_backend("numpy"), np.float64, need_input_grad=False)
    errors = check_layer(layer, rng.standard_normal((4, 7)))
    assert set(errors) == {"W", "b"} and max(errors.values()) < TOL, errors


def test_tied_dense_backward_matches_finite_differences_for_the_shared_weights():
    source = Dense.create(6, 3, "glorot", rng, get_backend("numpy"), np.float64)
    tied = TiedDense(source, rng.standard_normal(6))
    x = rng.standard_normal((5, 3))
    G = rng.standard_normal((5, 6))
    tied.forward(x)
    grad_x = tied.backward(G)
    f = lambda: (tied.forward(x) * G).sum()
    assert relative_error(grad_x, numerical_gradient(f, x)) < TOL
    assert relative_error(tied.grads["W"], numerical_gradient(f, source.params["W"])) < TOL
    assert relative_error(tied.grads["b"], numerical_gradient(f, tied.params["b"])) < TOL


@pytest.mark.parametrize("layer", [ReLU(), LeakyReLU(0.1), Sigmoid(), Tanh(), Identity()], ids=lambda l: type(l).__name__)
def test_activation_backward_matches_finite_differences(layer):
    errors = check_layer(layer, away_from_zero((6, 9)))
    assert errors["x"] < TOL, errors


def test_mse_backward_matches_finite_differences():
    assert check_loss(MSELoss(), rng.uniform(0, 1, (4, 10)), rng.uniform(0, 1, (4, 10))) < TOL


def test_bce_with_logits_backward_is_the_fused_sigmoid_minus_target():
    logits, target = rng.normal(0, 3, (4, 10)), rng.uniform(0, 1, (4, 10))
    assert check_loss(BCEWithLogitsLoss(), logits, target) < TOL
    loss = BCEWithLogitsLoss()
    loss.forward(logits, target)
    np.testing.assert_allclose(loss.backward(), (1 / (1 + np.exp(-logits)) - target) / logits.size, rtol=1e-12)


def test_bce_with_logits_is_finite_for_extreme_logits():
    logits = np.array([[-800.0, 800.0, 0.0]])
    loss = BCEWithLogitsLoss()
    value = loss.forward(logits, np.array([[1.0, 0.0, 0.5]]))
    assert np.isfinite(value) and np.all(np.isfinite(loss.backward()))
    np.testing.assert_allclose(value, (800 + 800 + np.log(2)) / 3)


def _check_penalty(penalty, code):
    penalty.forward(code)
    analytic = penalty.backward()
    return relative_error(analytic, numerical_gradient(lambda: penalty.forward(code), code))


def test_l1_activity_penalty_backward_matches_finite_differences():
    assert _check_penalty(L1ActivityPenalty(0.3), away_from_zero((5, 8))) < TOL


def test_l1_activity_penalty_uses_subgradient_zero_at_zero():
    penalty = L1ActivityPenalty(0.5)
    penalty.forward(np.array([[0.0, 2.0, -1.0]]))
    np.testing.assert_array_equal(penalty.backward(), [[0.0, 0.5, -0.5]])


def test_kl_sparsity_penalty_backward_matches_finite_differences():
    assert _check_penalty(KLSparsityPenalty(0.05, 3.0), rng.uniform(0.02, 0.9, (6, 8))) < TOL


def test_kl_sparsity_penalty_is_zero_when_mean_activation_equals_rho():
    assert abs(float(KLSparsityPenalty(0.2, 1.0).forward(np.full((4, 3), 0.2)))) < 1e-15


def test_l2_weight_decay_gradient_matches_finite_differences():
    W = rng.standard_normal((4, 3))
    penalty = L2WeightDecay(0.7)
    assert relative_error(penalty.gradient(W), numerical_gradient(lambda: penalty.forward([W]), W)) < TOL


def min_distance_to_relu_kink(model, x):
    """Smallest |pre-activation| at any ReLU-family unit: must exceed the step eps for a fair check."""
    h, smallest = np.asarray(x, dtype=np.float64), np.inf
    for layer in model.layers_:
        h = layer.forward(h)
        if isinstance(layer, (Dense, TiedDense)):
            pre = h
        elif isinstance(layer, (ReLU, LeakyReLU)):
            smallest = min(smallest, float(np.abs(pre).min()))
    return smallest


MODELS = {
    "shallow-relu-mse": dict(sizes=[12, 6]),
    "deep-relu-mse": dict(sizes=[12, 8, 3]),
    "leaky-relu": dict(sizes=[12, 6], activation="leaky_relu", output_activation="leaky_relu"),
    "sigmoid": dict(sizes=[12, 6], activation="sigmoid", output_activation="sigmoid"),
    "tanh": dict(sizes=[12, 8, 4], activation="tanh", output_activation="identity"),
    "linear": dict(sizes=[12, 5], activation="identity", output_activation="identity"),
    "bce": dict(sizes=[12, 8, 4], output_activation="sigmoid", loss="bce"),
    "l1": dict(sizes=[12, 6], l1=0.05),
    "kl": dict(sizes=[12, 6], activation="sigmoid", output_activation="sigmoid", kl_rho=0.1, kl_beta=0.4),
    "weight-decay": dict(sizes=[12, 8, 4], weight_decay=0.05),
    "tied": dict(sizes=[12, 8, 4], tied=True, activation="tanh", output_activation="sigmoid", loss="bce"),
    "everything": dict(sizes=[12, 8, 5], activation="sigmoid", output_activation="sigmoid", loss="bce", l1=0.01,
                       kl_rho=0.2, kl_beta=0.3, weight_decay=0.02, tied=True),
}


@pytest.mark.parametrize("name", MODELS)
def test_whole_model_gradients_match_finite_differences(name, mnist_sample):
    model = Autoencoder(dtype="float64", seed=3, engine="reference", **MODELS[name])
    x = mnist_sample(5, width=12)
    if any(a in HE_FAMILY for a in (model.activation, model.output_activation)):
        assert min_distance_to_relu_kink(model, x) > 1e-4
    errors = check_model(model, x)
    assert set(errors) == set(model.parameters())
    assert max(errors.values()) < TOL, errors


def test_denoising_target_gradients_match_finite_differences(mnist_sample):
    model = Autoencoder(sizes=[12, 6], dtype="float64", seed=5, engine="reference")
    clean = mnist_sample(5, width=12)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 0.3, clean.shape), 0, 1)
    assert min_distance_to_relu_kink(model, noisy) > 1e-4
    assert max(check_model(model, noisy, target=clean).values()) < TOL


def test_standard_784_256_network_gradients_match_on_real_mnist(mnist_sample):
    """The real network on real images: a random subset of each parameter's entries."""
    model = Autoencoder(sizes=[784, 256], dtype="float64", seed=0, engine="reference")
    x = mnist_sample(3)
    errors = check_model(model, x, max_entries=40)
    assert max(errors.values()) < TOL, errors


def test_sparse_autoencoder_loss_checked_term_by_term(mnist_sample):
    """UFLDL style: reconstruction, then + weight decay, then + KL sparsity, checking after each term."""
    x = mnist_sample(6, width=12)
    terms = [dict(), dict(weight_decay=0.1), dict(weight_decay=0.1, kl_rho=0.05, kl_beta=3.0)]
    for extra in terms:
        model = Autoencoder(sizes=[12, 7], activation="sigmoid", output_activation="sigmoid", dtype="float64",
                            seed=2, engine="reference", **extra)
        errors = check_model(model, x)
        assert max(errors.values()) < TOL, (extra, errors)
