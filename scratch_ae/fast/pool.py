"""Fast MaxPool2d and MaxUnpool2d: the reference's scan, routing and gathering as compiled loops.

The same operations in the same order as scratch_ae/layers/pool.py (MaxPool2d's scan, _route,
_gather), one compiled pass over channels-last (B, H, W, C) memory, channels innermost, so the
results equal the reference's bit for bit (up to which NaN, and the sign of a zero max where a
window holds both +0 and -0; tests/test_fast_pool.py).  Inputs that arrive as channels-last views
(a fast convolution's output, through a ReLU) are read without a copy; outputs and the argmax go
out as (B, C, H, W) views of channels-last memory.  The batch is split in two halves for
split_run (two threads inside threads_held()).
"""
import numpy as np

from ..layers import pool as reference_pool
from .base import FastLayer
from .jit import CompiledLoop, loops_take
from .nhwc import nchw_view, nhwc
from .threads import halves, split_run


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


def _route(values, argmax, input_shape, kernel_size, stride):
    """layers.pool._route as one compiled pass: a fresh (B, C, H_in, W_in) view of channels-last memory."""
    B, C, H_in, W_in = input_shape
    out = np.empty((B, H_in, W_in, C), dtype=values.dtype)
    v4, a4 = nhwc(values), nhwc(argmax)
    split_run(lambda n0, n1: ROUTE_NHWC_LOOP(v4[n0:n1], a4[n0:n1], *kernel_size, *stride, out[n0:n1]), halves(B))
    return nchw_view(out)


def _gather(grid, argmax, kernel_size, stride):
    """layers.pool._gather as one compiled pass: a fresh (B, C, H_out, W_out) view of channels-last memory."""
    B, C, H_out, W_out = argmax.shape
    out = np.empty((B, H_out, W_out, C), dtype=grid.dtype)
    g4, a4 = nhwc(grid), nhwc(argmax)
    split_run(lambda n0, n1: GATHER_NHWC_LOOP(g4[n0:n1], a4[n0:n1], *kernel_size, *stride, out[n0:n1]), halves(B))
    return nchw_view(out)


def _takes_argmax(argmax):
    return type(argmax) is np.ndarray


class MaxPool2d(FastLayer):
    """The fast form of `scratch_ae.layers.pool.MaxPool2d` (its `reference`); tests/test_fast_pool.py.

    The forward leaves its argmax and input shape on the reference (`reference.argmax`,
    `reference.input_shape`), as the reference's own forward would: so the reference's backward
    and `indices`, and every unpooling layer following that pool (reference or fast), read this
    forward's argmax.  No parameters: `params` and `grads` are the reference's (empty) dicts.
    Arrays the compiled loops do not take (CuPy, integer dtypes): the reference's forward and
    backward run instead.
    """

    reference_type = reference_pool.MaxPool2d
    splits_work = True  # split_run inside

    def forward(self, x):
        """x (B, C, H_in, W_in) -> out (B, C, H_out, W_out); the argmax kept on the reference."""
        ref = self.reference
        if not loops_take(x):
            return ref.forward(x)
        B, C, H_out, W_out = ref.checked(x)
        (kH, kW), (sH, sW) = ref.kernel_size, ref.stride
        best = np.empty((B, H_out, W_out, C), dtype=x.dtype)
        argmax = np.empty((B, H_out, W_out, C), dtype=reference_pool.index_dtype(kH * kW))
        x4 = nhwc(x)
        split_run(lambda n0, n1: MAXPOOL_NHWC_LOOP(x4[n0:n1], kH, kW, sH, sW, best[n0:n1], argmax[n0:n1]), halves(B))
        ref.argmax, ref.input_shape = nchw_view(argmax), x.shape
        return nchw_view(best)

    def backward(self, grad_out):
        """grad_out (B, C, H_out, W_out) -> dL/dx (B, C, H_in, W_in), routed through the reference's argmax.

        Derivation: derivations/convolution.md#maxpool
        """
        ref = self.reference
        if not (loops_take(grad_out) and _takes_argmax(ref.argmax)):
            return ref.backward(grad_out)
        return _route(grad_out, ref.argmax, ref.input_shape, ref.kernel_size, ref.stride)


class MaxUnpool2d(FastLayer):
    """The fast form of `scratch_ae.layers.pool.MaxUnpool2d` (its `reference`); tests/test_fast_pool.py.

    Reads its source pool's last argmax through the reference (`reference.follow_source`): the
    reference MaxPool2d, whose argmax the fast pool that replaced it keeps up to date, so an
    encoder and a decoder converted by separate `to_fast` calls still agree.  Caches (`argmax`,
    `output_shape`) are the reference's.  No parameters.  Arrays the compiled loops do not take:
    the reference's forward and backward run instead.
    """

    reference_type = reference_pool.MaxUnpool2d
    splits_work = True

    def forward(self, x):
        """x (B, C, H_out, W_out) -> out (B, C, H_in, W_in): x routed through the source pool's argmax."""
        ref = self.reference
        if not (loops_take(x) and _takes_argmax(ref.source.argmax)):
            return ref.forward(x)
        ref.follow_source(x)
        return _route(x, ref.argmax, ref.output_shape, ref.source.kernel_size, ref.source.stride)

    def backward(self, grad_out):
        """grad_out (B, C, H_in, W_in) -> dL/dx (B, C, H_out, W_out): grad_out read at each window's argmax.

        Derivation: derivations/convolution.md#maxunpool
        """
        ref = self.reference
        if not (loops_take(grad_out) and _takes_argmax(ref.argmax)):
            return ref.backward(grad_out)
        return _gather(grad_out, ref.argmax, ref.source.kernel_size, ref.source.stride)


__all__ = ["MaxPool2d", "MaxUnpool2d"]
