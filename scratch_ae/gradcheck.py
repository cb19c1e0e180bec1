"""Finite-difference gradient checks, for the test suite and for a student's own layer.

Central differences in float64: dF/dp ~ (F(p + eps) - F(p - eps)) / (2 eps),
with error O(eps^2).  The comparison is
    relative_error(a, n) = max|a - n| / max(max(|a| + |n|), tiny),
one number for a whole array, which does not blow up on entries near zero.
To check a layer's backward we use a random upstream gradient G and the scalar
F(x) = sum(forward(x) * G), whose gradient is exactly what backward(G) returns;
an all-ones G would hide errors that cancel in a sum.
"""
import numpy as np

from .backend import array_module


def relative_error(analytic, numeric, tiny=1e-12):
    """max|a - n| / max(max(|a| + |n|), tiny) over all entries."""
    a, n = np.asarray(analytic, dtype=np.float64), np.asarray(numeric, dtype=np.float64)
    if a.shape != n.shape:
        raise ValueError(f"shapes differ: analytic {a.shape} vs numeric {n.shape}")
    return float(np.max(np.abs(a - n)) / max(float(np.max(np.abs(a) + np.abs(n))), tiny)) if a.size else 0.0


def numerical_gradient(f, array, eps=1e-6, indices=None):
    """Central-difference gradient of the scalar function f() with respect to `array`.

    `array` (float64, NumPy or CuPy) is perturbed in place entry by entry and
    restored.  `indices`: optional flat indices to check (others are left 0),
    to keep the check cheap on large arrays.  Returns a host float64 array.
    """
    if array.dtype != np.float64:
        raise TypeError(f"gradient checks need float64 arrays, got {array.dtype}; build the model with dtype='float64'")
    flat = array.reshape(-1)
    grad = np.zeros(flat.shape[0], dtype=np.float64)
    for i in (range(flat.shape[0]) if indices is None else indices):
        old = float(flat[i])
        flat[i] = old + eps
        f_plus = float(f())
        flat[i] = old - eps
        f_minus = float(f())
        flat[i] = old
        grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad.reshape(array.shape)


def _to_host(a):
    return a.get() if hasattr(a, "get") else np.asarray(a)


def check_layer(layer, x, rng=None, eps=1e-6):
    """Compare a layer's backward with finite differences; returns {"x": err, "W": err, ...}.

    x : float64 input batch.  Uses F = sum(forward(x) * G) with a random G.
    """
    rng = rng or np.random.default_rng(0)
    out = layer.forward(x)
    xp = array_module(out)
    G = xp.asarray(rng.standard_normal(out.shape))
    grad_x = layer.backward(G)
    analytic = {"x": grad_x} if grad_x is not None else {}
    analytic.update({name: layer.grads[name].copy() for name in layer.params})
    f = lambda: (layer.forward(x) * G).sum()
    errors = {}
    for name, grad in analytic.items():
        target = x if name == "x" else layer.params[name]
        errors[name] = relative_error(_to_host(grad), numerical_gradient(f, target, eps))
    return errors


def check_loss(loss, prediction, target, eps=1e-6):
    """Compare a loss's backward (dL/dprediction) with finite differences."""
    loss.forward(prediction, target)
    analytic = _to_host(loss.backward())
    return relative_error(analytic, numerical_gradient(lambda: loss.forward(prediction, target), prediction, eps))


def check_model(model, x, target=None, eps=1e-6, max_entries=None, rng=None, layer_seed=None):
    """Compare `model.loss_and_grads` with finite differences of `model.objective`.

    Returns {param name: relative error}.  max_entries: check at most this many
    randomly chosen entries per parameter (all when None).  layer_seed: for models
    with stochastic layers (dropout, a VAE's sampling), every pass gets a generator
    seeded with it, so the masks and noise are held fixed across the differences.
    """
    rng = rng or np.random.default_rng(0)
    layer_rng = (lambda: None) if layer_seed is None else (lambda: np.random.default_rng(layer_seed))
    _, grads = model.loss_and_grads(x, target, rng=layer_rng())
    grads = {name: _to_host(g).copy() for name, g in grads.items()}
    f = lambda: model.objective(x, target, rng=layer_rng())
    errors = {}
    for name, param in model.parameters().items():
        indices = None
        if max_entries is not None and param.size > max_entries:
            indices = rng.choice(param.size, max_entries, replace=False)
        numeric = numerical_gradient(f, param, eps, indices)
        analytic = grads[name]
        if indices is not None:
            analytic, numeric = analytic.reshape(-1)[indices], numeric.reshape(-1)[indices]
        errors[name] = relative_error(analytic, numeric)
    return errors
