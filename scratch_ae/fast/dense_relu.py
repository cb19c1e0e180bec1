"""Fast Dense + ReLU: the two reference layers as one layer, one elementwise pass over the output each way.

Layer by layer, the pair makes four elementwise passes over its (B, fan_out) output besides the
two matrix products: Dense adds the bias, ReLU clamps, ReLU masks the upstream gradient, Dense
sums its columns for grad_b.  They are memory-bound, and on the CPU they run on one core while
BLAS's threads spin on the others.  Compiled with Numba (fast/jit.py) the pair needs two:

    forward:   out = x W             (BLAS)
               out <- max(out + b, 0)                      one pass, in place
    backward:  delta = G * [out > 0],  grad_b = 1^T delta  one pass
               grad_W = x^T delta,  dL/dx = delta W^T      (BLAS)

The loops do the layers' own operations, in the same order, on the arrays' dtype (x * [x > 0]
for the clamp; the column sums from +0, row after row, as NumPy's sum over axis 0 adds them), so
the results equal the layer-by-layer ones bit for bit (tests/test_fast_dense_relu.py), and they
leave the same caches (`dense.x`, `relu.out`), so either path's backward can follow either
path's forward.
"""
from __future__ import annotations

import numpy as np

from ..layers.activations import ReLU
from ..layers.base import Layer
from ..layers.dense import Dense
from .jit import CompiledLoop, loops_take


def _bias_relu_loop(out, b, one, zero):
    """out[i, j] <- (out[i, j] + b[j]) * [out[i, j] + b[j] > 0], in place: Dense's `out += b`, then ReLU."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            z = out[i, j] + b[j]
            out[i, j] = z * (one if z > zero else zero)


def _relu_grad_bias_loop(grad_out, out, delta, grad_b, one, zero):
    """delta = grad_out * [out > 0] (ReLU's backward) and grad_b = its column sums (Dense's), one pass."""
    rows, cols = grad_out.shape
    # As NumPy's sum over axis 0: start from +0 and add the rows in order (so all -0 rows sum to +0).
    for j in range(cols):
        grad_b[j] = zero
    for i in range(rows):
        for j in range(cols):
            d = grad_out[i, j] * (one if out[i, j] > zero else zero)
            delta[i, j] = d
            grad_b[j] += d


BIAS_RELU_LOOP = CompiledLoop(_bias_relu_loop)
RELU_GRAD_BIAS_LOOP = CompiledLoop(_relu_grad_bias_loop)


class DenseReLU(Layer):
    """The fast form of a `scratch_ae.layers.dense.Dense` followed by a `layers.activations.ReLU`
    (its `dense` and `relu`, the pair it replaces); tests/test_fast_dense_relu.py.

    out = max(x W + b, 0).  Shapes: x (B, fan_in), out (B, fan_out).  Caches: `dense.x` and
    `relu.out`, as the two layers would.  `params` and `grads` are the Dense layer's own dicts
    (the same arrays); `training` sets both layers'.  On arrays the compiled loops do not take (CuPy, a dtype the weights do not
    have, not 2-D) the two reference layers run one after the other instead.
    """

    splits_work = False  # its products are BLAS's; no split_run

    def __init__(self, dense, relu):
        if type(dense) is not Dense or type(relu) is not ReLU:
            raise TypeError(f"fast.dense_relu.DenseReLU wraps a layers.dense.Dense and a layers.activations.ReLU, "
                            f"got {dense!r} and {relu!r}")
        self.dense = dense
        self.relu = relu

    @property
    def params(self):
        return self.dense.params

    @property
    def grads(self):
        return self.dense.grads

    @property
    def training(self):
        return self.dense.training

    @training.setter
    def training(self, mode):
        self.dense.training = self.relu.training = mode

    @property
    def need_input_grad(self):
        return self.dense.need_input_grad

    def _loops_take(self, array):
        W, b = self.dense.params["W"], self.dense.params["b"]
        return array.ndim == 2 and loops_take(array, W, b)

    def forward(self, x):
        """x (B, fan_in) -> max(x W + b, 0) (B, fan_out); caches dense.x and relu.out as the layers would.

        Derivation: derivations/dense-autoencoder.md#dense-relu-fused
        """
        if not self._loops_take(x):
            return self.relu.forward(self.dense.forward(x))
        self.dense.x = x
        out = x @ self.dense.params["W"]  # a new C-contiguous array, so the pass below may write into it
        scalar = out.dtype.type
        BIAS_RELU_LOOP(out, self.dense.params["b"], scalar(1), scalar(0))
        self.relu.out = out
        return out

    def backward(self, grad_out):
        """grad_out = dL/d(relu output), (B, fan_out) -> dL/dx, (B, fan_in), or None; fills dense.grads.

        delta = grad_out * [out > 0], grad_b = column sums of delta (one pass),
        grad_W = x^T delta, dL/dx = delta W^T.  grad_out itself is left unchanged.

        Derivation: derivations/dense-autoencoder.md#dense-relu-fused
        """
        out = self.relu.out
        if not (self._loops_take(grad_out) and type(out) is np.ndarray and out.dtype == grad_out.dtype
                and out.shape == grad_out.shape):
            return self.dense.backward(self.relu.backward(grad_out))
        dense = self.dense
        grad_out = np.ascontiguousarray(grad_out)
        delta = np.empty_like(grad_out)
        scalar = delta.dtype.type
        RELU_GRAD_BIAS_LOOP(grad_out, out, delta, dense.grads["b"], scalar(1), scalar(0))
        np.matmul(dense.x.T, delta, out=dense.grads["W"])
        if not dense.need_input_grad:
            return None
        return delta @ dense.params["W"].T

    def config(self):
        return {"type": "dense_relu", "layers": [self.dense.config(), self.relu.config()]}

    def __repr__(self):
        return f"fast.DenseReLU({self.dense!r}, {self.relu!r})"


__all__ = ["DenseReLU"]
