"""The fused Adam / AdamW update on the CPU as one compiled loop: the CPU twin of the CuPy kernel.

NumPy runs one formula at a time over a whole array, so even the cache-blocked
update in fused.py makes 14 passes over each block.  The update is elementwise:
compiled with Numba (scratch_ae/jit.py), each element is read once (p, g, m, v)
and written once (p, m, v), which is the least memory traffic the update can
have.  Without Numba fused.py uses its NumPy blocks.

The loop body is the reference `Adam.update` (adam.py), line for line (its flush of
tiny values included), on
scalars of the parameter's dtype, in the same order: float32 stays float32,
and the result equals the reference bit for bit (tests/test_fused_optimizer.py).
That order costs three divisions per element, and they, not memory, bound the
loop: it takes as long in cache as out of it, and longer than the memory traffic
alone (`python benchmarks/micro.py adam-loop`).  The CuPy kernel's reordered
form reaches that floor, but equals the reference only to rounding, and in full
training steps the difference did not show (benchmarks/RESULTS.md, 'four more
arrangements of the deep network's step', reordered-adam), so the CPU loop
keeps the reference's order.

One thread: the loop runs on the calling thread.  A parallel loop was measured
and dropped: its threads fight BLAS's spinning threads for the cores after every
matrix product, and on a loaded machine each launch can wait a scheduler time
slice for a descheduled thread, so a deep-network epoch on 2 cores got slower,
with OpenMP's passive wait policy too (benchmarks/RESULTS.md, 'the Adam update
compiled with Numba' and 'each Dense + ReLU pair fused', tried and dropped).
"""
from __future__ import annotations

import numpy as np

from ..jit import CompiledLoop
from .base import flush_threshold


def _adam_loop(p, g, m, v, lr, beta1, one_minus_beta1, beta2, one_minus_beta2, eps, c1, c2, decay, small):
    """One pass over flat p, g, m, v; every scalar already has the arrays' dtype."""
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


# error_model="numpy" (jit.py) keeps the loop branch-free, so LLVM vectorises it;
# with Python's error model it stays scalar (benchmarks/RESULTS.md, 'the Adam
# update compiled with Numba', tried and dropped).
ADAM_LOOP = CompiledLoop(_adam_loop)


def adam_update_compiled(param, grad, m, v, lr, beta1, beta2, eps, c1, c2, decay=None):
    """In place on C-contiguous NumPy arrays of one dtype; the maths of fused.adam_fused_update.

    Derivation: derivations/optimizers.md#adam-fused
    """
    scalar = param.dtype.type  # the reference's Python floats meet float32 arrays as float32 (NEP 50)
    flats = [a.reshape(-1) for a in (param, grad, m, v)]
    scalars = (scalar(lr), scalar(beta1), scalar(1 - beta1), scalar(beta2), scalar(1 - beta2), scalar(eps),
               scalar(c1), scalar(c2), scalar(1.0 if decay is None else decay), scalar(flush_threshold(param.dtype)))
    ADAM_LOOP(*flats, *scalars)


__all__ = ["adam_update_compiled"]
