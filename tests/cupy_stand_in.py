"""A stand-in for CuPy, on NumPy, so the GPU code paths run in tests on a machine without a GPU.

Not an emulator of CuPy: it reproduces the three behaviours that the tests in
test_cupy_stand_in.py check, and is NumPy underneath for everything else.

* Device arrays refuse implicit conversion to NumPy, as CuPy's do: np.asarray,
  NumPy functions and NumPy ufuncs on them raise TypeError, and CuPy functions
  refuse NumPy arrays.
* Every read of device data on the host (float, int, bool, item, .get(),
  asnumpy, a stream or device synchronize) is counted in HOST_READS, so a test
  can show that training reads the device once per epoch, not once per step.
* ElementwiseKernel checks its arguments' types the way CuPy does (every `T`
  the same dtype, outputs first), casts scalar arguments to `T`, and runs the
  kernel's body, a few C assignments such as `p = p - eta_t * m / (sqrt(v) + eps_t);`,
  on NumPy in that dtype, so the text of a kernel is tested against its maths.

Install it with `install(monkeypatch)` (tests/test_cupy_stand_in.py does, in a fixture).
"""
from __future__ import annotations

import re
import sys
import types

import numpy as np

__version__ = "0+stand-in"
HOST_READS = []  # one entry per host read of device data: its kind ("float", "asnumpy", ...)


def _read(kind):
    HOST_READS.append(kind)


def _unwrap(x):
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    if isinstance(x, dict):
        return {k: _unwrap(v) for k, v in x.items()}
    return x


def _wrap(x):
    if isinstance(x, np.ndarray):
        return ndarray(x)
    if isinstance(x, np.generic):  # CuPy returns 0-d device arrays, never host scalars
        return ndarray(np.asarray(x))
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # a named result, e.g. linalg.eigh's (eigenvalues, eigenvectors)
        return type(x)(*(_wrap(v) for v in x))
    if isinstance(x, (list, tuple)):
        return type(x)(_wrap(v) for v in x)
    return x


def _refuse_host_arrays(args, where):
    for a in args:
        if isinstance(a, np.ndarray) and a.ndim > 0:
            raise TypeError(f"{where}: got a numpy.ndarray; CuPy takes only device arrays here")


class ndarray:
    """A device array: a NumPy array that cannot be read on the host without being counted."""
    __slots__ = ("_a",)
    __array_ufunc__ = None  # NumPy ufuncs on a device array raise TypeError, as with CuPy
    __hash__ = None

    def __init__(self, a):
        object.__setattr__(self, "_a", a)

    def __array__(self, *args, **kwargs):
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def __array_function__(self, func, types_, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} called on a cupy.ndarray")

    # host reads
    def __float__(self):
        _read("float")
        return float(self._a)

    def __int__(self):
        _read("int")
        return int(self._a)

    def __index__(self):
        _read("index")
        return self._a.__index__()

    def __bool__(self):
        _read("bool")
        return bool(self._a)

    def item(self):
        _read("item")
        return self._a.item()

    def get(self, stream=None):
        _read("get")
        return self._a.copy()

    def __iter__(self):
        raise TypeError("iterating over a device array reads it element by element")

    def __len__(self):
        return len(self._a)

    def __repr__(self):
        return f"cupy_stand_in.ndarray({self._a!r})"

    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    itemsize = property(lambda self: self._a.itemsize)
    nbytes = property(lambda self: self._a.nbytes)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: ndarray(self._a.T))

    def __getitem__(self, index):
        return _wrap(self._a[_unwrap(index)])

    def __setitem__(self, index, value):
        self._a[_unwrap(index)] = _unwrap(value)

    def __getattr__(self, name):  # methods (sum, astype, reshape, copy, ...) run on NumPy, results stay on the device
        attr = getattr(self._a, name)
        if callable(attr):
            return lambda *args, **kwargs: _wrap(attr(*_unwrap(args), **_unwrap(kwargs)))
        return _wrap(attr)


def _binary(name):
    def op(self, other):
        _refuse_host_arrays([other], f"cupy.ndarray.{name}")
        result = getattr(self._a, name)(_unwrap(other))
        return result if result is NotImplemented else _wrap(result)
    return op


def _in_place(name):
    def op(self, other):
        _refuse_host_arrays([other], f"cupy.ndarray.{name}")
        result = getattr(self._a, name)(_unwrap(other))
        if result is NotImplemented:
            return result
        if result is not self._a:
            self._a[...] = result
        return self
    return op


for _name in ("__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
              "__pow__", "__rpow__", "__matmul__", "__rmatmul__", "__gt__", "__lt__", "__ge__", "__le__", "__eq__",
              "__ne__", "__and__", "__rand__", "__or__", "__ror__", "__floordiv__", "__mod__"):
    setattr(ndarray, _name, _binary(_name))
for _name in ("__iadd__", "__isub__", "__imul__", "__itruediv__", "__iand__", "__ior__"):
    setattr(ndarray, _name, _in_place(_name))
ndarray.__neg__ = lambda self: ndarray(np.asarray(-self._a))
ndarray.__invert__ = lambda self: ndarray(np.asarray(~self._a))
ndarray.__abs__ = lambda self: ndarray(np.asarray(abs(self._a)))
ndarray.__module__ = "cupy"  # how scratch_ae recognises a CuPy array without importing CuPy


# ---------------------------------------------------------------------------- the module's functions
def asarray(a, dtype=None, order=None):
    """Host -> device copy (or a device array as is, cast if asked)."""
    if isinstance(a, ndarray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else ndarray(a._a.astype(dtype))
    return ndarray(np.array(a, dtype=dtype, order=order, copy=True))


def array(a, dtype=None, copy=True):
    return ndarray(np.array(_unwrap(a), dtype=dtype, copy=True))


def asnumpy(a, stream=None):
    _read("asnumpy")
    return a._a.copy() if isinstance(a, ndarray) else np.asarray(a)


def _device_function(name, numpy_function):
    def function(*args, **kwargs):
        _refuse_host_arrays(args, f"cupy.{name}")
        result = numpy_function(*_unwrap(args), **_unwrap(kwargs))
        return kwargs["out"] if kwargs.get("out") is not None else _wrap(result)
    function.__name__ = name
    return function


def _numpy_namespace(namespace, prefix):
    def lookup(name):
        if name.startswith("__"):
            raise AttributeError(name)
        obj = getattr(namespace, name)  # AttributeError for what NumPy lacks too
        if callable(obj) and not isinstance(obj, type):
            return _device_function(prefix + name, obj)
        return obj
    return lookup


float16, float32, float64, int32, int64, bool_, dtype = (np.float16, np.float32, np.float64, np.int32, np.int64,
                                                          np.bool_, np.dtype)
linalg = types.ModuleType("cupy.linalg")
linalg.__getattr__ = _numpy_namespace(np.linalg, "linalg.")


class ElementwiseKernel:
    """CuPy's ElementwiseKernel for bodies made of assignments `name = C expression;`."""

    def __init__(self, in_params, out_params, operation, name="kernel", **options):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError(f"invalid kernel name {name!r}")
        self.in_params, self.out_params = self._parse(in_params), self._parse(out_params)
        self.operation, self.name = operation, name

    @staticmethod
    def _parse(params):
        return [tuple(p.split()[-2:]) for p in params.split(",")]  # (type, name)

    def __call__(self, *args):
        n_in = len(self.in_params)
        if len(args) != n_in + len(self.out_params):
            raise TypeError(f"wrong number of arguments for {self.name!r}: {len(args)}")
        inputs, outputs = args[:n_in], args[n_in:]
        types_ = {}
        # As CuPy decides them: the outputs' dtypes first, then the input arrays'; all of one `T` must agree.
        for (type_, name), a in list(zip(self.out_params, outputs)) + list(zip(self.in_params, inputs)):
            if isinstance(a, np.ndarray):
                raise TypeError(f"{self.name}: argument {name} is a numpy.ndarray, not a device array")
            if not isinstance(a, ndarray):
                continue
            expected = types_.setdefault(type_, a.dtype) if len(type_) == 1 else np.dtype(type_)
            if a.dtype != expected:
                raise TypeError(f"Type is mismatched. {name} {a.dtype} {expected} {type_}")
        env = {"sqrt": np.sqrt, "exp": np.exp, "log": np.log}
        for (type_, name), a in zip(self.in_params, inputs):
            dt = types_[type_] if len(type_) == 1 else np.dtype(type_)
            env[name] = a._a.astype(dt) if isinstance(a, ndarray) else np.asarray(a).astype(dt)[()]  # scalars cast to T
        for (type_, name), a in zip(self.out_params, outputs):
            env[name] = a._a.copy()
        body = re.sub(r"//[^\n]*", "", self.operation)
        for statement in filter(None, (s.strip() for s in body.split(";"))):
            target, expression = (part.strip() for part in statement.split("=", 1))
            env[target] = np.asarray(eval(expression, {}, env)).astype(env[target].dtype)  # float op float -> float, as in C
        for (type_, name), a in zip(self.out_params, outputs):
            a._a[...] = env[name]
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


# ---------------------------------------------------------------------------- cuda
class _Stream:
    def synchronize(self):
        _read("synchronize")


class _Device:
    def __init__(self, index=0):
        self.id = index

    def synchronize(self):
        _read("synchronize")


class _Pool:
    def total_bytes(self):
        return 0

    def used_bytes(self):
        return 0

    def free_all_blocks(self):
        pass


cuda = types.SimpleNamespace(
    runtime=types.SimpleNamespace(getDeviceCount=lambda: 1,
                                  getDeviceProperties=lambda index: {"name": b"stand-in GPU (NumPy)"}),
    Device=_Device, get_current_stream=_Stream)


def get_default_memory_pool():
    return _Pool()


def __getattr__(name):  # cupy.zeros, cupy.matmul, ...: NumPy's, on device arrays only
    return _numpy_namespace(np, "")(name)


def install(monkeypatch):
    """Make `import cupy` give this module for one test, with scratch_ae's CuPy caches cleared."""
    from scratch_ae import backend
    from scratch_ae.fast import adam as fast_adam
    monkeypatch.setitem(sys.modules, "cupy", sys.modules[__name__])
    monkeypatch.setattr(backend, "_CUPY", None)
    monkeypatch.setattr(fast_adam, "_CUPY_KERNEL", None)  # the compiled kernel cache, not a switch
    HOST_READS.clear()
