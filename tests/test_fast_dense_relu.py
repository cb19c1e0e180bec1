"""scratch_ae/fast/dense_relu.py (DenseReLU) against the two reference layers it replaces, a Dense
and a ReLU: outputs, caches and gradients bit for bit, edge values included; finite differences;
the reference pair where the loops do not take the arrays."""
import numpy as np
import pytest

from scratch_ae import fast
from scratch_ae.fast.dense_relu import DenseReLU
from scratch_ae.gradcheck import numerical_gradient, relative_error
from scratch_ae.layers import Dense, LeakyReLU, ReLU

pytestmark = pytest.mark.skipif(fast.unavailable_reason() is not None, reason=str(fast.unavailable_reason()))

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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 5, 4), (9, 13, 33), (256, 100, 64), (256, 784, 128)],
                         ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("need_input_grad", [True, False])
def test_dense_relu_equals_dense_then_relu_bit_for_bit(dtype, shape, need_input_grad):
    batch, fan_in, fan_out = shape
    dense, relu = make_pair(fan_in, fan_out, dtype, need_input_grad)
    dense.params["b"][::3] = 0  # with the zero rows of x: pre-activations of exactly 0 (and -0)
    ref_dense, ref_relu = copies(dense)
    pair = DenseReLU(dense, relu)
    x = with_edge_values(rng.standard_normal((batch, fan_in)).astype(dtype))
    upstream = rng.standard_normal((batch, fan_out)).astype(dtype)
    upstream[:, 1] = -upstream[:, 1]

    with np.errstate(all="ignore"):
        expected_out = ref_relu.forward(ref_dense.forward(x))
        expected_grad_x = ref_dense.backward(ref_relu.backward(upstream))
        out = pair.forward(x)
        grad_x = pair.backward(upstream)

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


def test_dense_relu_backward_matches_finite_differences():
    """float64, central differences of F = sum(pair(x) * G) with a random upstream G, away from the kink."""
    dense, relu = make_pair(6, 5, np.float64)
    pair = DenseReLU(dense, relu)
    x = rng.standard_normal((4, 6))
    G = rng.standard_normal((4, 5))
    pre_activation = x @ dense.params["W"] + dense.params["b"]
    assert np.abs(pre_activation).min() > 1e-4  # central differences are meaningless across the kink
    F = lambda: float((pair.forward(x) * G).sum())
    F()
    grad_x = pair.backward(G)
    analytic = {"x": grad_x, "W": dense.grads["W"].copy(), "b": dense.grads["b"].copy()}
    numeric = {"x": numerical_gradient(F, x), "W": numerical_gradient(F, dense.params["W"]),
               "b": numerical_gradient(F, dense.params["b"])}
    for key in analytic:
        assert relative_error(analytic[key], numeric[key]) < 1e-7, key


def test_backward_leaves_the_upstream_gradient_unchanged():
    pair = DenseReLU(*make_pair(8, 6, np.float32))
    pair.forward(rng.standard_normal((5, 8)).astype(np.float32))
    upstream = rng.standard_normal((5, 6)).astype(np.float32)
    before = upstream.copy()
    pair.backward(upstream)
    np.testing.assert_array_equal(upstream, before)


def test_an_empty_batch_gives_zero_bias_gradients_as_numpy_does():
    dense, relu = make_pair(4, 3, np.float32)
    pair = DenseReLU(dense, relu)
    dense.grads["b"][:] = 5
    assert pair.forward(np.zeros((0, 4), np.float32)).shape == (0, 3)
    pair.backward(np.zeros((0, 3), np.float32))
    np.testing.assert_array_equal(dense.grads["b"], np.zeros(3, np.float32))
    np.testing.assert_array_equal(dense.grads["W"], np.zeros((4, 3), np.float32))


def test_either_backward_follows_either_forward():
    """The caches are the reference layers', so the pair's backward may follow their forward and back."""
    dense, relu = make_pair(10, 7, np.float32)
    pair = DenseReLU(dense, relu)
    x = rng.standard_normal((6, 10)).astype(np.float32)
    G = rng.standard_normal((6, 7)).astype(np.float32)
    relu.forward(dense.forward(x))
    expected = pair.backward(G), dense.grads["W"].copy(), dense.grads["b"].copy()
    pair.forward(x)
    got = dense.backward(relu.backward(G)), dense.grads["W"].copy(), dense.grads["b"].copy()
    for a, b in zip(got, expected):
        assert_identical(a, b, "mixed paths")


def test_arrays_the_loops_do_not_take_run_the_reference_pair():
    """float64 input to float32 weights: the layers' own promotion rules, bit for bit."""
    dense, relu = make_pair(4, 3, np.float32)
    ref_dense, ref_relu = copies(dense)
    x = rng.standard_normal((2, 4))
    G = rng.standard_normal((2, 3))
    pair = DenseReLU(dense, relu)
    assert_identical(pair.forward(x), ref_relu.forward(ref_dense.forward(x)), "out")
    assert_identical(pair.backward(G), ref_dense.backward(ref_relu.backward(G)), "dx")
    assert pair.params is dense.params and pair.grads is dense.grads
    with pytest.raises(TypeError, match="wraps a layers.dense.Dense and a layers.activations.ReLU"):
        DenseReLU(dense, LeakyReLU(0.0))
