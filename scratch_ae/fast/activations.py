"""Fast ReLU for 4-D feature maps: the reference's x * [x > 0] as one compiled pass, layout kept.

NumPy's x * (x > 0) makes a boolean mask and then a product, two passes and a temporary; the loop
does the same product, x * (1 or 0), in one pass over the array's memory in its own order, so the
output keeps the input's layout (as NumPy's does: a fast convolution's channels-last view stays
one) and the values are the same bits (-0 for negative inputs, NaN stays NaN;
tests/test_fast_activations.py).
"""
import numpy as np

from ..layers import activations as reference_activations
from .base import FastLayer
from .jit import CompiledLoop, loops_take
from .threads import halves, split_run


class ReLU(FastLayer):
    """The fast form of `scratch_ae.layers.activations.ReLU` (its `reference`); tests/test_fast_activations.py.

    On 4-D NumPy float arrays laid out contiguously in some axis order (NCHW, or a channels-last
    view) the compiled loops run; on anything else (2-D batches, strided views, CuPy, other
    dtypes) the reference's forward and backward.  Either way the cache is the reference's
    (`reference.out`), so either backward may follow either forward.  No parameters: `params` and
    `grads` are the reference's (empty) dicts.
    """

    reference_type = reference_activations.ReLU
    # split_run inside, but no reason by itself to hold BLAS at one thread: in a network with conv
    # layers their hold covers it; in a dense network it meets only 2-D batches (the reference),
    # and holding BLAS there would only change how the Dense products round.
    splits_work = False

    def forward(self, x):
        """x (B, C, H, W) -> max(x, 0), in x's memory layout; caches reference.out."""
        out = _relu(x) if x.ndim == 4 and loops_take(x) else None
        if out is None:
            return self.reference.forward(x)
        self.reference.out = out
        return out

    def backward(self, grad_out):
        """grad_out -> grad_out * [out > 0], the reference's backward.

        Derivation: derivations/dense-autoencoder.md#relu-backward
        """
        out = self.reference.out
        dx = _relu_grad(grad_out, out) if grad_out.ndim == 4 and loops_take(grad_out, out) else None
        return self.reference.backward(grad_out) if dx is None else dx


def _relu_loop(x, out, one, zero):
    """out[i] = x[i] * [x[i] > 0] over flat arrays."""
    for i in range(x.shape[0]):
        v = x[i]
        out[i] = v * (one if v > 0 else zero)


def _relu_grad_loop(grad, out, dx, one, zero):
    """dx[i] = grad[i] * [out[i] > 0] over flat arrays."""
    for i in range(grad.shape[0]):
        dx[i] = grad[i] * (one if out[i] > 0 else zero)


RELU_LOOP = CompiledLoop(_relu_loop)
RELU_GRAD_LOOP = CompiledLoop(_relu_grad_loop)


def _memory_order(a):
    """The axis order in which `a` lies contiguously in memory, or None (a strided or broadcast view)."""
    order = tuple(sorted(range(a.ndim), key=lambda d: -a.strides[d]))
    return order if a.transpose(order).flags.c_contiguous else None


def _empty_in_order(shape, order, dtype):
    """An empty array of `shape` laid out in memory in axis order `order` (as its model was)."""
    inverse = np.argsort(order)
    return np.empty(tuple(shape[d] for d in order), dtype=dtype).transpose(inverse)


def _relu(x):
    """x * (x > 0) in one compiled pass, in x's memory layout; None when x is not laid out contiguously."""
    order = _memory_order(x)
    if order is None:
        return None
    out = _empty_in_order(x.shape, order, x.dtype)
    src, dst = x.transpose(order).reshape(-1), out.transpose(order).reshape(-1)
    one, zero = x.dtype.type(1), x.dtype.type(0)
    split_run(lambda i0, i1: RELU_LOOP(src[i0:i1], dst[i0:i1], one, zero), halves(src.size))
    return out


def _relu_grad(grad_out, out):
    """grad_out * (out > 0) in one compiled pass; None unless both lie contiguously in the same order."""
    order = _memory_order(grad_out)
    if order is None or _memory_order(out) != order or grad_out.shape != out.shape:
        return None
    dx = _empty_in_order(grad_out.shape, order, grad_out.dtype)
    one, zero = grad_out.dtype.type(1), grad_out.dtype.type(0)
    g, o, d = (a.transpose(order).reshape(-1) for a in (grad_out, out, dx))
    split_run(lambda i0, i1: RELU_GRAD_LOOP(g[i0:i1], o[i0:i1], d[i0:i1], one, zero), halves(g.size))
    return dx


__all__ = ["ReLU"]
