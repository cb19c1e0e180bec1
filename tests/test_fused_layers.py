"""The fused Dense + ReLU pair (scratch_ae/layers/fused.py) against the two layers it replaces."""
import numpy as np
import pytest

from scratch_ae import Autoencoder
from scratch_ae.gradcheck import numerical_gradient, relative_error
from scratch_ae.jit import numba_unavailable_reason
from scratch_ae.layers import Dense, LeakyReLU, ReLU, TiedDense, fused

pytestmark = pytest.mark.skipif(numba_unavailable_reason() is not None, reason=str(numba_unavailable_reason()))

rng = np.random.default_rng(7)


def make_pair(fan_in, fan_out, dtype, need_input_grad=True):
    W = rng.standard_normal((fan_in, fan_out)).astype(dtype)
    b = rng.standard_normal(fan_out).astype(dtype)
    return Dense(W, b, need_input_grad=need_input_grad), ReLU()


def copies(dense):
    return Dense(dense.params["W"].copy(), dense.params["b"].copy(), need_input_grad=dense.need_input_grad), ReLU()


def with_edge_values(x):
    """Rows that give pre-activations of exactly 0 (x = 0 where b = 0), +-inf and NaN."""
    x = x.copy()
    x[0] = 0
    if x.shape[0] > 3:
        x[1, 0], x[2, 1], x[3, 2] = np.inf, -np.inf, np.nan
    return x


def assert_identical(actual, expected, what):
    """Equal values, NaN where NaN, and the same sign of zero."""
    np.testing.assert_array_equal(actual, expected, err_msg=what)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected), err_msg=what + " (sign bits)")


@pytest.fixture(autouse=True)
def fused_kernel(monkeypatch):
    monkeypatch.setattr(fused, "KERNEL", "numba")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 5, 4), (9, 13, 33), (256, 100, 64)], ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("need_input_grad", [True, False])
def test_fused_dense_relu_equals_dense_then_relu_bit_for_bit(dtype, shape, need_input_grad):
    batch, fan_in, fan_out = shape
    dense, relu = make_pair(fan_in, fan_out, dtype, need_input_grad)
    dense.params["b"][::3] = 0  # with the zero rows of x: pre-activations of exactly 0 (and -0)
    ref_dense, ref_relu = copies(dense)
    x = with_edge_values(rng.standard_normal((batch, fan_in)).astype(dtype))
    upstream = rng.standard_normal((batch, fan_out)).astype(dtype)
    upstream[:, 1] = -upstream[:, 1]

    with np.errstate(all="ignore"):
        expected_out = ref_relu.forward(ref_dense.forward(x))
        expected_grad_x = ref_dense.backward(ref_relu.backward(upstream))
        out = fused.dense_relu_forward(dense, relu, x)
        grad_x = fused.relu_dense_backward(relu, dense, upstream)

    assert out.dtype == dtype and dense.grads["W"].dtype == dtype
    assert_identical(out, expected_out, "forward output")
    assert_identical(relu.out, ref_relu.out, "ReLU cache")
    assert dense.x is x
    assert_identical(dense.grads["b"], ref_dense.grads["b"], "grad_b")
    assert_identical(dense.grads["W"], ref_dense.grads["W"], "grad_W")
    if need_input_grad:
        assert_identical(grad_x, expected_grad_x, "dL/dx")
    else:
        assert grad_x is None and expected_grad_x is None


def test_fused_pair_backward_matches_finite_differences():
    """float64, central differences of F = sum(pair(x) * G) with a random upstream G, away from the kink."""
    dense, relu = make_pair(6, 5, np.float64)
    x = rng.standard_normal((4, 6))
    G = rng.standard_normal((4, 5))
    pre_activation = x @ dense.params["W"] + dense.params["b"]
    assert np.abs(pre_activation).min() > 1e-4  # central differences are meaningless across the kink
    F = lambda: float((fused.dense_relu_forward(dense, relu, x) * G).sum())
    F()
    grad_x = fused.relu_dense_backward(relu, dense, G)
    analytic = {"x": grad_x, "W": dense.grads["W"].copy(), "b": dense.grads["b"].copy()}
    numeric = {"x": numerical_gradient(F, x), "W": numerical_gradient(F, dense.params["W"]),
               "b": numerical_gradient(F, dense.params["b"])}
    for key in analytic:
        assert relative_error(analytic[key], numeric[key]) < 1e-7, key


def test_fused_backward_leaves_the_upstream_gradient_unchanged():
    dense, relu = make_pair(8, 6, np.float32)
    fused.dense_relu_forward(dense, relu, rng.standard_normal((5, 8)).astype(np.float32))
    upstream = rng.standard_normal((5, 6)).astype(np.float32)
    before = upstream.copy()
    fused.relu_dense_backward(relu, dense, upstream)
    np.testing.assert_array_equal(upstream, before)


def test_an_empty_batch_gives_zero_bias_gradients_as_numpy_does():
    dense, relu = make_pair(4, 3, np.float32)
    dense.grads["b"][:] = 5
    out = fused.dense_relu_forward(dense, relu, np.zeros((0, 4), np.float32))
    assert out.shape == (0, 3)
    fused.relu_dense_backward(relu, dense, np.zeros((0, 3), np.float32))
    np.testing.assert_array_equal(dense.grads["b"], np.zeros(3, np.float32))
    np.testing.assert_array_equal(dense.grads["W"], np.zeros((4, 3), np.float32))


@pytest.mark.parametrize("config", [dict(sizes=[784, 128, 32], loss="mse"),
                                    dict(sizes=[784, 64, 16], loss="bce", output_activation="sigmoid"),
                                    dict(sizes=[784, 48], l1=0.01)], ids=["deep-mse", "deep-bce", "l1"])
def test_model_gradients_are_identical_fused_or_layer_by_layer(config, mnist_test_images, monkeypatch):
    """Real images through a whole model: loss, every gradient and the codes agree to the last bit."""
    x = mnist_test_images[:64]
    results = {}
    for kernel in ("layers", "numba"):
        monkeypatch.setattr(fused, "KERNEL", kernel)
        model = Autoencoder(seed=4, **config)
        loss, grads = model.loss_and_grads(x)
        results[kernel] = (float(loss), {k: g.copy() for k, g in grads.items()}, model.transform(x))
    (loss_a, grads_a, codes_a), (loss_b, grads_b, codes_b) = results["layers"], results["numba"]
    assert loss_a == loss_b
    for key in grads_a:
        assert_identical(grads_b[key], grads_a[key], key)
    assert_identical(codes_b, codes_a, "codes")


def test_only_numpy_dense_relu_pairs_are_fused(monkeypatch):
    dense, relu = make_pair(4, 3, np.float32)
    x32, x64 = np.ones((2, 4), np.float32), np.ones((2, 4))
    assert fused._fusable(dense, relu, x32)
    assert not fused._fusable(dense, LeakyReLU(), x32)
    assert not fused._fusable(TiedDense(dense, np.zeros(4, np.float32)), relu, x32)
    assert not fused._fusable(dense, relu, x64)  # a dtype the weights do not have: the layers' own promotion rules
    monkeypatch.setattr(fused, "KERNEL", "layers")
    assert not fused._fusable(dense, relu, x32)


def test_forward_through_uses_the_fused_pass_only_where_it_may(monkeypatch):
    """A Dense + LeakyReLU list runs layer by layer; a Dense + ReLU list calls the fused pair."""
    calls = []
    real = fused.dense_relu_forward
    monkeypatch.setattr(fused, "dense_relu_forward", lambda *a: calls.append(a) or real(*a))
    dense, relu = make_pair(4, 3, np.float32)
    x = rng.standard_normal((2, 4)).astype(np.float32)
    leaky = fused.forward_through([dense, LeakyReLU(0.0)], x)
    assert calls == []
    out = fused.forward_through([dense, relu], x)
    assert len(calls) == 1
    np.testing.assert_array_equal(out, leaky)


def test_either_path_backward_follows_either_path_forward(mnist_test_images, monkeypatch):
    """The caches are the same, so a fused forward may be followed by a layer-by-layer backward and back."""
    x = mnist_test_images[:32]
    grads = {}
    for forward_kernel, backward_kernel in [("layers", "layers"), ("numba", "layers"), ("layers", "numba")]:
        model = Autoencoder(sizes=[784, 64, 16], seed=2)
        monkeypatch.setattr(fused, "KERNEL", forward_kernel)
        objective, decoder = model._objective(model._as_batch(x), model._as_batch(x))
        monkeypatch.setattr(fused, "KERNEL", backward_kernel)
        fused.backward_through(model.layers_, model.loss_fn_.backward())
        grads[forward_kernel, backward_kernel] = {k: g.copy() for k, g in model._collect_grads().items()}
    reference = grads["layers", "layers"]
    for paths, result in grads.items():
        for key in reference:
            assert_identical(result[key], reference[key], f"{paths} {key}")
