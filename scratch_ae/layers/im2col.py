"""im2col and col2im: a convolution as one matrix product, and its adjoint.

For an input x of shape (B, C, H_in, W_in), a kernel (kH, kW), a stride
(sH, sW) and a zero padding (pH, pW), im2col lays every receptive field out
as one column:

    cols[(c, i, j), (n, p, q)] = x_pad[n, c, p*sH + i, q*sW + j]

with rows ordered (c, i, j) and columns (n, p, q), both row-major, so that
cols has shape (C*kH*kW, B*H_out*W_out) and `W.reshape(C_out, -1) @ cols` is
the convolution.  col2im is the transpose of that linear map: it adds every
column entry back onto the pixel it was copied from.

Both loop over the kH*kW kernel offsets only; each offset is one strided
slice over all images, channels and output pixels at once, so the same code
runs on NumPy and on CuPy (the array module is passed in as `xp`).

Derivation: derivations/convolution.md
"""
import numbers
import os
import threading

import numpy as np

from ..jit import CompiledLoop, numba_unavailable_reason


def pair(value, name, minimum=0):
    """`value` as an (h, w) pair of ints >= minimum; an int means (value, value)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        result = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 \
            and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        result = (int(value[0]), int(value[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair (h, w) of ints, got {value!r}")
    if min(result) < minimum:
        raise ValueError(f"{name} must be >= {minimum} in both dimensions, got {value!r}")
    return result


def conv_output_size(size, kernel, stride, padding):
    """floor((size + 2 padding - kernel) / stride) + 1: how many windows fit (PyTorch's formula, dilation 1).

    Derivation: derivations/convolution.md#conv-output-size
    """
    return (size + 2 * padding - kernel) // stride + 1


def conv_transpose_output_size(size, kernel, stride, padding, output_padding):
    """(size - 1) stride - 2 padding + kernel + output_padding: PyTorch's ConvTranspose2d size (dilation 1).

    Among the sizes whose convolution has `size` windows, output_padding
    (0 <= output_padding < stride) picks the one `output_padding` rows larger
    than the smallest.

    Derivation: derivations/convolution.md#output-padding
    """
    return (size - 1) * stride - 2 * padding + kernel + output_padding


def window(offset, stride, count):
    """The slice of a padded axis that kernel offset `offset` reads for `count` outputs: offset, offset+s, ..."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def im2col(x, kernel_size, stride, padding, xp):
    """x (B, C, H_in, W_in) -> cols (C*kH*kW, B*H_out*W_out), every receptive field as a column.

    kernel_size, stride, padding: (h, w) pairs.  One strided copy per kernel
    offset (i, j): rows (c, i, j) for all c, columns (n, p, q) for all n, p, q.

    Derivation: derivations/convolution.md#conv-im2col
    """
    B, C, H_in, W_in = x.shape
    (kH, kW), (sH, sW), (pH, pW) = kernel_size, stride, padding
    H_out, W_out = conv_output_size(H_in, kH, sH, pH), conv_output_size(W_in, kW, sW, pW)
    if pH or pW:
        x_pad = xp.zeros((B, C, H_in + 2 * pH, W_in + 2 * pW), dtype=x.dtype)
        x_pad[:, :, pH:pH + H_in, pW:pW + W_in] = x
    else:
        x_pad = x
    # Build in the (C, kH, kW, B, H_out, W_out) order that reshapes, without a copy, to (rows, columns).
    cols = xp.empty((C, kH, kW, B, H_out, W_out), dtype=x.dtype)
    for i in range(kH):
        rows = window(i, sH, H_out)
        for j in range(kW):
            # (B, C, H_out, W_out) window of offset (i, j), stored with C first
            cols[:, i, j] = x_pad[:, :, rows, window(j, sW, W_out)].transpose(1, 0, 2, 3)
    return cols.reshape(C * kH * kW, B * H_out * W_out)


def col2im(cols, x_shape, kernel_size, stride, padding, xp):
    """cols (C*kH*kW, B*H_out*W_out) -> (B, C, H_in, W_in): the adjoint of im2col.

    Every entry of cols is added onto the input pixel im2col copied it from;
    pixels under several windows (stride < kernel) collect the sum, padding
    positions are dropped.  For one kernel offset the map (p, q) ->
    (p*sH + i, q*sW + j) is one-to-one, so each offset is a plain strided
    slice-add that never hits a pixel twice; overlaps only happen between
    offsets, which are added one after another.  No scatter (np.add.at) is
    needed, which is what lets the same code run on CuPy.

    Derivation: derivations/convolution.md#col2im
    """
    B, C, H_in, W_in = x_shape
    (kH, kW), (sH, sW), (pH, pW) = kernel_size, stride, padding
    H_out, W_out = conv_output_size(H_in, kH, sH, pH), conv_output_size(W_in, kW, sW, pW)
    if cols.shape != (C * kH * kW, B * H_out * W_out):
        raise ValueError(f"col2im: cols has shape {tuple(cols.shape)}, but an input of shape {tuple(x_shape)} "
                         f"gives ({C * kH * kW}, {B * H_out * W_out})")
    cols6 = cols.reshape(C, kH, kW, B, H_out, W_out)
    x_pad = xp.zeros((B, C, H_in + 2 * pH, W_in + 2 * pW), dtype=cols.dtype)
    for i in range(kH):
        rows = window(i, sH, H_out)
        for j in range(kW):
            x_pad[:, :, rows, window(j, sW, W_out)] += cols6[:, i, j].transpose(1, 0, 2, 3)
    if pH or pW:
        return xp.ascontiguousarray(x_pad[:, :, pH:pH + H_in, pW:pW + W_in])
    return x_pad


# ============================================================================ the channels-last CPU path
# Beside the reference above, never inside it: the layers (conv.py, pool.py) choose this path
# through `fast_path` before their reference code runs, and the reference stays what CuPy,
# other dtypes and KERNEL = "reference" run.  On the CPU the reference's strided copies walk
# rows of W_out (2 to 28) floats, and its products write a (C_out, B*H*W) matrix that one
# more pass turns back into NCHW.  Channels last (NHWC: (B, H, W, C) in memory) the same
# matrices come transposed: a receptive field is kH*kW runs of C contiguous floats, the
# product cols^T W^T writes the (B*H*W, C_out) = NHWC output directly, and the bias adds
# along the contiguous axis.  The layers hand their outputs on as (B, C, H, W) *views* of
# channels-last memory (`nchw_view`): the same shapes and values, only the strides differ,
# so the next layer reads its input channels-last without a copy, and elementwise layers
# in between (ReLU) keep the layout.  With few channels (the data's 1 or 3) a run of C floats
# is too short to pay, and the layers use the reference's channels-first matrices instead
# (`channels_last`).  The loops are compiled by Numba (scratch_ae/jit.py) and do the
# reference's additions in the reference's order, so im2col, col2im, pooling and unpooling
# equal it bit for bit; the products, taken in the other orientation, equal it to rounding.

# "compiled": the layers take this path for NumPy float32/float64 arrays (needs Numba);
# "reference": always the readable code above.  Tests and benchmarks set this.
KERNEL = "reference" if numba_unavailable_reason() else "compiled"

# Channel counts from which im2col/col2im go channels last (below: the reference's matrices).
MIN_CHANNELS_LAST = 8


def fast_path(*arrays):
    """True when the channels-last path may run on `arrays`: KERNEL is "compiled" and all are NumPy
    arrays of one floating dtype (float32 or float64).  CuPy arrays, mixed dtypes -> False."""
    if KERNEL != "compiled":
        return False
    dtype = arrays[0].dtype
    return dtype in (np.float32, np.float64) and all(type(a) is np.ndarray and a.dtype == dtype for a in arrays)


def channels_last(channels):
    """Whether im2col/col2im over `channels` channels run channels last (see MIN_CHANNELS_LAST)."""
    return channels >= MIN_CHANNELS_LAST


def nhwc(x):
    """x (B, C, H, W) as a C-contiguous (B, H, W, C) array: free when x is a channels-last view."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nchw_view(x_nhwc):
    """A (B, H, W, C) array seen as (B, C, H, W), without a copy."""
    return x_nhwc.transpose(0, 3, 1, 2)


def transient(shape, dtype):
    """A scratch array that lives only until the calling function returns, from one buffer per thread.

    Every layer's temporary matrices (a transposed convolution's columns, a convolution's input-
    gradient columns) come from the same buffer, grown to the largest request, so a network holds
    one such matrix instead of one per layer, and none is allocated (and page-faulted) per step.
    A caller must be done with it before anything else asks for a transient array.
    """
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = getattr(_TRANSIENT, "buffer", None)
    if buf is None or buf.size < nbytes:
        buf = _TRANSIENT.buffer = np.empty(nbytes, dtype=np.uint8)
    return buf[:nbytes].view(dtype).reshape(shape)


_TRANSIENT = threading.local()

# The layers run their transient matrices a few images at a time, each piece at most this many
# bytes (and at least one image): the piece a product writes is still in cache when col2im (or
# the next product) reads it, and the transient buffer stays this small.
CHUNK_BYTES = 1 << 20

# Channels-last convolutions (C_in >= MIN_CHANNELS_LAST): False keeps the forward's whole im2col
# matrix for the weight gradient; True keeps only the input and builds the matrix again in the
# backward, a chunk at a time, so that neither pass streams the whole matrix through memory
# (a chunk is still in cache when its products read it).
RECOMPUTE_COLS = True

# The conv layers' products run in groups of whole images, each group's product at most this
# many multiply-adds (layers/conv.py, image_products): OpenBLAS's single-thread limit; 0: never,
# each product over the whole chunk.
PER_IMAGE_MAX_MACS = 4 * 65536


def batch_chunks(batch, bytes_per_image):
    """(first, stop) image ranges covering range(batch), each within CHUNK_BYTES (one image at least)."""
    step = max(1, min(batch, CHUNK_BYTES // max(1, bytes_per_image)))
    return [(n, min(batch, n + step)) for n in range(0, batch, step)]


# Threads the channels-last path's own work runs on: its chunks of images (im2col, products,
# col2im) and the pooling and ReLU loops, split between the calling thread and one helper, which
# the compiled loops (nogil) and BLAS let run at once.
#   "blas" (default): two threads inside `loop_threads_held` (a conv model's training step) while
#       BLAS may use two or more, with BLAS held at one thread for the block; else one.  Read on
#       entering the block, so OMP_NUM_THREADS=1 or threadpoolctl's threadpool_limits(1) keep it on
#       one core.  Why: a chunk's product of a few images is too small for BLAS's own threads to pay
#       for their hand-over, and the chunks are independent (benchmarks/RESULTS.md, 'chunks on two
#       threads').
#   2: always two threads, BLAS left as it is; 1: all on the calling thread.
LOOP_THREADS = "blas"

_HELPERS = {}


def _blas_libraries():
    """threadpoolctl's controllers of the loaded BLAS libraries (NumPy's OpenBLAS, or MKL), or []."""
    if "blas" not in _HELPERS:
        try:
            from threadpoolctl import ThreadpoolController
            _HELPERS["blas"] = ThreadpoolController().select(user_api="blas").lib_controllers
        except Exception:  # threadpoolctl missing or unable to read a library: "blas" means one thread
            _HELPERS["blas"] = []
    return _HELPERS["blas"]


class loop_threads_held:
    """A block (a training step) in which, with LOOP_THREADS = "blas" and BLAS allowed two threads
    or more, split_run uses two threads and every BLAS library is held at one thread, each set
    back to its own count on leaving.  Why for the whole block and not each split: a product BLAS
    runs on its own threads between two splits leaves those threads spinning for a while after
    it, on the cores the split's two threads then need."""

    def __enter__(self):
        self.saved = None
        if LOOP_THREADS == "blas" and not _HELPERS.get("held"):
            counts = [(lib, lib.get_num_threads()) for lib in _blas_libraries()]
            counts = [(lib, n) for lib, n in counts if n]  # a library that cannot say is left alone
            if max((n for _, n in counts), default=1) >= 2:
                self.saved = counts
                for lib, _ in counts:
                    lib.set_num_threads(1)
                _HELPERS["held"] = True
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            _HELPERS["held"] = False
            for lib, n in self.saved:
                lib.set_num_threads(n)


def loop_threads():
    """The threads split_run uses now (see LOOP_THREADS)."""
    if LOOP_THREADS == "blas":
        return 2 if _HELPERS.get("held") else 1
    return int(LOOP_THREADS)


def split_run(fn, ranges):
    """[fn(n0, n1) for (n0, n1) in ranges], the later part of the ranges on a helper thread when
    loop_threads() is 2; results in order, so sums over them are the same whatever the threads."""
    if len(ranges) < 2 or loop_threads() < 2:
        return [fn(n0, n1) for n0, n1 in ranges]
    pool, pid = _HELPERS.get("pool", (None, None))
    if pool is None or pid != os.getpid():  # a forked child has the pool object but not its thread
        from concurrent.futures import ThreadPoolExecutor
        pool = ThreadPoolExecutor(1, thread_name_prefix="scratch-ae-loops")
        _HELPERS["pool"] = (pool, os.getpid())
    half = (len(ranges) + 1) // 2
    later = pool.submit(lambda: [fn(n0, n1) for n0, n1 in ranges[half:]])
    first = [fn(n0, n1) for n0, n1 in ranges[:half]]
    return first + later.result()


def halves(batch):
    """The batch as (0, h), (h, batch) for split_run, or one range for a batch of one."""
    h = (batch + 1) // 2
    return [(0, h), (h, batch)] if batch > 1 else [(0, batch)]


class Scratch:
    """Arrays a layer keeps between calls, one per name, reallocated only when shape or dtype change."""

    def __init__(self):
        self.arrays = {}

    def get(self, name, shape, dtype):
        a = self.arrays.get(name)
        if a is None or a.shape != tuple(shape) or a.dtype != dtype:
            a = self.arrays[name] = np.empty(shape, dtype=dtype)
        return a


def _im2col_nhwc_loop(x, kH, kW, sH, sW, pH, pW, H_out, W_out, cols, ones):
    """cols^T[(n, p, q), (i, j, c)] = x_pad[n, p*sH + i, q*sW + j, c] (0 in the padding); if ones,
    a last column of ones after the kH*kW*C columns."""
    B, H_in, W_in, C = x.shape
    K = kH * kW * C
    for n in range(B):
        for p in range(H_out):
            for q in range(W_out):
                row = cols[(n * H_out + p) * W_out + q]
                if ones:
                    row[K] = 1
                for i in range(kH):
                    u = p * sH + i - pH
                    for j in range(kW):
                        v = q * sW + j - pW
                        dst = row[(i * kW + j) * C:(i * kW + j + 1) * C]
                        if u < 0 or u >= H_in or v < 0 or v >= W_in:
                            for c in range(C):
                                dst[c] = 0
                        else:
                            src = x[n, u, v]
                            for c in range(C):
                                dst[c] = src[c]


def _col2im_nhwc_loop(cols, kH, kW, sH, sW, pH, pW, H_out, W_out, b, with_bias, out):
    """out (B, H_in, W_in, C) = the adjoint of _im2col_nhwc_loop applied to cols^T, + b[c] if with_bias.

    Image by image: zero it, then add the offsets (i, j) one after another in row-major order,
    each a one-to-one map of the windows onto pixels, as `col2im` does; the bias comes last.
    """
    B, H_in, W_in, C = out.shape
    for n in range(B):
        img = out[n]
        for u in range(H_in):
            for v in range(W_in):
                for c in range(C):
                    img[u, v, c] = 0
        for i in range(kH):
            for j in range(kW):
                for p in range(H_out):
                    u = p * sH + i - pH
                    if u < 0 or u >= H_in:
                        continue
                    for q in range(W_out):
                        v = q * sW + j - pW
                        if v < 0 or v >= W_in:
                            continue
                        src = cols[(n * H_out + p) * W_out + q, (i * kW + j) * C:(i * kW + j + 1) * C]
                        dst = img[u, v]
                        for c in range(C):
                            dst[c] += src[c]
        if with_bias:
            for u in range(H_in):
                for v in range(W_in):
                    for c in range(C):
                        img[u, v, c] += b[c]


IM2COL_NHWC_LOOP = CompiledLoop(_im2col_nhwc_loop)
COL2IM_NHWC_LOOP = CompiledLoop(_col2im_nhwc_loop)


def im2col_nhwc(x, kernel_size, stride, padding, out=None, ones=False):
    """x (B, H_in, W_in, C) channels-last -> cols^T (B*H_out*W_out, kH*kW*C), rows (n, p, q), columns (i, j, c).

    The transpose of `im2col`'s matrix with its rows reordered from (c, i, j) to (i, j, c):
    cols^T[(n, p, q), (i, j, c)] = x_pad[n, p*sH + i, q*sW + j, c], into `out` if given.
    ones=True: one more column, of ones (a convolution's bias as one more kernel column).
    """
    B, H_in, W_in, C = x.shape
    (kH, kW), (sH, sW), (pH, pW) = kernel_size, stride, padding
    H_out, W_out = conv_output_size(H_in, kH, sH, pH), conv_output_size(W_in, kW, sW, pW)
    shape = (B * H_out * W_out, kH * kW * C + (1 if ones else 0))
    if out is None:
        out = np.empty(shape, dtype=x.dtype)
    elif out.shape != shape or not out.flags.c_contiguous:
        raise ValueError(f"im2col_nhwc: out must be a C-contiguous {shape} array, got {out.shape}")
    IM2COL_NHWC_LOOP(np.ascontiguousarray(x), kH, kW, sH, sW, pH, pW, H_out, W_out, out, ones)
    return out


def col2im_nhwc(cols, x_shape, kernel_size, stride, padding, bias=None, out=None):
    """cols^T (B*H_out*W_out, kH*kW*C) -> a channels-last (B, H_in, W_in, C) array, + bias if given.

    x_shape is the channels-last (B, H_in, W_in, C); the result goes into `out` (C-contiguous,
    that shape) if given, else into a fresh array.  Equal, bit for bit, to `col2im` of the
    reordered transpose followed by `+= bias` (the transposed convolution's order).
    """
    B, H_in, W_in, C = x_shape
    (kH, kW), (sH, sW), (pH, pW) = kernel_size, stride, padding
    H_out, W_out = conv_output_size(H_in, kH, sH, pH), conv_output_size(W_in, kW, sW, pW)
    if cols.shape != (B * H_out * W_out, kH * kW * C):
        raise ValueError(f"col2im_nhwc: cols has shape {tuple(cols.shape)}, but an input of shape "
                         f"{tuple(x_shape)} gives ({B * H_out * W_out}, {kH * kW * C})")
    if out is None:
        out = np.empty((B, H_in, W_in, C), dtype=cols.dtype)
    elif out.shape != (B, H_in, W_in, C) or not out.flags.c_contiguous:
        raise ValueError(f"col2im_nhwc: out must be a C-contiguous {(B, H_in, W_in, C)} array, got {out.shape}")
    b = np.zeros(C, dtype=cols.dtype) if bias is None else bias
    COL2IM_NHWC_LOOP(np.ascontiguousarray(cols), kH, kW, sH, sW, pH, pW, H_out, W_out, b, bias is not None, out)
    return out
