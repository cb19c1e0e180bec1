"""Optional Numba: plain-Python CPU loops compiled on their first call.

The fast engine's compiled loops (the Adam update, the Dense + ReLU pair, the
channels-last convolution, pooling and ReLU loops) are ordinary Python functions
over arrays and scalars, readable and runnable without Numba.  Numba is an
optional dependency (`pip install -e ".[fast]"`); without it engine "fast" is
refused on the CPU (scratch_ae.fast.resolve_engine) and "auto" runs the
reference.  It is imported at the first compilation, not at `import scratch_ae`, so the CLI does not pay for its
import on every start (benchmarks/RESULTS.md#2026-12-01-figures-from-code-comments).

Compile settings, the same for every loop:
* error_model="numpy": a division by zero gives inf or nan as in NumPy instead of
  raising, which also leaves the loop free of branches, so LLVM vectorises it
  (Python's error model leaves the Adam loop scalar: benchmarks/RESULTS.md#2026-11-23-adam-numba, tried and dropped);
* no fastmath: the compiler may not reorder the arithmetic or contract a multiply
  and an add, so a loop's result equals its NumPy reference bit for bit;
* nogil, and serial: a parallel loop's threads fight BLAS's spinning threads for
  the cores after every matrix product (benchmarks/RESULTS.md);
* cache=True: compiled once, then loaded from Numba's disk cache; where no cache
  directory is writable, compiled in memory once per process instead.
"""
from __future__ import annotations

import importlib.util

import numpy as np


def numba_unavailable_reason():
    """None when compiled loops can run, else why not (one line).  Only looks for Numba."""
    if importlib.util.find_spec("numba") is None:
        return 'Numba is not installed (pip install -e ".[fast]")'
    return None


class CompiledLoop:
    """`loop` (a Python function) compiled by Numba when first called.

    `compiled` holds the compiled function once it exists; `loop` stays the
    readable (and, without Numba, slow but correct) source.
    """

    def __init__(self, loop):
        self.loop = loop
        self.compiled = None

    def __call__(self, *args):
        if self.compiled is None:
            import numba
            try:
                self.compiled = numba.njit(error_model="numpy", cache=True, nogil=True)(self.loop)
            except RuntimeError:  # no writable cache directory anywhere: compile in memory
                self.compiled = numba.njit(error_model="numpy", cache=False, nogil=True)(self.loop)
        return self.compiled(*args)

    def __repr__(self):
        return f"CompiledLoop({self.loop.__module__}.{self.loop.__name__})"


def loops_take(*arrays):
    """True when the compiled loops take `arrays`: NumPy ndarrays (not CuPy, not a subclass) of one
    floating dtype, float32 or float64.  A fast layer meeting anything else runs its reference."""
    dtype = arrays[0].dtype
    return dtype in (np.float32, np.float64) and all(type(a) is np.ndarray and a.dtype == dtype for a in arrays)


__all__ = ["CompiledLoop", "numba_unavailable_reason", "loops_take"]
