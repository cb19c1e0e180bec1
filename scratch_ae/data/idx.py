"""Read and write the IDX format of MNIST and Fashion-MNIST.

An IDX file is: two zero bytes, a type code byte, a byte ``ndim``; then
``ndim`` big-endian uint32 dimensions; then the values, big-endian, row-major.
A file may be gzip-compressed as a whole; gzip is recognised by its magic
bytes ``1f 8b``, never by the file name.
"""
import gzip
import os
import tempfile
import zlib
from pathlib import Path

import numpy as np

from .errors import DataError

# type code -> big-endian dtype
IDX_TYPES = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
GZIP_MAGIC = b"\x1f\x8b"
MAX_NDIM = 4


def _raw_bytes(path_or_bytes):
    """Return (bytes as stored, a name for error messages)."""
    if isinstance(path_or_bytes, (bytes, bytearray, memoryview)):
        return bytes(path_or_bytes), "<bytes>"
    if not isinstance(path_or_bytes, (str, os.PathLike)):
        raise DataError("read_idx: path_or_bytes must be a path or bytes, "
                        f"got {type(path_or_bytes).__name__}")
    path = Path(path_or_bytes)
    try:
        return path.read_bytes(), str(path)
    except OSError as exc:
        raise DataError(f"cannot read IDX file {path}: {exc.strerror or exc}") from None


def _gunzip(data, name):
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise DataError(f"corrupt or truncated gzip file {name}: {exc}") from None


def read_idx(path_or_bytes):
    """Read an IDX array from a file path or from the file's bytes.

    Returns a writable native-endian array whose shape is the file's
    dimensions, e.g. (10000, 28, 28) uint8 for ``t10k-images-idx3-ubyte``.
    Raises DataError (naming the file) for a bad header, an unsupported type,
    a truncated file, trailing bytes, or a corrupt gzip stream.
    """
    data, name = _raw_bytes(path_or_bytes)
    if data[:2] == GZIP_MAGIC:
        data = _gunzip(data, name)
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise DataError(f"{name} is not an IDX file: expected the magic bytes 00 00 <type> <ndim>, "
                        f"got {data[:4].hex(' ') or 'an empty file'}")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DataError(f"{name}: unsupported IDX type code 0x{code:02X}; expected one of: {known}")
    if not 1 <= ndim <= MAX_NDIM:
        raise DataError(f"{name}: IDX ndim must be in 1..{MAX_NDIM}, got {ndim}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name} is truncated: header needs {header} bytes, got {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, offset=4))
    dtype = IDX_TYPES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise DataError(f"{name} is truncated: expected {expected} bytes for shape {shape}, "
                        f"got {len(data)}")
    if len(data) > expected:
        raise DataError(f"{name} has {len(data) - expected} trailing bytes: expected {expected} "
                        f"bytes for shape {shape}, got {len(data)}")
    flat = np.frombuffer(data, dtype, offset=header)
    return flat.astype(dtype.newbyteorder("="), copy=True).reshape(shape)


def _code_for(dtype):
    for code, idx_dtype in IDX_TYPES.items():
        if np.dtype(dtype) == idx_dtype.newbyteorder("="):
            return code
    names = ", ".join(str(d.newbyteorder("=")) for d in IDX_TYPES.values())
    raise DataError(f"write_idx: array dtype {np.dtype(dtype)} has no IDX type; expected one of: {names}")


def write_idx(path, array, compress=None):
    """Write `array` (1 to 4 dims, dtype uint8/int8/int16/int32/float32/float64)
    as an IDX file at `path`, atomically (a temporary file, then a rename).

    compress : gzip the file; by default when `path` ends in ".gz".
    Returns the Path written.
    """
    array = np.asarray(array)
    code = _code_for(array.dtype)
    if not 1 <= array.ndim <= MAX_NDIM:
        raise DataError(f"write_idx: array must have 1..{MAX_NDIM} dimensions, got shape {array.shape}")
    path = Path(path)
    if compress is None:
        compress = path.name.endswith(".gz")
    body = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
            + np.ascontiguousarray(array, IDX_TYPES[code]).tobytes())
    if compress:
        body = gzip.compress(body, mtime=0)
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part",
                                      delete=False)
    try:
        with tmp:
            tmp.write(body)
        os.replace(tmp.name, path)
    finally:
        if os.path.exists(tmp.name):
            os.remove(tmp.name)
    return path
