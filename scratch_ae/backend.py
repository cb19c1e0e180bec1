"""The array backend: NumPy on the CPU or CuPy on a CUDA GPU, behind one `xp`.

Every array operation in scratch_ae goes through `backend.xp`, so the same
forward and backward code runs on either device.  Random numbers for weight
initialisation and minibatch order are drawn on the host with a seeded NumPy
generator and then copied to the device, so a NumPy run and a CuPy run with
the same seed start from the same weights and see the same batches.
"""
from __future__ import annotations

import numpy as np

BACKENDS = ("numpy", "cupy")
GPU_HINT = ('install the GPU extra with `pip install -e ".[gpu]"` in your scratch-ae checkout (cupy-cuda12x; use cupy-cuda13x on CUDA 13; '
            'without a local CUDA toolkit add its [ctk] extra, e.g. `pip install "cupy-cuda12x[ctk]"`)')


class BackendError(RuntimeError):
    """The requested backend cannot be used here (unknown name, no CuPy, no GPU)."""


class Backend:
    """A named array module plus the two copies every caller needs.

    Attributes
    ----------
    name : "numpy" or "cupy"
    xp : the array module (``numpy`` or ``cupy``)
    """

    def __init__(self, name, xp):
        self.name = name
        self.xp = xp

    def asarray(self, a, dtype=None):
        """Copy a host (or device) array to this backend, optionally casting."""
        return self.xp.asarray(a, dtype=dtype)

    def to_numpy(self, a):
        """A host NumPy copy of an array of this backend (always a copy, never a view)."""
        if self.name == "cupy" and not isinstance(a, np.ndarray):  # cupy.asnumpy returns a host array as is
            return self.xp.asnumpy(a)
        return np.array(a, copy=True)

    def synchronize(self):
        """Wait for queued device work (a no-op on NumPy); used only for timing."""
        if self.name == "cupy":
            self.xp.cuda.get_current_stream().synchronize()

    def device_name(self):
        """A human-readable name of the device the arrays live on."""
        if self.name == "numpy":
            import platform
            return f"cpu ({platform.processor() or platform.machine()})"
        props = self.xp.cuda.runtime.getDeviceProperties(self.xp.cuda.Device().id)
        name = props["name"]
        return name.decode() if isinstance(name, bytes) else str(name)

    def __repr__(self):
        return f"Backend({self.name!r})"

    def __eq__(self, other):
        return isinstance(other, Backend) and other.name == self.name

    def __hash__(self):
        return hash(self.name)


_NUMPY = Backend("numpy", np)
_CUPY = None


def _first_line(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


def cupy_unavailable_reason():
    """Why CuPy cannot be used here, as one line, or None when it can.

    Beyond importing CuPy and counting devices, runs one tiny computation: an
    elementwise kernel (compiled at run time by NVRTC) and a matrix product
    (cuBLAS).  A CuPy wheel without the CUDA toolkit's libraries imports and
    finds the GPU, then fails at the first kernel; this reports that here, in
    one line, instead of as a traceback from the first training step.
    """
    try:
        import cupy  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA library underneath
        return f"CuPy is not importable ({_first_line(exc)})"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:
        return f"CuPy found no usable CUDA GPU ({_first_line(exc)})"
    if count < 1:
        return "CuPy found no CUDA GPU"
    try:
        x = cupy.arange(4, dtype=cupy.float32)
        float((x * 2 + 1) @ x)
    except Exception as exc:
        return (f"CuPy found a GPU but cannot run a kernel on it ({_first_line(exc)}); "
                "the CUDA toolkit's libraries (NVRTC, cuBLAS) may be missing")
    return None


def get_backend(name="numpy"):
    """Return the `Backend` called `name` ("numpy" or "cupy"); a Backend passes through.

    Raises BackendError with one line saying how to fix it when CuPy or a GPU
    is missing, instead of a traceback from deep inside CuPy.
    """
    global _CUPY
    if isinstance(name, Backend):
        return name
    if name == "numpy":
        return _NUMPY
    if name == "cupy":
        if _CUPY is None:
            reason = cupy_unavailable_reason()
            if reason is not None:
                raise BackendError(f"backend 'cupy' is unavailable: {reason}; {GPU_HINT}, or use --backend numpy")
            import cupy
            _CUPY = Backend("cupy", cupy)
        return _CUPY
    raise BackendError(f"unknown backend {name!r}; expected one of: {', '.join(BACKENDS)}")


def is_device_array(array):
    """True for a CuPy (GPU) array, recognised without importing CuPy."""
    return type(array).__module__.startswith("cupy")


def array_module(array):
    """numpy or cupy, whichever `array` belongs to: the one place that tells them apart."""
    if is_device_array(array):
        import cupy
        return cupy
    return np


def check_array_backend(array, backend, what="X"):
    """A one-line TypeError when a CuPy (GPU) array is given to an object on the NumPy backend.

    CuPy refuses implicit copies to the host, so NumPy would fail deep inside with
    CuPy's own message; this names the argument and the two ways out.  A NumPy
    array given to a CuPy object is fine: it is copied to the device.
    """
    if backend.name == "numpy" and is_device_array(array):
        raise TypeError(f"{what} is a CuPy (GPU) array, but this object runs on backend 'numpy'; "
                        f"copy it to the host with .get() or use backend='cupy'")


def backend_of(array):
    """The Backend an array lives on (CuPy arrays are recognised without importing CuPy)."""
    if is_device_array(array):
        return get_backend("cupy")
    return _NUMPY
