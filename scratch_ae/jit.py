"""Optional Numba: plain-Python CPU loops compiled on their first call.

The compiled loops (the fused Adam update, the fused Dense + ReLU passes) are
ordinary Python functions over arrays and scalars, readable and runnable
without Numba.  Numba is an optional dependency (`pip install -e ".[fast]"`);
without it the callers run their NumPy reference instead.  It is imported at the
first compilation, not at `import scratch_ae`, so the CLI does not pay for its
import on every start (benchmarks/RESULTS.md, '2026-12-01: figures moved out of
code comments').

Compile settings, the same for every loop:
* error_model="numpy": a division by zero gives inf or nan as in NumPy instead of
  raising, which also leaves the loop free of branches, so LLVM vectorises it
  (Python's error model leaves the Adam loop scalar: benchmarks/RESULTS.md,
  'the Adam update compiled with Numba', tried and dropped);
* no fastmath: the compiler may not reorder the arithmetic or contract a multiply
  and an add, so a loop's result equals its NumPy reference bit for bit;
* nogil, and serial: a parallel loop's threads fight BLAS's spinning threads for
  the cores after every matrix product (benchmarks/RESULTS.md);
* cache=True: compiled once, then loaded from Numba's disk cache; where no cache
  directory is writable, compiled in memory once per process instead.
"""
from __future__ import annotations

import importlib.util


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


__all__ = ["CompiledLoop", "numba_unavailable_reason"]
