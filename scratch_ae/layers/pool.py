"""Max pooling (with its argmax), max unpooling through a pool's argmax, nearest-neighbour upsampling.

Like im2col, every loop here runs over the kH*kW window offsets only; each
offset is one strided slice over all images, channels and windows, on `xp`
(NumPy or CuPy).  The compiled CPU forms are scratch_ae/fast/pool.py.

Derivation: derivations/convolution.md
"""
import numpy as np

from .base import Layer
from .im2col import conv_output_size, pair, window


def index_dtype(window_size):
    """The smallest integer type holding a flat window index 0 .. window_size - 1."""
    return np.int8 if window_size <= 127 else np.int32


def _route(values, argmax, input_shape, kernel_size, stride, xp):
    """Send values (B, C, H_out, W_out) to their window's argmax in a zero (B, C, H_in, W_in) array.

    For one offset k = (i, j) the windows' pixels (p*sH + i, q*sW + j) are
    distinct, so a strided slice-add is enough; a pixel that is the max of
    several overlapping windows collects the sum.
    """
    (kH, kW), (sH, sW) = kernel_size, stride
    H_out, W_out = argmax.shape[2:]
    out = xp.zeros(input_shape, dtype=values.dtype)
    for k in range(kH * kW):
        i, j = divmod(k, kW)
        out[:, :, window(i, sH, H_out), window(j, sW, W_out)] += values * (argmax == k)
    return out


def _gather(grid, argmax, kernel_size, stride, xp):
    """Read grid (B, C, H_in, W_in) at each window's argmax: (B, C, H_out, W_out)."""
    (kH, kW), (sH, sW) = kernel_size, stride
    H_out, W_out = argmax.shape[2:]
    out = xp.zeros(argmax.shape, dtype=grid.dtype)
    for k in range(kH * kW):
        i, j = divmod(k, kW)
        out += grid[:, :, window(i, sH, H_out), window(j, sW, W_out)] * (argmax == k)
    return out


class MaxPool2d(Layer):
    """out[n, c, p, q] = max over the window x[n, c, p*sH : p*sH + kH, q*sW : q*sW + kW].

    Shapes: x (B, C, H_in, W_in), out (B, C, H_out, W_out) with
    H_out = floor((H_in - kH) / sH) + 1 (PyTorch's, no padding): rows and
    columns past the last whole window are dropped.  stride defaults to
    kernel_size; both take an int or an (h, w) pair.

    `argmax` (B, C, H_out, W_out), kept from the last forward: the flat index
    k = i*kW + j of the maximum *within its window*, row-major, in int8 (int32
    for windows over 127 entries).  On ties the FIRST in row-major window order
    wins, as on PyTorch's CPU, so an all-zero window (common after ReLU) picks
    its top-left pixel; a NaN beats any number (the max of a window holding a
    NaN is NaN, as in PyTorch).  `indices` gives PyTorch's return_indices form,
    the flat index into the H_in*W_in input plane.

    Cache: argmax and the input shape.
    """

    def __init__(self, kernel_size, stride=None, *, xp=np):
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", minimum=1)
        self.xp = xp
        self.params = {}
        self.grads = {}
        self.training = True
        self.argmax = None
        self.input_shape = None

    def output_shape(self, x_shape):
        B, C, H_in, W_in = x_shape
        (kH, kW), (sH, sW) = self.kernel_size, self.stride
        return (B, C, conv_output_size(H_in, kH, sH, 0), conv_output_size(W_in, kW, sW, 0))

    def checked(self, x):
        """The output shape for an input x, after checking x's shape (one line naming the layer)."""
        if x.ndim != 4:
            raise ValueError(f"{self!r} expects an input of shape (B, C, H, W), got {tuple(x.shape)}")
        out_shape = self.output_shape(x.shape)
        if out_shape[2] < 1 or out_shape[3] < 1:
            raise ValueError(f"{self!r}: input {tuple(x.shape)} is smaller than one window")
        return out_shape

    def forward(self, x):
        """x (B, C, H_in, W_in) -> out (B, C, H_out, W_out); keeps the argmax.

        Derivation: derivations/convolution.md#maxpool
        """
        xp = self.xp
        _, _, H_out, W_out = self.checked(x)
        (kH, kW), (sH, sW) = self.kernel_size, self.stride
        index = index_dtype(kH * kW)
        best = x[:, :, window(0, sH, H_out), window(0, sW, W_out)].copy()
        argmax = xp.zeros(best.shape, dtype=index)
        for k in range(1, kH * kW):  # row-major window order
            i, j = divmod(k, kW)
            v = x[:, :, window(i, sH, H_out), window(j, sW, W_out)]
            better = v > best          # strict: on a tie the earlier offset keeps the max
            better |= xp.isnan(v)      # a NaN wins, as in PyTorch
            xp.maximum(best, v, out=best)  # NaN-propagating, like the scan
            # k exceeds every index recorded so far, so a max records the new winner
            # without a masked (branchy, slow) write: argmax = k where better, else unchanged
            xp.maximum(argmax, better * index(k), out=argmax)
        self.argmax, self.input_shape = argmax, x.shape
        return best

    def backward(self, grad_out):
        """grad_out (B, C, H_out, W_out) -> dL/dx (B, C, H_in, W_in).

        Each window's gradient goes, whole, to its argmax pixel (the first
        maximum on ties); pixels that are the max of several overlapping windows
        get the sum; pixels that are nobody's max, and the rows past the last
        window, get 0.

        Derivation: derivations/convolution.md#maxpool
        """
        return _route(grad_out, self.argmax, self.input_shape, self.kernel_size, self.stride, self.xp)

    @property
    def indices(self):
        """The last argmax as PyTorch's max_pool2d(return_indices=True): u * W_in + v, (B, C, H_out, W_out) int64."""
        xp = self.xp
        (kH, kW), (sH, sW) = self.kernel_size, self.stride
        W_in = self.input_shape[3]
        H_out, W_out = self.argmax.shape[2:]
        k = self.argmax.astype(xp.int64)
        u = xp.arange(H_out, dtype=xp.int64).reshape(H_out, 1) * sH + k // kW
        v = xp.arange(W_out, dtype=xp.int64) * sW + k % kW
        return u * W_in + v

    def config(self):
        return {"type": "maxpool2d", "kernel_size": list(self.kernel_size), "stride": list(self.stride)}

    def __repr__(self):
        return f"MaxPool2d(kernel_size={self.kernel_size}, stride={self.stride})"


class MaxUnpool2d(Layer):
    """Route an input through a MaxPool2d's last argmax back to that pool's input shape.

    out (B, C, H_in, W_in) is zero except at each window's argmax pixel, which
    receives the input value of that window; with overlapping windows
    (stride < kernel) two windows sharing a max add up there (PyTorch's
    max_unpool2d writes one of them instead; for stride >= kernel they agree).
    It reads `source.argmax` and `source.input_shape` at every forward, the way
    TiedDense reads its source's W; the pool's forward must have run on the
    batch this layer unpools.

    Shapes: x (B, C, H_out, W_out) = the pool's output shape,
    out (B, C, H_in, W_in) = the pool's input shape.
    Cache: the argmax array used (the pool replaces, never mutates, its own).
    """

    def __init__(self, pool):
        if not isinstance(pool, MaxPool2d):
            raise TypeError(f"MaxUnpool2d needs the MaxPool2d whose argmax it follows, got {pool!r}")
        self.source = pool
        self.xp = pool.xp
        self.params = {}
        self.grads = {}
        self.training = True
        self.argmax = None
        self.output_shape = None

    def follow_source(self, x):
        """Cache the pool's last argmax and input shape for input x, after checking x against them."""
        pool = self.source
        if pool.argmax is None:
            raise RuntimeError(f"{self!r}: its pool has not run forward yet, so there is no argmax to route through")
        if tuple(x.shape) != tuple(pool.argmax.shape):
            raise ValueError(f"{self!r}: input {tuple(x.shape)} does not match the pool's last output "
                             f"{tuple(pool.argmax.shape)}")
        self.argmax, self.output_shape = pool.argmax, pool.input_shape

    def forward(self, x):
        """x (B, C, H_out, W_out) -> out (B, C, H_in, W_in), the transpose of the pool's selection.

        Derivation: derivations/convolution.md#maxunpool
        """
        self.follow_source(x)
        pool = self.source
        return _route(x, self.argmax, self.output_shape, pool.kernel_size, pool.stride, self.xp)

    def backward(self, grad_out):
        """grad_out (B, C, H_in, W_in) -> dL/dx (B, C, H_out, W_out): grad_out read at each window's argmax.

        Derivation: derivations/convolution.md#maxunpool
        """
        return _gather(grad_out, self.argmax, self.source.kernel_size, self.source.stride, self.xp)

    def config(self):
        return {"type": "maxunpool2d"}

    def __repr__(self):
        return f"MaxUnpool2d({self.source!r})"


class Upsample(Layer):
    """Nearest-neighbour upsampling by integer factors: out[n, c, u, v] = x[n, c, u // sH, v // sW].

    Shapes: x (B, C, H, W), out (B, C, sH*H, sW*W); scale_factor is a positive
    int or an (h, w) pair of them (PyTorch's nn.Upsample(mode="nearest") for
    integer factors).  Caches nothing but the input's shape.
    """

    def __init__(self, scale_factor, *, xp=np):
        self.scale_factor = pair(scale_factor, "scale_factor", minimum=1)
        self.xp = xp
        self.params = {}
        self.grads = {}
        self.training = True
        self.input_shape = None

    def forward(self, x):
        if x.ndim != 4:
            raise ValueError(f"{self!r} expects an input of shape (B, C, H, W), got {tuple(x.shape)}")
        B, C, H, W = x.shape
        sH, sW = self.scale_factor
        self.input_shape = x.shape
        # each pixel repeated as an sH x sW block: one broadcast, one copy
        blocks = self.xp.broadcast_to(x[:, :, :, None, :, None], (B, C, H, sH, W, sW))
        return blocks.reshape(B, C, H * sH, W * sW)

    def backward(self, grad_out):
        """grad_out (B, C, sH*H, sW*W) -> dL/dx (B, C, H, W): the sum of grad_out over each pixel's block.

        Derivation: derivations/convolution.md#upsample
        """
        B, C, H, W = self.input_shape
        sH, sW = self.scale_factor
        return grad_out.reshape(B, C, H, sH, W, sW).sum(axis=(3, 5))

    def config(self):
        return {"type": "upsample", "scale_factor": list(self.scale_factor)}

    def __repr__(self):
        return f"Upsample(scale_factor={self.scale_factor})"
