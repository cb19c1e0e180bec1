"""A Dense layer followed by a ReLU, run as one pass over the layer's output each way.

Layer by layer, the pair makes four elementwise passes over its (B, fan_out)
output besides the two matrix products: Dense adds the bias, ReLU clamps,
ReLU masks the upstream gradient, Dense sums its columns for grad_b.  They are
memory-bound, and on the CPU they run on one core while BLAS's threads spin on
the others.  Compiled with Numba (scratch_ae/jit.py) the pair needs two:

    forward:   out = x W             (BLAS)
               out <- max(out + b, 0)                   one pass, in place
    backward:  delta = G * [out > 0],  grad_b = 1^T delta  one pass
               grad_W = x^T delta,  dL/dx = delta W^T    (BLAS)

The loops do the layers' own operations, in the same order, on the arrays'
dtype (x * [x > 0] for the clamp; the column sums from +0, row after row, as
NumPy's sum over axis 0 adds them), so the results equal the layer-by-layer
ones bit for bit (tests/test_fused_layers.py), and they leave the same caches
(`dense.x`, `relu.out`), so either path's backward can follow either path's
forward.

`forward_through` / `backward_through` run a list of layers, fusing each
Dense + ReLU pair where it can: NumPy arrays of one dtype (float32 or float64), Numba
installed, and KERNEL == "numba".  Everything else (CuPy, TiedDense, other
activations, no Numba) runs layer by layer, which stays the reference.
"""
from __future__ import annotations

import numpy as np

from ..jit import CompiledLoop, numba_unavailable_reason
from .activations import ReLU
from .dense import Dense

# "numba": fuse Dense + ReLU pairs where possible; "layers": always layer by layer.
# Tests and benchmarks set this to compare the two.
KERNEL = "layers" if numba_unavailable_reason() else "numba"


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


def _fusable(dense, relu, array):
    """True when this Dense + ReLU pair, meeting `array`, can run fused."""
    if KERNEL != "numba" or type(dense) is not Dense or type(relu) is not ReLU:
        return False
    W, b = dense.params["W"], dense.params["b"]
    return (type(array) is np.ndarray and array.dtype in (np.float32, np.float64) and array.ndim == 2
            and type(W) is np.ndarray and W.dtype == array.dtype and b.dtype == array.dtype)


def _same_kind(cached, grad):
    return type(cached) is np.ndarray and cached.dtype == grad.dtype and cached.shape == grad.shape


def dense_relu_forward(dense, relu, x):
    """x (B, fan_in) -> max(x W + b, 0) (B, fan_out); caches dense.x and relu.out as the layers would.

    Derivation: derivations/dense-autoencoder.md#dense-relu-fused
    """
    dense.x = x
    out = x @ dense.params["W"]  # a new C-contiguous array, so the pass below may write into it
    scalar = out.dtype.type
    BIAS_RELU_LOOP(out, dense.params["b"], scalar(1), scalar(0))
    relu.out = out
    return out


def relu_dense_backward(relu, dense, grad_out):
    """grad_out = dL/d(relu output), (B, fan_out) -> dL/dx, (B, fan_in), or None; fills dense.grads.

    delta = grad_out * [out > 0], grad_b = column sums of delta (one pass),
    grad_W = x^T delta, dL/dx = delta W^T.  grad_out itself is left unchanged.

    Derivation: derivations/dense-autoencoder.md#dense-relu-fused
    """
    grad_out = np.ascontiguousarray(grad_out)
    delta = np.empty_like(grad_out)
    scalar = delta.dtype.type
    RELU_GRAD_BIAS_LOOP(grad_out, relu.out, delta, dense.grads["b"], scalar(1), scalar(0))
    np.matmul(dense.x.T, delta, out=dense.grads["W"])
    if not dense.need_input_grad:
        return None
    return delta @ dense.params["W"].T


def forward_through(layers, x):
    """x through `layers` in order, each Dense + ReLU pair fused where possible."""
    i = 0
    while i < len(layers):
        if i + 1 < len(layers) and _fusable(layers[i], layers[i + 1], x):
            x = dense_relu_forward(layers[i], layers[i + 1], x)
            i += 2
        else:
            x = layers[i].forward(x)
            i += 1
    return x


def backward_through(layers, grad):
    """grad back through `layers` (last first), each ReLU + Dense pair fused where possible."""
    i = len(layers) - 1
    while i >= 0:
        if i >= 1 and _fusable(layers[i - 1], layers[i], grad) and _same_kind(layers[i].out, grad):
            grad = relu_dense_backward(layers[i], layers[i - 1], grad)
            i -= 2
        else:
            grad = layers[i].backward(grad)
            i -= 1
        if grad is None:  # a first layer reading the data skipped dL/dx: nothing below needs it
            return None
    return grad


__all__ = ["KERNEL", "dense_relu_forward", "relu_dense_backward", "forward_through", "backward_through", "forward",
           "backward"]


# ---------------------------------------------------------------------------- chosen outside the container
def forward(network, x):
    """x through a Sequential: the fused path where KERNEL says so, else the container's own plain loop."""
    if KERNEL == "numba":
        return forward_through(network.layers, x)
    return network.forward(x)


def backward(network, grad):
    """grad back through a Sequential: the fused path where KERNEL says so, else the plain reverse loop."""
    if KERNEL == "numba":
        return backward_through(network.layers, grad)
    return network.backward(grad)
