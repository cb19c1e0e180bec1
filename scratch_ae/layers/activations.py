"""Elementwise activations.  Each caches the one array its backward needs."""
import numpy as np

from ..backend import array_module
from ..jit import CompiledLoop
from .base import Layer
from .im2col import fast_path, halves, split_run


class ReLU(Layer):
    """out = max(x, 0).  Cache: out, since [out > 0] is exactly the mask [x > 0].

    dL/dx = grad_out * [out > 0]; at x = 0 we use the sub-gradient 0.  Caching
    out rather than a boolean mask lets the fused Dense + ReLU pass (fused.py)
    fill the same cache without writing a mask.
    """

    def forward(self, x):
        if x.ndim == 4 and fast_path(x):  # a conv feature map on the CPU: one compiled pass (below)
            fast = _relu_fast(x)
            if fast is not None:
                self.out = fast
                return fast
        # x * [x > 0] rather than maximum(x, 0): the same values (NaN stays NaN),
        # and in NumPy the faster of the two.
        self.out = x * (x > 0)
        return self.out

    def backward(self, grad_out):
        """Derivation: derivations/dense-autoencoder.md#relu-backward"""
        if grad_out.ndim == 4 and fast_path(grad_out, self.out):
            fast = _relu_grad_fast(grad_out, self.out)
            if fast is not None:
                return fast
        return grad_out * (self.out > 0)


class LeakyReLU(Layer):
    """out = x for x > 0, slope * x otherwise.  Cache: the mask x > 0."""

    def __init__(self, slope=0.01):
        super().__init__()
        self.slope = slope

    def forward(self, x):
        self.mask = x > 0
        return x * self.mask + (self.slope * x) * ~self.mask

    def backward(self, grad_out):
        """dL/dx = grad_out * (1 if x > 0 else slope).

        Derivation: derivations/dense-autoencoder.md#leaky-relu-backward
        """
        return grad_out * self.mask + (self.slope * grad_out) * ~self.mask

    def config(self):
        return {"type": "leaky_relu", "slope": self.slope}

    def __repr__(self):
        return f"LeakyReLU(slope={self.slope})"


class Sigmoid(Layer):
    """out = 1 / (1 + exp(-x)).  Cache: out, since sigma' = out (1 - out)."""

    def forward(self, x):
        # 0.5 (1 + tanh(x/2)) equals the logistic function and never overflows exp.
        self.out = 0.5 * (1.0 + array_module(x).tanh(0.5 * x))
        return self.out

    def backward(self, grad_out):
        """dL/dx = grad_out * out * (1 - out).

        Derivation: derivations/dense-autoencoder.md#sigmoid-backward
        """
        return grad_out * self.out * (1.0 - self.out)


class Tanh(Layer):
    """out = tanh(x).  Cache: out, since tanh' = 1 - out^2."""

    def forward(self, x):
        self.out = array_module(x).tanh(x)
        return self.out

    def backward(self, grad_out):
        """dL/dx = grad_out * (1 - out^2).

        Derivation: derivations/dense-autoencoder.md#tanh-backward
        """
        return grad_out * (1.0 - self.out * self.out)


class Identity(Layer):
    """out = x (the linear autoencoder's activation).  Caches nothing."""

    def forward(self, x):
        return x

    def backward(self, grad_out):
        """dL/dx = grad_out.

        Derivation: derivations/dense-autoencoder.md#identity-backward
        """
        return grad_out


ACTIVATIONS = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "identity": Identity,
}
ALIASES = {"linear": "identity", "leaky-relu": "leaky_relu", "leakyrelu": "leaky_relu", "none": "identity"}
HE_FAMILY = ("relu", "leaky_relu")


def activation_name(name):
    """Canonical activation name, or a ValueError naming the valid ones."""
    key = ALIASES.get(str(name).lower(), str(name).lower())
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of: {', '.join(ACTIVATIONS)} (or 'linear')")
    return key


def make_activation(name, leaky_slope=0.01):
    key = activation_name(name)
    return LeakyReLU(leaky_slope) if key == "leaky_relu" else ACTIVATIONS[key]()


# ---------------------------------------------------------------------------- the compiled CPU path for ReLU
# Beside ReLU's NumPy lines, chosen before them (im2col.fast_path: NumPy float arrays, Numba
# installed) for the conv networks' 4-D feature maps, which the conv layers hand on as
# channels-last views.  NumPy's x * (x > 0) makes a boolean mask and then a product, two
# passes and a temporary; the loop does the same product, x * (1 or 0), in one pass over the
# array's memory in its own order, so the output keeps the input's layout (as NumPy's does)
# and the values are the same bits (-0 for negative inputs, NaN stays NaN).
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


def _relu_fast(x):
    """x * (x > 0) in one compiled pass, in x's memory layout; None when x is not laid out contiguously."""
    order = _memory_order(x)
    if order is None:
        return None
    out = _empty_in_order(x.shape, order, x.dtype)
    src, dst = x.transpose(order).reshape(-1), out.transpose(order).reshape(-1)
    one, zero = x.dtype.type(1), x.dtype.type(0)
    split_run(lambda i0, i1: RELU_LOOP(src[i0:i1], dst[i0:i1], one, zero), halves(src.size))
    return out


def _relu_grad_fast(grad_out, out):
    """grad_out * (out > 0) in one compiled pass; None unless both lie contiguously in the same order."""
    order = _memory_order(grad_out)
    if order is None or _memory_order(out) != order or grad_out.shape != out.shape:
        return None
    dx = _empty_in_order(grad_out.shape, order, grad_out.dtype)
    one, zero = grad_out.dtype.type(1), grad_out.dtype.type(0)
    g, o, d = (a.transpose(order).reshape(-1) for a in (grad_out, out, dx))
    split_run(lambda i0, i1: RELU_GRAD_LOOP(g[i0:i1], o[i0:i1], d[i0:i1], one, zero), halves(g.size))
    return dx
