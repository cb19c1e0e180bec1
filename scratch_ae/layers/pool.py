"""Max pooling (with its argmax), max unpooling through a pool's argmax, nearest-neighbour upsampling.

Like im2col, every loop here runs over the kH*kW window offsets only; each
offset is one strided slice over all images, channels and windows.

Derivation: derivations/convolution.md
"""
import numpy as np

from ..jit import CompiledLoop
from .base import Layer
from .im2col import conv_output_size, fast_path, halves, nchw_view, nhwc, pair, split_run, window


def _index_dtype(window_size):
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


# ---------------------------------------------------------------------------- the channels-last CPU path
# Beside _route, _gather and MaxPool2d's scan, chosen outside them (im2col.fast_path: NumPy
# float arrays, Numba installed): the same operations in the same order, one compiled pass
# over channels-last (B, H, W, C) memory, channels innermost, equal to the reference bit for
# bit (up to which NaN, and the sign of a zero max, where a window holds both +0 and -0).
# Inputs that arrive as channels-last views (a convolution's output, through a ReLU) are read
# without a copy; outputs and the argmax go out as (B, C, H, W) views of channels-last memory.
def _maxpool_nhwc_loop(x, kH, kW, sH, sW, best, argmax):
    """best[n, p, q, c] = max of the window, argmax = its first row-major index k (a NaN wins)."""
    # Plain element indexing throughout (no row views in the loops), channels innermost so
    # the compiler vectorises over c; the comparison is a branch-free select.
    B, H_out, W_out, C = best.shape
    if kH == 2 and kW == 2:
        # the common 2x2 window written out: the four reads and three selects stay in registers
        for n in range(B):
            for p in range(H_out):
                u0 = p * sH
                for q in range(W_out):
                    v0 = q * sW
                    for c in range(C):
                        m, a = x[n, u0, v0, c], 0
                        val = x[n, u0, v0 + 1, c]
                        if (val > m) | (val != val):
                            m, a = val, 1
                        val = x[n, u0 + 1, v0, c]
                        if (val > m) | (val != val):
                            m, a = val, 2
                        val = x[n, u0 + 1, v0 + 1, c]
                        if (val > m) | (val != val):
                            m, a = val, 3
                        best[n, p, q, c] = m
                        argmax[n, p, q, c] = a
        return
    for n in range(B):
        for p in range(H_out):
            u0 = p * sH
            for q in range(W_out):
                v0 = q * sW
                for c in range(C):
                    best[n, p, q, c] = x[n, u0, v0, c]
                    argmax[n, p, q, c] = 0
                for k in range(1, kH * kW):
                    u, v = u0 + k // kW, v0 + k % kW
                    for c in range(C):
                        val = x[n, u, v, c]
                        m = best[n, p, q, c]
                        # strict: on a tie the earlier offset keeps it; a NaN always takes over
                        if (val > m) | (val != val):
                            best[n, p, q, c] = val
                            argmax[n, p, q, c] = k


def _route_nhwc_loop(values, argmax, kH, kW, sH, sW, out):
    """out[n, p*sH + i, q*sW + j, c] += values[n, p, q, c] * [argmax == i*kW + j], offsets k outermost."""
    B, H_out, W_out, C = values.shape
    H_in, W_in = out.shape[1], out.shape[2]
    one, zero = values.dtype.type(1), values.dtype.type(0)
    if sH == kH and sW == kW:
        # Windows that tile the input: every pixel lies in at most one window, so the reference's
        # zero-then-add-per-offset collapses to one write per pixel, 0 + value * [argmax == k]
        # (the same two operations, so the same bits, -0 and inf * 0 included); the pixels past
        # the last window are 0.
        for n in range(B):
            for p in range(H_out):
                for i in range(kH):
                    u = p * sH + i
                    for q in range(W_out):
                        for j in range(kW):
                            v, k = q * sW + j, i * kW + j
                            for c in range(C):
                                mask = one if argmax[n, p, q, c] == k else zero
                                out[n, u, v, c] = zero + values[n, p, q, c] * mask
                    for v in range(W_out * sW, W_in):
                        for c in range(C):
                            out[n, u, v, c] = zero
            for u in range(H_out * sH, H_in):
                for v in range(W_in):
                    for c in range(C):
                        out[n, u, v, c] = zero
        return
    for n in range(B):
        for u in range(H_in):
            for v in range(W_in):
                for c in range(C):
                    out[n, u, v, c] = zero
        for k in range(kH * kW):
            i, j = k // kW, k % kW
            for p in range(H_out):
                for q in range(W_out):
                    u, v = p * sH + i, q * sW + j
                    for c in range(C):
                        out[n, u, v, c] += values[n, p, q, c] * (one if argmax[n, p, q, c] == k else zero)


def _gather_nhwc_loop(grid, argmax, kH, kW, sH, sW, out):
    """out[n, p, q, c] = 0 + sum over k of grid[n, p*sH + i, q*sW + j, c] * [argmax == k], k in order."""
    B, H_out, W_out, C = out.shape
    one, zero = out.dtype.type(1), out.dtype.type(0)
    if kH == 2 and kW == 2:
        # the common 2x2 window written out: the sum stays in a register, same terms in the same order
        for n in range(B):
            for p in range(H_out):
                u0 = p * sH
                for q in range(W_out):
                    v0 = q * sW
                    for c in range(C):
                        a = argmax[n, p, q, c]
                        acc = zero + grid[n, u0, v0, c] * (one if a == 0 else zero)
                        acc += grid[n, u0, v0 + 1, c] * (one if a == 1 else zero)
                        acc += grid[n, u0 + 1, v0, c] * (one if a == 2 else zero)
                        acc += grid[n, u0 + 1, v0 + 1, c] * (one if a == 3 else zero)
                        out[n, p, q, c] = acc
        return
    for n in range(B):
        for p in range(H_out):
            for q in range(W_out):
                for c in range(C):
                    out[n, p, q, c] = zero
                for k in range(kH * kW):
                    u, v = p * sH + k // kW, q * sW + k % kW
                    for c in range(C):
                        out[n, p, q, c] += grid[n, u, v, c] * (one if argmax[n, p, q, c] == k else zero)


MAXPOOL_NHWC_LOOP = CompiledLoop(_maxpool_nhwc_loop)
ROUTE_NHWC_LOOP = CompiledLoop(_route_nhwc_loop)
GATHER_NHWC_LOOP = CompiledLoop(_gather_nhwc_loop)


def _route_fast(values, argmax, input_shape, kernel_size, stride):
    """_route on the channels-last path: a fresh (B, C, H_in, W_in) view of channels-last memory."""
    B, C, H_in, W_in = input_shape
    out = np.empty((B, H_in, W_in, C), dtype=values.dtype)
    v4, a4 = nhwc(values), nhwc(argmax)
    split_run(lambda n0, n1: ROUTE_NHWC_LOOP(v4[n0:n1], a4[n0:n1], *kernel_size, *stride, out[n0:n1]), halves(B))
    return nchw_view(out)


def _gather_fast(grid, argmax, kernel_size, stride):
    """_gather on the channels-last path: a fresh (B, C, H_out, W_out) view of channels-last memory."""
    B, C, H_out, W_out = argmax.shape
    out = np.empty((B, H_out, W_out, C), dtype=grid.dtype)
    g4, a4 = nhwc(grid), nhwc(argmax)
    split_run(lambda n0, n1: GATHER_NHWC_LOOP(g4[n0:n1], a4[n0:n1], *kernel_size, *stride, out[n0:n1]), halves(B))
    return nchw_view(out)


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

    def forward(self, x):
        """x (B, C, H_in, W_in) -> out (B, C, H_out, W_out); keeps the argmax.

        Derivation: derivations/convolution.md#maxpool
        """
        xp = self.xp
        if x.ndim != 4:
            raise ValueError(f"{self!r} expects an input of shape (B, C, H, W), got {tuple(x.shape)}")
        _, _, H_out, W_out = self.output_shape(x.shape)
        if H_out < 1 or W_out < 1:
            raise ValueError(f"{self!r}: input {tuple(x.shape)} is smaller than one window")
        (kH, kW), (sH, sW) = self.kernel_size, self.stride
        index = _index_dtype(kH * kW)
        if fast_path(x):
            B, C = x.shape[:2]
            best, argmax = np.empty((B, H_out, W_out, C), dtype=x.dtype), np.empty((B, H_out, W_out, C), dtype=index)
            x4 = nhwc(x)
            split_run(lambda n0, n1: MAXPOOL_NHWC_LOOP(x4[n0:n1], kH, kW, sH, sW, best[n0:n1], argmax[n0:n1]),
                      halves(B))
            self.argmax, self.input_shape = nchw_view(argmax), x.shape
            return nchw_view(best)
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
        if fast_path(grad_out):
            return _route_fast(grad_out, self.argmax, self.input_shape, self.kernel_size, self.stride)
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

    def forward(self, x):
        """x (B, C, H_out, W_out) -> out (B, C, H_in, W_in), the transpose of the pool's selection.

        Derivation: derivations/convolution.md#maxunpool
        """
        pool = self.source
        if pool.argmax is None:
            raise RuntimeError(f"{self!r}: its pool has not run forward yet, so there is no argmax to route through")
        if tuple(x.shape) != tuple(pool.argmax.shape):
            raise ValueError(f"{self!r}: input {tuple(x.shape)} does not match the pool's last output "
                             f"{tuple(pool.argmax.shape)}")
        self.argmax, self.output_shape = pool.argmax, pool.input_shape
        if fast_path(x):
            return _route_fast(x, self.argmax, self.output_shape, pool.kernel_size, pool.stride)
        return _route(x, self.argmax, self.output_shape, pool.kernel_size, pool.stride, self.xp)

    def backward(self, grad_out):
        """grad_out (B, C, H_in, W_in) -> dL/dx (B, C, H_out, W_out): grad_out read at each window's argmax.

        Derivation: derivations/convolution.md#maxunpool
        """
        if fast_path(grad_out):
            return _gather_fast(grad_out, self.argmax, self.source.kernel_size, self.source.stride)
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
