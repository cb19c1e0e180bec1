"""The fast layers' work in chunks of images, on one thread or two, and the BLAS hold that allows two.

The fast conv layers (fast/conv.py) run their temporary matrices a few images at a time
(`batch_chunks`): the piece a product writes is still in cache when col2im (or the next product)
reads it.  The chunks are independent, and the compiled loops release the GIL, so `split_run`
may run the later half of them on one helper thread while the calling thread runs the first.
A chunk's product of a few images is too small for BLAS's own threads to pay for their
hand-over, so two threads of our own pay only while BLAS is held at one: that is `threads_held`.

    with threads_held():        # a network's forward or backward (fast.network.FastSequential)
        split_run(fn, ranges)   # two threads here, when BLAS may use two or more outside

Outside a hold, or where BLAS was given one thread (OMP_NUM_THREADS=1, threadpoolctl's
threadpool_limits(1)), everything runs on the calling thread.

Tested by tests/test_fast_threads.py.
"""
from __future__ import annotations

import os
import threading

import numpy as np

# Tuning constants, private to the fast engine (the fast layers take them as constructor arguments
# where a test needs another value).
# Each chunk of images at most this many bytes of temporary matrix (and at least one image).
_CHUNK_BYTES = 1 << 20
# The conv products run in groups of whole images, each group's product at most this many
# multiply-adds: OpenBLAS's single-thread limit (GEMM_MULTITHREAD_THRESHOLD, 4 x 65536); 0: one
# product over the whole chunk (fast/conv.py explains why).
_PER_IMAGE_MAX_MACS = 4 * 65536
# Channel counts from which a convolution's im2col/col2im go channels last; below, a run of C
# floats is too short to pay, and the fast layers use the reference's channels-first matrices.
_MIN_CHANNELS_LAST = 8
# Channels-last convolutions keep only their input and build the im2col matrix again, a chunk at
# a time, in the backward (True), instead of keeping the whole matrix (False).
_RECOMPUTE_COLS = True


def batch_chunks(batch, bytes_per_image, chunk_bytes=_CHUNK_BYTES):
    """(first, stop) image ranges covering range(batch), each within chunk_bytes (one image at least)."""
    step = max(1, min(batch, chunk_bytes // max(1, bytes_per_image)))
    return [(n, min(batch, n + step)) for n in range(0, batch, step)]


def halves(batch):
    """The batch as (0, h), (h, batch) for split_run, or one range for a batch of one."""
    h = (batch + 1) // 2
    return [(0, h), (h, batch)] if batch > 1 else [(0, batch)]


def transient(shape, dtype):
    """A scratch array that lives only until the calling function returns, from one buffer per thread.

    Every fast layer's temporary matrices (a transposed convolution's columns, a convolution's
    input-gradient columns) come from the same buffer, grown to the largest request, so a network
    holds one such matrix instead of one per layer, and none is allocated (and page-faulted) per
    step.  A caller must be done with it before anything else asks for a transient array.
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = getattr(_TRANSIENT, "buffer", None)
    if buf is None or buf.size < nbytes:
        buf = _TRANSIENT.buffer = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


_TRANSIENT = threading.local()


class Scratch:
    """Arrays a layer keeps between calls, one per name, reallocated only when shape or dtype change."""

    def __init__(self):
        self.arrays = {}

    def get(self, name, shape, dtype):
        a = self.arrays.get(name)
        if a is None or a.shape != tuple(shape) or a.dtype != dtype:
            a = self.arrays[name] = np.empty(shape, dtype=dtype)
        return a


# ---------------------------------------------------------------------------- the hold
class _Hold:
    """The process-wide hold: how many blocks are inside it, and the BLAS counts to give back."""

    def __init__(self):
        self.lock = threading.Lock()
        self.depth = 0          # blocks inside threads_held(), in every Python thread together
        self.saved = None       # [(library, its own thread count)] while BLAS is held at one, else None
        self.libraries = None   # threadpoolctl's controllers of the loaded BLAS libraries, read once
        self.pool = None        # (the helper thread's executor, the pid that made it)


_HOLD = _Hold()


def _blas_libraries():
    """threadpoolctl's controllers of the loaded BLAS libraries (NumPy's OpenBLAS, or MKL), or []."""
    if _HOLD.libraries is None:
        try:
            from threadpoolctl import ThreadpoolController
            _HOLD.libraries = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # threadpoolctl missing or unable to read a library: one thread, nothing held
            _HOLD.libraries = []
    return _HOLD.libraries


class threads_held:
    """A block in which split_run uses two threads and every BLAS library is held at one thread.

    Process-wide and counted: the first block to enter (in any Python thread) reads BLAS's
    thread counts, and when some library may use two or more, sets every library to one and
    lets split_run use two threads; later blocks, nested or in other Python threads, only count
    themselves in; the last block to leave gives each library its own count back (also when the
    block raised).  So two models stepping in two Python threads never undo each other's
    settings.  Where BLAS was given one thread before the first entry (OMP_NUM_THREADS=1,
    threadpool_limits(1)) nothing is held and everything stays on the calling thread.

    Why a block and not each split: a product BLAS runs on its own threads between two splits
    leaves those threads spinning for a while after it, on the cores the split's threads need.
    """

    def __enter__(self):
        with _HOLD.lock:
            if _HOLD.depth == 0:
                counts = [(lib, lib.get_num_threads()) for lib in _blas_libraries()]
                counts = [(lib, n) for lib, n in counts if n]  # a library that cannot say is left alone
                if max((n for _, n in counts), default=1) >= 2:
                    for lib, _ in counts:
                        lib.set_num_threads(1)
                    _HOLD.saved = counts
            _HOLD.depth += 1
        return self

    def __exit__(self, *exc):
        with _HOLD.lock:
            _HOLD.depth -= 1
            if _HOLD.depth == 0 and _HOLD.saved is not None:
                saved, _HOLD.saved = _HOLD.saved, None
                for lib, n in saved:
                    lib.set_num_threads(n)
        return False


def split_threads():
    """The threads split_run uses now: 2 inside a hold that set BLAS to one thread, else 1."""
    return 2 if _HOLD.saved is not None else 1


def _helper():
    """The one helper thread's executor, made again in a forked child (which has the object but not
    the thread: waiting on it would hang)."""
    with _HOLD.lock:
        pool, pid = _HOLD.pool or (None, None)
        if pool is None or pid != os.getpid():
            from concurrent.futures import ThreadPoolExecutor
            pool = ThreadPoolExecutor(1, thread_name_prefix="scratch-ae-fast")
            _HOLD.pool = (pool, os.getpid())
        return pool


def split_run(fn, ranges):
    """[fn(n0, n1) for (n0, n1) in ranges], the later half of the ranges on the helper thread when
    split_threads() is 2; results in order, so sums over them are the same whatever the threads."""
    if len(ranges) < 2 or split_threads() < 2:
        return [fn(n0, n1) for n0, n1 in ranges]
    half = (len(ranges) + 1) // 2
    later = _helper().submit(lambda: [fn(n0, n1) for n0, n1 in ranges[half:]])
    first = [fn(n0, n1) for n0, n1 in ranges[:half]]
    return first + later.result()


__all__ = ["batch_chunks", "halves", "transient", "Scratch", "threads_held", "split_threads", "split_run"]
