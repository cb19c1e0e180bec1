"""Each optimizer's step against a hand-computed step on a tiny problem."""
import math

import numpy as np
import pytest

from scratch_ae import Autoencoder
from scratch_ae.optimizers import SGD, Adam, AdamW, make_optimizer


def one_param(value, grad):
    return {"layers.0.W": np.array([value], dtype=np.float64)}, {"layers.0.W": np.array([grad], dtype=np.float64)}


def test_sgd_step_is_minus_lr_times_gradient():
    params, grads = one_param(1.0, 0.5)
    SGD(lr=0.1).step(params, grads)
    assert params["layers.0.W"][0] == pytest.approx(1.0 - 0.1 * 0.5, abs=1e-15)


def test_momentum_accumulates_velocity_over_steps():
    opt = SGD(lr=0.1, momentum=0.9)
    params, _ = one_param(1.0, 0.0)
    w, v = 1.0, 0.0
    for g in (0.5, -0.2, 0.3):
        opt.step(params, {"layers.0.W": np.array([g])})
        v = 0.9 * v + g
        w = w - 0.1 * v
        assert params["layers.0.W"][0] == pytest.approx(w, abs=1e-15)


def test_nesterov_steps_with_the_look_ahead_velocity():
    opt = SGD(lr=0.1, momentum=0.9, nesterov=True)
    params, _ = one_param(1.0, 0.0)
    w, v = 1.0, 0.0
    for g in (0.5, -0.2, 0.3):
        opt.step(params, {"layers.0.W": np.array([g])})
        v = 0.9 * v + g
        w = w - 0.1 * (g + 0.9 * v)
        assert params["layers.0.W"][0] == pytest.approx(w, abs=1e-15)


def test_adam_bias_correction_uses_the_step_count_on_the_first_steps():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    opt = Adam(lr, b1, b2, eps)
    params, _ = one_param(1.0, 0.0)
    w, m, v = 1.0, 0.0, 0.0
    for t, g in enumerate((0.5, -0.2, 0.3, 0.1), start=1):
        opt.step(params, {"layers.0.W": np.array([g])})
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w -= lr * (m / (1 - b1 ** t)) / (math.sqrt(v / (1 - b2 ** t)) + eps)
        assert opt.t == t
        assert params["layers.0.W"][0] == pytest.approx(w, abs=1e-14)


def test_adam_first_step_moves_each_weight_by_about_lr():
    """With bias correction, step 1 is lr * g/|g|: without it, it would be ~lr * 0.1/sqrt(0.001) = 3.2 lr."""
    opt = Adam(lr=0.01)
    params = {"layers.0.W": np.array([1.0, 1.0, 1.0])}
    opt.step(params, {"layers.0.W": np.array([3.0, -1e-3, 40.0])})
    np.testing.assert_allclose(params["layers.0.W"], [0.99, 1.01, 0.99], atol=1e-6)


def test_adamw_decays_weights_but_not_biases_and_outside_the_adaptive_scaling():
    lr, wd = 0.01, 0.1
    opt = AdamW(lr, weight_decay=wd)
    params = {"layers.0.W": np.array([2.0]), "layers.0.b": np.array([2.0])}
    opt.step(params, {"layers.0.W": np.array([0.5]), "layers.0.b": np.array([0.5])})
    adam_step = lr * 0.5 / (0.5 + 1e-8)
    assert params["layers.0.W"][0] == pytest.approx(2.0 * (1 - lr * wd) - adam_step, abs=1e-14)
    assert params["layers.0.b"][0] == pytest.approx(2.0 - adam_step, abs=1e-14)


def test_optimizer_state_is_keyed_by_full_parameter_names_so_layers_never_collide():
    model = Autoencoder(sizes=[6, 4, 2], dtype="float64")
    opt = Adam(0.01)
    _, grads = model.loss_and_grads(np.random.default_rng(0).uniform(0, 1, (3, 6)))
    opt.step(model.parameters(), grads)
    assert set(opt.state) == set(model.parameters()) == {f"layers.{i}.{k}" for i in range(4) for k in "Wb"}
    for name, state in opt.state.items():
        assert state["m"].shape == model.parameters()[name].shape


def test_backward_leaves_weights_unchanged_so_gradients_can_be_inspected():
    model = Autoencoder(sizes=[6, 4], dtype="float64")
    before = {k: v.copy() for k, v in model.parameters().items()}
    model.loss_and_grads(np.random.default_rng(0).uniform(0, 1, (3, 6)))
    for name, value in model.parameters().items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adam", "adamw"])
def test_every_optimizer_lowers_a_small_autoencoders_loss(name, mnist_sample):
    model = Autoencoder(sizes=[12, 6], dtype="float64", seed=0)
    x = mnist_sample(20, width=12)
    opt = make_optimizer(name, lr=0.05 if name in ("adam", "adamw") else 0.5)
    first = float(model.objective(x))
    for _ in range(50):
        _, grads = model.loss_and_grads(x)
        opt.step(model.parameters(), grads)
    assert float(model.objective(x)) < 0.7 * first


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="rmsprop", lr=0.1), "expected one of: sgd, momentum, nesterov, adam, adamw"),
    (dict(name="adam", lr=0.0), "lr must be a finite number > 0"),
    (dict(name="sgd", lr=-1.0), "lr must be a finite number > 0"),
])
def test_bad_optimizer_arguments_name_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_optimizer(**kwargs)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_flushes_tiny_weights_and_moments_to_zero(dtype, engine):
    threshold = np.finfo(dtype).tiny / np.finfo(dtype).eps  # optimizers.base.flush_threshold
    values = np.array([threshold / 4, -threshold / 2, threshold, -threshold * 2, 0.5, np.nan, np.inf, -0.0], dtype=dtype)
    zero_grad = {"a.W": np.zeros_like(values)}
    # m = 0 and g = 0: the step itself is 0, so W changes only by the flush
    params, opt = {"a.W": values.copy()}, Adam(lr=1e-3, engine=engine)
    opt.state["a.W"] = {"m": np.zeros_like(values), "v": np.ones_like(values)}
    opt.step(params, zero_grad)
    w = params["a.W"]
    assert w[0] == 0 and w[1] == 0 and not np.signbit(w[1])  # below the threshold: flushed to +0
    assert w[2] == threshold and w[3] == -2 * threshold and w[4] == 0.5  # at or above it: untouched
    assert np.isnan(w[5]) and np.isposinf(w[6])  # NaN and inf kept, so a diverging run is still seen
    # the moments: beta1 m and beta2 v of values near the threshold are flushed too
    params, opt = {"a.W": np.ones_like(values)}, Adam(lr=1e-3, engine=engine)
    opt.state["a.W"] = {"m": values.copy(), "v": np.abs(values)}
    with np.errstate(invalid="ignore"):
        opt.step(params, zero_grad)
    for array in (opt.state["a.W"]["m"], opt.state["a.W"]["v"]):
        finite = array[np.isfinite(array)]
        assert not np.any((finite != 0) & (np.abs(finite) < threshold)), array


def test_adam_with_l2_does_not_leave_unused_weights_subnormal(engine):
    """A weight whose only gradient is the L2 penalty's (lambda W) shrinks geometrically under Adam
    (derivations/optimizers.md#subnormals); after 3,000 steps it would be subnormal, and is exactly 0."""
    threshold = np.finfo(np.float32).tiny / np.finfo(np.float32).eps
    lam = np.float32(8.8e-5)
    w = {"a.W": np.array([0.05, -0.03, 0.001], dtype=np.float32)}
    params, opt = {"a.W": w["a.W"].copy()}, Adam(lr=1.2e-3, engine=engine)
    for _ in range(3000):
        opt.step(params, {"a.W": lam * params["a.W"]})
    for array in (params["a.W"], opt.state["a.W"]["m"], opt.state["a.W"]["v"]):
        assert not np.any((array != 0) & (np.abs(array) < threshold)), array
    assert np.all(np.abs(params["a.W"]) < 1e-30)  # it did shrink toward 0
