"""Inverted dropout (scratch_ae/layers/dropout.py) against derivations/dropout.md."""
import math

import numpy as np
import pytest

from scratch_ae.gradcheck import numerical_gradient, relative_error
from scratch_ae.layers.dense import Dense
from scratch_ae.layers.dropout import Dropout


def seeded(layer, seed):
    layer.rng = np.random.default_rng(seed)
    return layer


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_backward_matches_finite_differences_with_the_mask_held_fixed(p):
    """F(x) = sum(forward(x) * G) with a random G; the generator is reset before every forward, so every
    perturbed forward draws the mask the analytic backward used."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 7))
    G = rng.standard_normal((5, 7))
    layer = Dropout(p)
    out = seeded(layer, 42).forward(x)
    analytic = layer.backward(G)
    assert 0 < np.count_nonzero(out) < out.size  # some dropped, some kept: the check sees both

    def f():
        return float((seeded(layer, 42).forward(x) * G).sum())

    numeric = numerical_gradient(f, x)
    assert relative_error(analytic, numeric) < 1e-8


def test_dropout_between_dense_layers_passes_the_gradient_check():
    """Dense -> Dropout -> Dense, mask held fixed: the first layer's weights get the right gradient through it."""
    rng = np.random.default_rng(2)
    d1 = Dense(rng.standard_normal((6, 8)), rng.standard_normal(8))
    drop = Dropout(0.3)
    d2 = Dense(rng.standard_normal((8, 4)), rng.standard_normal(4))
    x, G = rng.standard_normal((3, 6)), rng.standard_normal((3, 4))

    def forward():
        return d2.forward(seeded(drop, 7).forward(d1.forward(x)))

    forward()
    d1.backward(drop.backward(d2.backward(G)))
    f = lambda: float((forward() * G).sum())
    for name in ("W", "b"):
        analytic = d1.grads[name].copy()
        assert relative_error(analytic, numerical_gradient(f, d1.params[name])) < 1e-8


@pytest.mark.parametrize("p", [0.2, 0.5, 0.8])
def test_inverted_dropout_preserves_the_expected_activation(p):
    """E[x * M] = x: the mean over n draws is within 5 standard errors, |x| sqrt(p/(1-p)/n)."""
    n = 20000
    x = np.linspace(-2.0, 3.0, 12).reshape(3, 4)
    out = seeded(Dropout(p), 3).forward(np.broadcast_to(x, (n, 3, 4)).copy())  # n independent draws at once
    standard_error = np.abs(x) * math.sqrt(p / (1 - p) / n)
    assert np.all(np.abs(out.mean(axis=0) - x) <= 5 * standard_error + 1e-12)
    # and the mean without the 1/(1-p) scale would be (1-p) x: far outside those bounds
    assert np.any(np.abs((1 - p) * out.mean(axis=0) - x) > 5 * standard_error)


def test_kept_entries_are_scaled_by_one_over_one_minus_p():
    p = 0.25
    x = np.random.default_rng(4).uniform(0.5, 1.5, (200, 50))
    out = seeded(Dropout(p), 5).forward(x)
    kept = out != 0
    np.testing.assert_array_equal(out[kept], x[kept] * (1 / (1 - p)))
    dropped = 1 - kept.mean()
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / x.size)
    assert np.array_equal(kept, np.random.default_rng(5).random(x.shape) >= p)  # the mask as documented


def test_eval_mode_is_the_identity_and_deterministic():
    x = np.random.default_rng(6).standard_normal((4, 9))
    layer = Dropout(0.5)
    layer.training = False  # no generator needed, none consumed
    first, second = layer.forward(x), layer.forward(x)
    assert np.array_equal(first, x) and np.array_equal(second, x)
    G = np.ones_like(x) * 3.0
    assert np.array_equal(layer.backward(G), G)
    layer.rng = np.random.default_rng(0)
    before = layer.rng.bit_generator.state
    layer.forward(x)
    assert layer.rng.bit_generator.state == before


def test_p_zero_is_the_identity_without_drawing():
    x = np.random.default_rng(7).standard_normal((4, 9))
    layer = seeded(Dropout(0.0), 0)
    before = layer.rng.bit_generator.state
    assert np.array_equal(layer.forward(x), x)
    assert layer.rng.bit_generator.state == before
    assert np.array_equal(layer.backward(x), x)


def test_backward_reuses_the_forward_mask():
    rng = np.random.default_rng(8)
    x = rng.uniform(0.1, 1.0, (30, 20))  # no zeros in x: a zero output means a dropped entry
    G = rng.standard_normal((30, 20))
    layer = seeded(Dropout(0.4), 9)
    out = layer.forward(x)
    layer.rng = np.random.default_rng(123)  # a different generator now must not matter
    grad = layer.backward(G)
    assert np.array_equal(grad == 0, out == 0)  # zero exactly where the output is zero
    mask = (np.random.default_rng(9).random(x.shape) >= 0.4) * (1 / (1 - 0.4))  # the forward's draw, redone
    np.testing.assert_array_equal(out, x * mask)
    np.testing.assert_array_equal(grad, G * mask)


def test_backward_after_an_identity_forward_is_the_identity():
    """The forward records which it was: switching `training` in between does not mismatch them."""
    x, G = np.ones((2, 3)), np.arange(6.0).reshape(2, 3)
    layer = Dropout(0.5)
    layer.training = False
    layer.forward(x)
    layer.training = True
    assert np.array_equal(layer.backward(G), G)
    layer.rng = np.random.default_rng(0)
    out = layer.forward(x)
    layer.training = False
    assert np.array_equal(layer.backward(G), G * out)  # x = 1, so out is the mask


def test_the_same_seed_gives_the_same_mask_on_numpy_and_on_the_cupy_paths(stand_in):
    import cupy
    x = np.random.default_rng(10).uniform(0.5, 1.0, (16, 32)).astype(np.float32)
    a = seeded(Dropout(0.3), 11).forward(x)
    b = seeded(Dropout(0.3), 11).forward(x)
    c = seeded(Dropout(0.3), 12).forward(x)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    on_device = seeded(Dropout(0.3, xp=cupy), 11)
    d = on_device.forward(cupy.asarray(x))
    assert isinstance(d, cupy.ndarray) and d.dtype == np.float32
    assert np.array_equal(d.get(), a)
    G = cupy.asarray(np.ones_like(x))
    assert np.array_equal(on_device.backward(G).get(), seeded(Dropout(0.3), 11).forward(np.ones_like(x)))


def test_float32_stays_float32():
    x = np.random.default_rng(13).standard_normal((8, 5)).astype(np.float32)
    layer = seeded(Dropout(0.3), 14)
    out = layer.forward(x)
    assert out.dtype == np.float32 and layer.mask.dtype == np.float32
    assert layer.backward(np.ones_like(x)).dtype == np.float32
    assert layer.mask.max() == np.float32(1 / 0.7)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), float("inf"), True, "0.5", None])
def test_bad_p_is_refused(p):
    with pytest.raises(ValueError, match=r"Dropout p \(the drop probability\) must be a number in \[0, 1\)"):
        Dropout(p)


def test_training_without_a_generator_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Dropout\(p=0.5\) in training mode needs a random generator: set layer.rng"):
        Dropout(0.5).forward(np.ones((2, 2)))


def test_config_params_and_repr():
    layer = Dropout(0.2)
    assert layer.config() == {"type": "dropout", "p": 0.2}
    assert layer.params == {} and layer.grads == {} and layer.training is True and layer.rng is None
    assert layer.xp is np and repr(layer) == "Dropout(p=0.2)"
    assert Dropout().p == 0.5
