"""Host/device helpers: random numbers are drawn on the host with NumPy, then
copied to the device when the data lives there (CuPy).  CuPy is imported only
when the caller already handed us a CuPy array."""
import numpy as np

from ..backend import array_module
from ..backend import is_device_array as is_cupy
from .errors import DataError


def like(host_array, x):
    """Return the NumPy `host_array` on the same device as `x`."""
    if is_cupy(x):
        return array_module(x).asarray(host_array)
    return host_array


def check_rng(rng, func):
    """Raise DataError unless `rng` is a numpy.random.Generator."""
    if not isinstance(rng, np.random.Generator):
        raise DataError(f"{func}: rng must be a numpy.random.Generator "
                        f"(e.g. np.random.default_rng(0)), got {type(rng).__name__}")


def check_batch(x, func):
    """Raise DataError unless `x` is a 2-D floating array of shape (N, D)."""
    shape = getattr(x, "shape", None)
    dtype = getattr(x, "dtype", None)
    if shape is None or len(shape) != 2:
        raise DataError(f"{func}: x must be a 2-D array of shape (N, D), "
                        f"got {'shape ' + str(tuple(shape)) if shape is not None else type(x).__name__}")
    if np.dtype(dtype).kind != "f":
        raise DataError(f"{func}: x must be a floating-point array with values in [0, 1], "
                        f"got dtype {dtype}")
