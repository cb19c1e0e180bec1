"""The fused Adam / AdamW update: the maths of `Adam.update`, in fewer passes over memory.

`Adam.update` (adam.py) is the readable reference: one line per formula, each
line a full pass over the parameter that allocates a temporary.  The update is
elementwise, so it can instead be done one element (or one block of elements)
at a time, reading p, g, m, v once and writing p, m, v once:

* CuPy: one `ElementwiseKernel`, a single pass over the four arrays, in the
  reordered form of derivations/optimizers.md#adam-fused: the bias corrections
  folded into two scalars per step, eta_t = lr sqrt(c2) / c1 and
  eps_t = eps sqrt(c2), so W <- W - eta_t m / (sqrt(v) + eps_t).  Equal to the
  reference in exact arithmetic; in floating point to rounding.
* NumPy with Numba installed: one compiled loop, the reference line for line
  (fused_cpu.py), a single pass; bit-for-bit the reference's result.
* NumPy without Numba: the reference's own operations, in the same order on the same dtypes,
  but written in place into two small preallocated scratch buffers (no
  temporaries allocated per step), over blocks of the flattened arrays small
  enough that a block's 14 passes stay in the CPU's cache.  Same operations,
  same order, same rounding: the result is bit-for-bit the reference's
  (tests/test_fused_optimizer.py).  The reordered form would save two of the
  14 passes, too little for the price of that equality (benchmarks/RESULTS.md,
  'All CPU epoch runs of the day', the reordered NumPy update), so NumPy
  keeps the reference's order.  Splitting the blocks between threads was
  tried and dropped: no faster here (benchmarks/RESULTS.md), since the update
  is memory-bound and BLAS's idle threads keep spinning on the other cores.

Select it with `Adam(lr, fused=True)` / `AdamW(lr, fused=True)`.
"""
from __future__ import annotations

import threading

import numpy as np

from ..backend import is_device_array
from ..jit import numba_unavailable_reason
from .base import flush_tiny_values
from .fused_cpu import adam_update_compiled

# Largest block per array on NumPy: 262144 float32.  A block's six arrays (p, g,
# m, v and two scratch buffers, 6 MiB) stay in the last-level cache for its 14
# passes; smaller, L2-sized blocks lose more to NumPy's per-call overhead than
# they gain (benchmarks/RESULTS.md, 'What changed for speed', block size).
BLOCK_BYTES = 1024 * 1024

# The NumPy-backend path: "numba" (fused_cpu.py, one compiled pass) when Numba is
# installed, else "numpy" (the cache-blocked in-place form below).  Both equal the
# reference bit for bit; tests and benchmarks set this to compare them.
CPU_KERNEL = "numpy" if numba_unavailable_reason() else "numba"

_CUPY_KERNEL = None
_LOCAL = threading.local()  # per thread: dtype -> two 1-d scratch buffers of one block


def adam_fused_update(param, grad, m, v, lr, beta1, beta2, eps, t, decay=None):
    """One Adam step on one parameter, in place, fused; AdamW's decay first if `decay` is given.

    Per element, with c1 = 1 - beta1^t and c2 = 1 - beta2^t (t = this step, from 1):
        p <- p * decay                             (AdamW weights only: decay = 1 - lr * weight_decay)
        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2
        p <- p - lr (m / c1) / (sqrt(v / c2) + eps)
           = p - eta_t m / (sqrt(v) + eps_t),   eta_t = lr sqrt(c2) / c1,  eps_t = eps sqrt(c2)
        then, on the CPU, p, m, v below tiny / eps -> 0   (base.flush_tiny_values)
    param, m, v are updated in place; grad is only read.  NumPy evaluates the
    first form, in the reference's order, so the result equals `Adam.update`'s
    bit for bit; the CuPy kernel evaluates the second, equal to rounding, and
    does not flush (a GPU computes with subnormals at full speed; the
    difference is below 1e-31 per value, far below float32 rounding of the weights).

    Derivation: derivations/optimizers.md#adam-fused
    """
    c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
    if is_device_array(param):
        eta_t, eps_t = reordered_scalars(lr, eps, c1, c2)
        _cupy_kernel()(grad, beta1, 1 - beta1, beta2, 1 - beta2, eta_t, eps_t,
                       1.0 if decay is None else decay, param, m, v)
        return
    arrays = (param, grad, m, v)
    if CPU_KERNEL == "numba" and all(a.flags.c_contiguous and a.dtype == param.dtype for a in arrays):
        adam_update_compiled(param, grad, m, v, lr, beta1, beta2, eps, c1, c2, decay)
        return
    hyper = (lr, beta1, 1 - beta1, beta2, 1 - beta2, eps, c1, c2, decay)
    if not all(a.flags.c_contiguous for a in arrays):
        # Flat views need contiguous arrays; otherwise one block of the whole shape.
        _adam_block(param, grad, m, v, *hyper)
        return
    flats = [a.reshape(-1) for a in (param, grad, m, v)]
    block = max(1, BLOCK_BYTES // param.itemsize)
    for start in range(0, flats[0].shape[0], block):
        _adam_block(*(a[start:start + block] for a in flats), *hyper)


def reordered_scalars(lr, eps, c1, c2):
    """eta_t = lr sqrt(c2) / c1 and eps_t = eps sqrt(c2): the fused form's two per-step scalars (host floats)."""
    return lr * c2 ** 0.5 / c1, eps * c2 ** 0.5


def _adam_block(p, g, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, c1, c2, decay):
    """The reference update, line for line, in place on one block (its comments quote adam.py)."""
    s1, s2 = _scratch(p.dtype, p.shape)
    if decay is not None:
        p *= decay                                  # param *= 1 - lr * weight_decay   (AdamW)
    m *= beta1                                      # m *= beta1
    np.multiply(g, one_minus_beta1, out=s1)         # m += (1 - beta1) * grad
    m += s1
    v *= beta2                                      # v *= beta2
    np.multiply(g, g, out=s1)                       # v += (1 - beta2) * (grad * grad)
    s1 *= one_minus_beta2
    v += s1
    np.divide(m, c1, out=s1)                        # m_hat = m / (1 - beta1 ** t)
    np.divide(v, c2, out=s2)                        # v_hat = v / (1 - beta2 ** t)
    s1 *= lr                                        # param -= lr * m_hat / (v_hat ** 0.5 + eps)
    np.sqrt(s2, out=s2)
    s2 += eps
    s1 /= s2
    p -= s1
    for array in (p, m, v):                         # flush_tiny_values(param), (m), (v)
        flush_tiny_values(array)


def _scratch(dtype, shape):
    """Two scratch arrays of `shape`: views of this thread's buffers, kept between calls."""
    size = int(np.prod(shape))
    buffers = _LOCAL.__dict__.setdefault("buffers", {})
    bufs = buffers.get(np.dtype(dtype))
    if bufs is None or bufs[0].shape[0] < size:
        bufs = buffers[np.dtype(dtype)] = (np.empty(size, dtype), np.empty(size, dtype))
    return bufs[0][:size].reshape(shape), bufs[1][:size].reshape(shape)


def _cupy_kernel():
    """The CuPy ElementwiseKernel (compiled on first use): one pass over p, g, m, v.

    Its lines are the second form in `adam_fused_update`'s docstring (the derivation it cites).
    """
    global _CUPY_KERNEL
    if _CUPY_KERNEL is None:
        import cupy
        _CUPY_KERNEL = cupy.ElementwiseKernel(
            "T g, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T eta_t, T eps_t, T decay",
            "T p, T m, T v",
            """
            p = p * decay;                                 // AdamW: decay = 1 - lr * weight_decay (else 1)
            m = beta1 * m + one_minus_beta1 * g;           // m <- beta1 m + (1 - beta1) g
            v = beta2 * v + one_minus_beta2 * (g * g);     // v <- beta2 v + (1 - beta2) g^2
            p = p - eta_t * m / (sqrt(v) + eps_t);         // = p - lr m_hat / (sqrt(v_hat) + eps)
            """,
            "scratch_ae_adam_fused",
        )
    return _CUPY_KERNEL


__all__ = ["adam_fused_update", "reordered_scalars", "BLOCK_BYTES", "CPU_KERNEL"]
