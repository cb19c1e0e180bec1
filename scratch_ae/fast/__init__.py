"""The fast engine: everything in scratch_ae that exists for speed, beside the reference layers.

The reference layers (scratch_ae/layers/) are the derivations' algorithms and the GPU path.  This
package holds their faster CPU forms, each a layer that wraps the reference layer it replaces and
is tested against it (tests/test_fast_*.py), plus the optimizers' fused updates (fast/adam.py) and
the VAE's shared-exp Bernoulli term (fast/bernoulli.py).  It is chosen once, by an explicit
`engine=` argument:

    ENGINES = ("auto", "reference", "fast")
    resolve_engine(engine, xp)  -> "reference" | "fast"
    to_fast(network)            -> the same network with fast layers in the places of the references
    threads_held()              -> the block in which fast layers may split work over two threads

Numba (the `[fast]` extra) is imported only when a compiled loop first runs, so importing this
package costs nothing and works without it.
"""
from __future__ import annotations

import numpy as np

from .. import validation

ENGINES = ("auto", "reference", "fast")


def unavailable_reason():
    """None when the fast engine can run on NumPy arrays here, else why not (one line)."""
    from .jit import numba_unavailable_reason
    return numba_unavailable_reason()


def resolve_engine(engine, xp):
    """The engine that runs: "reference" or "fast", for `engine` (one of ENGINES) on array module `xp`.

    "auto": "fast" when xp is NumPy and Numba imports, else "reference".  "fast" on NumPy without
    Numba: a ValueError saying how to install it.  "fast" on CuPy: "fast" (the layers stay the
    reference on the GPU, CuPy's own kernels; only the optimizers' update differs).
    """
    validation.choice("engine", engine, ENGINES)
    if engine == "reference":
        return "reference"
    on_numpy = xp is np
    reason = unavailable_reason() if on_numpy else None
    if engine == "auto":
        return "fast" if on_numpy and reason is None else "reference"
    if reason is not None:
        raise ValueError(f"engine='fast' needs Numba on the CPU: {reason}, or pip install scratch-ae[fast]; "
                         f"or pass engine='reference' or 'auto'")
    return "fast"


def to_fast(network):
    """A new Sequential running `network`'s layers with fast layers in the places of the references.

    See scratch_ae/fast/network.py: the fast layers share the reference layers' parameter and
    gradient arrays, so names, checkpoints and optimizer state over the reference network hold.
    """
    from .network import to_fast as convert
    return convert(network)


def threads_held():
    """A context manager: the process-wide, reference-counted thread hold (scratch_ae/fast/threads.py)."""
    from .threads import threads_held as hold
    return hold()


__all__ = ["ENGINES", "resolve_engine", "unavailable_reason", "to_fast", "threads_held"]
