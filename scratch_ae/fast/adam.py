"""The fast engine's Adam / AdamW update: the maths of `optimizers.adam.Adam.update`, in fewer passes over memory.

Replaces: `scratch_ae.optimizers.adam.Adam.update` (and `AdamW.update`), which stays the readable
reference, one line per formula, each line a full pass over the parameter that allocates a
temporary.  The update is elementwise, so it can instead be done one element (or one block of
elements) at a time, reading p, g, m, v once and writing p, m, v once.  `adam_update` picks one
of three forms by the arrays it meets:

* CuPy arrays: `cupy_update`, one `ElementwiseKernel`, a single pass over the four arrays, in the
  reordered form of derivations/optimizers.md#adam-fused: the bias corrections folded into two
  scalars per step, eta_t = lr sqrt(c2) / c1 and eps_t = eps sqrt(c2), so
  W <- W - eta_t m / (sqrt(v) + eps_t).  Equal to the reference in exact arithmetic; in floating
  point to rounding.
* NumPy arrays of one dtype, C-contiguous, with Numba installed: `compiled_update`, one compiled
  loop, the reference line for line, a single pass; bit-for-bit the reference's result.  Its three
  divisions per element, not memory, bound it; the reordered form would reach the memory floor but
  equals the reference only to rounding, and in full training steps the difference did not show
  (benchmarks/RESULTS.md), so the CPU loop keeps the reference's order.  One thread: a parallel
  loop's threads fought BLAS's spinning threads for the cores and an epoch got slower.
* Other NumPy arrays (not contiguous, mixed dtypes, or no Numba): `blocked_update`, the reference's
  own operations in the same order on the same dtypes, written in place into two preallocated
  scratch buffers (no temporaries per step), over blocks of the flattened arrays small enough that a
  block's 14 passes stay in the CPU's cache.  Same operations, same order: bit for bit the reference.

tests/test_fast_adam.py checks each form against `Adam.update`: bit for bit on the CPU, to
rounding on the GPU.  `Adam(engine="fast")` (and "auto" where it resolves to "fast") selects it.
"""
from __future__ import annotations

import threading

import numpy as np

from ..backend import is_device_array
from .jit import CompiledLoop, numba_unavailable_reason
from ..optimizers.base import flush_threshold, flush_tiny_values

# Largest block per array for `blocked_update`: 262144 float32.  A block's six arrays (p, g, m, v and
# two scratch buffers, 6 MiB) stay in the last-level cache for its 14 passes; smaller, L2-sized blocks
# lose more to NumPy's per-call overhead than they gain (benchmarks/RESULTS.md#2026-11-23-cpu-epoch-vs-pytorch).
BLOCK_BYTES = 1024 * 1024

_CUPY_KERNEL = None
_LOCAL = threading.local()  # per thread: dtype -> two 1-d scratch buffers of one block


def adam_update(param, grad, m, v, lr, beta1, beta2, eps, t, decay=None):
    """One Adam step on one parameter, in place, fused; AdamW's decay first if `decay` is given.

    Per element, with c1 = 1 - beta1^t and c2 = 1 - beta2^t (t = this step, from 1):
        p <- p * decay                             (AdamW weights only: decay = 1 - lr * weight_decay)
        m <- beta1 m + (1 - beta1) g
        v <- beta2 v + (1 - beta2) g^2
        p <- p - lr (m / c1) / (sqrt(v / c2) + eps)
           = p - eta_t m / (sqrt(v) + eps_t),   eta_t = lr sqrt(c2) / c1,  eps_t = eps sqrt(c2)
        then, on the CPU, p, m, v below tiny / eps -> 0   (optimizers.base.flush_tiny_values)
    param, m, v are updated in place; grad is only read.  NumPy evaluates the first form, in the
    reference's order, so the result equals `Adam.update`'s bit for bit; the CuPy kernel evaluates
    the second, equal to rounding, and does not flush (a GPU computes with subnormals at full
    speed; the difference is below 1e-31 per value, far below float32 rounding of the weights).

    Derivation: derivations/optimizers.md#adam-fused
    """
    if is_device_array(param):
        cupy_update(param, grad, m, v, lr, beta1, beta2, eps, t, decay)
    elif numba_unavailable_reason() is None and all(
            a.flags.c_contiguous and a.dtype == param.dtype for a in (param, grad, m, v)):
        compiled_update(param, grad, m, v, lr, beta1, beta2, eps, t, decay)
    else:
        blocked_update(param, grad, m, v, lr, beta1, beta2, eps, t, decay)


def reordered_scalars(lr, eps, c1, c2):
    """eta_t = lr sqrt(c2) / c1 and eps_t = eps sqrt(c2): the reordered form's two per-step scalars (host floats)."""
    return lr * c2 ** 0.5 / c1, eps * c2 ** 0.5


# ---------------------------------------------------------------------------- the compiled loop (NumPy + Numba)
def _adam_loop(p, g, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, c1, c2, decay, small):
    """One pass over flat p, g, m, v; every scalar already has the arrays' dtype (its comments quote adam.py)."""
    zero = p.dtype.type(0)
    for i in range(p.shape[0]):
        gi = g[i]
        pi = p[i] * decay                                   # param *= 1 - lr * weight_decay   (AdamW; else 1)
        mi = m[i] * beta1 + gi * one_minus_beta1           # m *= beta1; m += (1 - beta1) * grad
        vi = v[i] * beta2 + (gi * gi) * one_minus_beta2    # v *= beta2; v += (1 - beta2) * (grad * grad)
        m_hat = mi / c1                                     # m_hat = m / (1 - beta1 ** t)
        v_hat = vi / c2                                     # v_hat = v / (1 - beta2 ** t)
        pi = pi - (m_hat * lr) / (np.sqrt(v_hat) + eps)    # param -= lr * m_hat / (v_hat ** 0.5 + eps)
        p[i] = zero if abs(pi) < small else pi             # flush_tiny_values(param), (m), (v)
        m[i] = zero if abs(mi) < small else mi
        v[i] = zero if abs(vi) < small else vi


# error_model="numpy" (jit.py) keeps the loop branch-free, so LLVM vectorises it.
ADAM_LOOP = CompiledLoop(_adam_loop)


def compiled_update(param, grad, m, v, lr, beta1, beta2, eps, t, decay=None):
    """`adam_update` as one compiled loop, in place on C-contiguous NumPy arrays of one dtype (needs Numba).

    The scalars are cast to the arrays' dtype first: the reference's Python floats meet float32
    arrays as float32 (NEP 50), so float32 stays float32 and the result is the reference's bit for bit.

    Derivation: derivations/optimizers.md#adam-fused
    """
    c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
    scalar = param.dtype.type
    flats = [a.reshape(-1) for a in (param, grad, m, v)]
    scalars = (scalar(lr), scalar(beta1), scalar(1 - beta1), scalar(beta2), scalar(1 - beta2), scalar(eps),
               scalar(c1), scalar(c2), scalar(1.0 if decay is None else decay), scalar(flush_threshold(param.dtype)))
    ADAM_LOOP(*flats, *scalars)


# ---------------------------------------------------------------------------- cache-blocked NumPy
def blocked_update(param, grad, m, v, lr, beta1, beta2, eps, t, decay=None, block_bytes=BLOCK_BYTES):
    """`adam_update` in NumPy, in place, block by block of at most `block_bytes` per array.

    Non-contiguous arrays are updated as one block of their whole shape (flat views need contiguity).

    Derivation: derivations/optimizers.md#adam-fused
    """
    c1, c2 = 1 - beta1 ** t, 1 - beta2 ** t
    hyper = (lr, beta1, 1 - beta1, beta2, 1 - beta2, eps, c1, c2, decay)
    arrays = (param, grad, m, v)
    if not all(a.flags.c_contiguous for a in arrays):
        _adam_block(*arrays, *hyper)
        return
    flats = [a.reshape(-1) for a in arrays]
    block = max(1, block_bytes // param.itemsize)
    for start in range(0, flats[0].shape[0], block):
        _adam_block(*(a[start:start + block] for a in flats), *hyper)


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


# ---------------------------------------------------------------------------- the CuPy kernel
def cupy_update(param, grad, m, v, lr, beta1, beta2, eps, t, decay=None):
    """`adam_update` on CuPy arrays: one ElementwiseKernel pass in the reordered form (equal to rounding).

    Derivation: derivations/optimizers.md#adam-fused
    """
    eta_t, eps_t = reordered_scalars(lr, eps, 1 - beta1 ** t, 1 - beta2 ** t)
    _cupy_kernel()(grad, beta1, 1 - beta1, beta2, 1 - beta2, eta_t, eps_t, 1.0 if decay is None else decay,
                   param, m, v)


def _cupy_kernel():
    """The CuPy ElementwiseKernel (compiled on first use): one pass over p, g, m, v."""
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


__all__ = ["adam_update", "compiled_update", "blocked_update", "cupy_update", "reordered_scalars", "BLOCK_BYTES"]
