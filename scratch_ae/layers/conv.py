"""Convolution and transposed convolution (NCHW, PyTorch's layouts and sizes), by im2col.

Conv2d is one matrix product on the im2col matrix; ConvTranspose2d is the
adjoint of a Conv2d, so its forward is a matrix product then col2im and its
backward is im2col then products: the two layers are the same pieces read
in opposite directions.

On the CPU (NumPy float32/float64, Numba installed) both layers run a
channels-last path beside the reference, chosen at the top of forward
(layers/im2col.py, KERNEL): the same products transposed, compiled
im2col/col2im loops, outputs handed on as (B, C, H, W) views of channels-last
memory.  Same shapes and values (to rounding; tests/test_conv_fast_paths.py),
other strides.  A backward always follows the path its forward took.

Derivation: derivations/convolution.md
"""
import math

import numpy as np

from . import im2col as im2col_module
from .base import Layer
from ..optimizers.base import flush_tiny_values
from .im2col import (Scratch, batch_chunks, channels_last, col2im, col2im_nhwc, conv_output_size,
                     conv_transpose_output_size, fast_path, im2col, im2col_nhwc, nchw_view, nhwc, pair, split_run,
                     transient)

INITS = ("pytorch", "he")


def init_conv_weights(shape, n_bias, fan_in, init, rng, dtype=np.float32):
    """Draw a kernel of `shape` and a bias of length n_bias on the host with `rng`.

    "pytorch": PyTorch's default, W and b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    (kaiming_uniform_ with a = sqrt(5) for W, and the same bound for b);
    "he": W ~ N(0, 2/fan_in) and b = 0, for a layer followed by ReLU.
    The caller passes the fan_in each scheme uses (see the derivation).

    Derivation: derivations/convolution.md#conv-initialisation
    """
    if init == "pytorch":
        bound = 1.0 / math.sqrt(fan_in)
        W = rng.uniform(-bound, bound, shape)
        b = rng.uniform(-bound, bound, n_bias)
    elif init == "he":
        W = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        b = np.zeros(n_bias)
    else:
        raise ValueError(f"unknown init {init!r}; expected one of: {', '.join(INITS)}")
    return W.astype(dtype), b.astype(dtype)


# ---------------------------------------------------------------------------- products image by image
# The channels-last path's products, all rows (n, p, q) of some images against one small matrix,
# run as a stack of products of a few whole images each, as many images as keep one product
# within im2col.PER_IMAGE_MAX_MACS multiply-adds: NumPy's stacked matmul calls BLAS once per
# group from C, and OpenBLAS runs a product that small on the calling thread (its
# GEMM_MULTITHREAD_THRESHOLD: 4 x 65536 multiply-adds) with kernels suited to it, where the whole
# product would wake its thread pool and hand over work twice per call; for these layers that
# hand-over costs more than the second core gains, and on a busy machine a woken thread can wait
# a scheduler slice for a core.  Each group's product is a sub-matrix of the whole one (the same
# terms; a weight gradient adds the groups' sums in order).  Images left over after the last
# whole group go in one more product.
def _image_groups(images, rows, inner, cols):
    """(number of groups, rows the stacked groups cover), or None for one whole product."""
    limit = im2col_module.PER_IMAGE_MAX_MACS
    if images < 2 or rows % images or limit <= 0:
        return None
    r = rows // images
    per_group = limit // max(1, r * inner * cols)
    if per_group < 1 or per_group >= images:
        return None
    n_groups = images // per_group
    return n_groups, n_groups * per_group * r


def image_products(a, b, images, out):
    """out = a @ b for a (images r, k) with rows grouped by image, b (k, n), out C-contiguous."""
    groups = _image_groups(images, a.shape[0], a.shape[1], b.shape[1]) if out.flags.c_contiguous else None
    if groups is None:
        return np.matmul(a, b, out=out)
    n_groups, full = groups
    np.matmul(a[:full].reshape(n_groups, -1, a.shape[1]), b, out=out[:full].reshape(n_groups, -1, b.shape[1]))
    if full < a.shape[0]:
        np.matmul(a[full:], b, out=out[full:])
    return out


def image_products_t(w, a, images):
    """w @ a^T, (m, images r), for w (m, k) and a (images r, k) with rows grouped by image."""
    out = np.empty((w.shape[0], a.shape[0]), dtype=np.result_type(w, a))
    groups = _image_groups(images, a.shape[0], a.shape[1], w.shape[0])
    if groups is None:
        return np.matmul(w, a.T, out=out)
    n_groups, full = groups
    np.matmul(w, a[:full].reshape(n_groups, -1, a.shape[1]).transpose(0, 2, 1),
              out=out[:, :full].reshape(w.shape[0], n_groups, -1).transpose(1, 0, 2))
    if full < a.shape[0]:
        np.matmul(w, a[full:].T, out=out[:, full:])
    return out


def summed_image_products(a, b, images):
    """a^T b, (p, q), for a (images r, p) and b (images r, q) with rows grouped by image: the groups'
    own products, then their sum."""
    groups = _image_groups(images, a.shape[0], a.shape[1], b.shape[1])
    if groups is None:
        return np.matmul(a.T, b)
    n_groups, full = groups
    per = np.matmul(a[:full].reshape(n_groups, -1, a.shape[1]).transpose(0, 2, 1),
                    b[:full].reshape(n_groups, -1, b.shape[1]))
    total = per.sum(axis=0)
    if full < a.shape[0]:
        total += np.matmul(a[full:].T, b[full:])
    return total


def _positive_int(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


class _ConvBase(Layer):
    """What Conv2d and ConvTranspose2d share: hyper-parameters, weights, gradient buffers, checks."""

    def _setup(self, in_channels, out_channels, kernel_size, stride, padding, init, rng, xp, dtype):
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", minimum=1)
        self.stride = pair(stride, "stride", minimum=1)
        self.padding = pair(padding, "padding", minimum=0)
        self.xp = xp
        rng = np.random.default_rng(0) if rng is None else rng
        W, b = init_conv_weights(self.weight_shape, self.out_channels, self._fan_in(init), init, rng, dtype)
        self.params = {"W": xp.asarray(W), "b": xp.asarray(b)}
        self.grads = {"W": xp.zeros_like(self.params["W"]), "b": xp.zeros_like(self.params["b"])}
        self.training = True

    def _weights(self):
        """The current params["W"], params["b"] (read at every call), checked against the layer's shape."""
        W, b = self.params["W"], self.params["b"]
        if tuple(W.shape) != self.weight_shape or tuple(b.shape) != (self.out_channels,):
            raise ValueError(f"{self!r}: params['W'] has shape {tuple(W.shape)} and params['b'] "
                             f"{tuple(b.shape)}; expected {self.weight_shape} and ({self.out_channels},)")
        return W, b

    def _grad(self, name):
        """The gradient buffer for params[name], reallocated if a new parameter changed its dtype."""
        param, grad = self.params[name], self.grads[name]
        if grad.shape != param.shape or grad.dtype != param.dtype:
            grad = self.grads[name] = self.xp.zeros_like(param)
        return grad

    def _check_input(self, x, channels, what):
        if x.ndim != 4 or x.shape[1] != channels:
            raise ValueError(f"{self!r} expects {what} of shape (B, {channels}, H, W), got {tuple(x.shape)}")

    def _config(self, type_):
        return {"type": type_, "in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": list(self.kernel_size), "stride": list(self.stride), "padding": list(self.padding)}

    def _repr_args(self):
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}")


class Conv2d(_ConvBase):
    """out = conv(x, W) + b, PyTorch's Conv2d (a cross-correlation; dilation 1, groups 1).

    out[n, o, p, q] = b[o] + sum_{c, i, j} W[o, c, i, j] x_pad[n, c, p*sH + i, q*sW + j]

    Shapes: x (B, C_in, H_in, W_in), W (C_out, C_in, kH, kW), b (C_out,),
    out (B, C_out, H_out, W_out) with H_out = floor((H_in + 2 pH - kH) / sH) + 1
    (and the same for widths).  kernel_size, stride, padding: an int or an (h, w) pair.

    Initialisation (on the host, by the seeded numpy Generator `rng`; None ->
    default_rng(0)): init="pytorch" (default) is PyTorch's own default, W and b
    ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = C_in kH kW; init="he"
    is He normal, W ~ N(0, 2/fan_in), b = 0.  The arrays are then copied to
    `xp` (numpy or cupy) in `dtype`.

    Cache: the im2col matrix of x, (C_in kH kW, B H_out W_out), which the
    weight gradient needs, and the input's shape.  need_input_grad=False (a
    first layer, whose input is the data) skips the input gradient.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, *, init="pytorch", rng=None,
                 xp=np, dtype=np.float32, need_input_grad=True):
        self._setup(in_channels, out_channels, kernel_size, stride, padding, init, rng, xp, dtype)
        self.need_input_grad = need_input_grad
        self.cols = None
        self.x_shape = None
        self._fast = None  # the channels-last forward's cache (see _forward_fast); None after a reference forward
        self._scratch = Scratch()

    @property
    def weight_shape(self):
        return (self.out_channels, self.in_channels) + self.kernel_size

    def _fan_in(self, init):
        # one output pixel sums C_in kH kW products, and that is also PyTorch's fan_in
        return self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    def output_shape(self, x_shape):
        """(B, C_out, H_out, W_out) for an input of shape (B, C_in, H_in, W_in)."""
        B, _, H_in, W_in = x_shape
        (kH, kW), (sH, sW), (pH, pW) = self.kernel_size, self.stride, self.padding
        return (B, self.out_channels, conv_output_size(H_in, kH, sH, pH), conv_output_size(W_in, kW, sW, pW))

    def forward(self, x):
        """x (B, C_in, H_in, W_in) -> out (B, C_out, H_out, W_out): Z = W_mat cols, one matrix product.

        Derivation: derivations/convolution.md#conv-im2col
        """
        xp = self.xp
        W, b = self._weights()
        self._check_input(x, self.in_channels, "an input")
        B, C_out, H_out, W_out = self.output_shape(x.shape)
        if H_out < 1 or W_out < 1:
            raise ValueError(f"{self!r}: input {tuple(x.shape)} is smaller than the kernel (output {H_out}x{W_out})")
        if fast_path(x, W, b):
            return self._forward_fast(x, W, b)
        self._fast = None
        cols = im2col(x, self.kernel_size, self.stride, self.padding, xp)  # (C_in kH kW, B H_out W_out)
        Z = W.reshape(C_out, -1) @ cols                                  # (C_out, B H_out W_out)
        self.cols, self.x_shape = cols, x.shape
        # Z's columns run (n, p, q): one pass both moves C_out behind B (NCHW) and adds the bias.
        out = xp.empty((B, C_out, H_out, W_out), dtype=Z.dtype)
        xp.add(Z.reshape(C_out, B, H_out, W_out).transpose(1, 0, 2, 3), b.reshape(1, C_out, 1, 1), out=out)
        return out

    def backward(self, grad_out):
        """grad_out = dL/d(out), (B, C_out, H_out, W_out). Returns dL/dx, (B, C_in, H_in, W_in), or None.

        With G_mat = grad_out as (C_out, B H_out W_out): grad_W = G_mat cols^T
        (reshaped to W's shape), grad_b = row sums of G_mat, and
        dL/dx = col2im(W_mat^T G_mat).

        Derivation: derivations/convolution.md#conv-backward
        """
        xp = self.xp
        W, _ = self._weights()
        if self._fast is not None:  # the forward ran channels last: so does its backward
            return self._backward_fast(grad_out, W)
        C_out = self.out_channels
        G_mat = grad_out.transpose(1, 0, 2, 3).reshape(C_out, -1)  # (C_out, B H_out W_out), columns (n, p, q)
        xp.matmul(G_mat, self.cols.T, out=self._grad("W").reshape(C_out, -1))
        xp.sum(G_mat, axis=1, out=self._grad("b"))
        if not self.need_input_grad:
            return None
        d_cols = W.reshape(C_out, -1).T @ G_mat                     # (C_in kH kW, B H_out W_out)
        return col2im(d_cols, self.x_shape, self.kernel_size, self.stride, self.padding, xp)

    # ------------------------------------------------------------------ the channels-last CPU path
    # Chosen in forward (im2col.fast_path: NumPy float arrays, Numba installed), beside the
    # reference above; the same products transposed, so the output comes channels last
    # (a (B, C, H, W) view of NHWC memory).  With C_in >= MIN_CHANNELS_LAST the im2col
    # matrix is im2col_nhwc's cols^T, columns (i, j, c), and the kernel is read in that order,
    # W_r = W.transpose(0, 2, 3, 1) as (C_out, kH kW C_in); with fewer channels it is the
    # reference's cols, transposed, and W_r = W_mat.  Either matrix gets one more column of
    # ones, and the kernel the bias as one more column, [W_r | b]: the product then adds the
    # bias, and the weight-gradient product's last column, G^T 1, is grad_b; neither needs
    # a pass of its own over the (B H_out W_out, C_out) output or its gradient.  Channels last
    # with im2col.RECOMPUTE_COLS, the matrix is never whole: the forward builds and multiplies it a
    # chunk of images at a time and keeps only x; the backward builds each chunk again.
    def _forward_fast(self, x, W, b):
        B, C_out, H_out, W_out = self.output_shape(x.shape)
        last = channels_last(self.in_channels)
        n, K = B * H_out * W_out, W[0].size
        if last and im2col_module.RECOMPUTE_COLS:
            return self._forward_recompute(x, W, b)
        if last:
            cols_t = im2col_nhwc(nhwc(x), self.kernel_size, self.stride, self.padding,
                                 out=self._scratch.get("cols_t", (n, K + 1), x.dtype), ones=True)
            W_r = W.transpose(0, 2, 3, 1).reshape(C_out, K)
        else:
            cols = self._scratch.get("cols", (K + 1, n), x.dtype)
            cols[:K] = im2col(x, self.kernel_size, self.stride, self.padding, np)
            cols[K] = 1
            cols_t = cols.T
            W_r = W.reshape(C_out, K)
        out = np.empty((B, H_out, W_out, C_out), dtype=x.dtype)
        image_products(cols_t, np.concatenate([W_r, b[:, None]], axis=1).T, B, out=out.reshape(n, C_out))  # NHWC
        self.cols, self.x_shape, self._fast = None, x.shape, (cols_t, last)
        return nchw_view(out)

    def _backward_fast(self, grad_out, W):
        cols_t, last = self._fast
        C_out = self.out_channels
        if last == "recompute":  # cols_t is the kept copy of x, channels last
            return self._backward_recompute(grad_out, W, cols_t)
        G = nhwc(grad_out).reshape(-1, C_out)    # (B H_out W_out, C_out)
        B, C_in, H_in, W_in = self.x_shape
        (kH, kW), K = self.kernel_size, W[0].size
        grad_Wb = summed_image_products(G, cols_t, B)  # G^T cols_t, (C_out, K + 1): [grad_W_r | grad_b]
        if last:
            self._grad("W")[...] = grad_Wb[:, :K].reshape(C_out, kH, kW, C_in).transpose(0, 3, 1, 2)
        else:
            self._grad("W").reshape(C_out, K)[...] = grad_Wb[:, :K]
        self._grad("b")[...] = grad_Wb[:, K]
        if not self.need_input_grad:
            return None
        if last:  # d_cols^T = G W_r, then col2im, a few images at a time (im2col.batch_chunks)
            W_r = W.transpose(0, 2, 3, 1).reshape(C_out, K)
            dx = np.empty((B, H_in, W_in, C_in), dtype=G.dtype)
            rows = G.shape[0] // B
            for n0, n1 in batch_chunks(B, rows * K * G.dtype.itemsize):
                d_cols_t = image_products(G[n0 * rows:n1 * rows], W_r, n1 - n0,
                                          out=transient(((n1 - n0) * rows, K), G.dtype))
                col2im_nhwc(d_cols_t, (n1 - n0, H_in, W_in, C_in), self.kernel_size, self.stride, self.padding,
                            out=dx[n0:n1])
                flush_tiny_values(dx[n0:n1])  # while in cache; why: ConvTranspose2d._backward_fast
            return nchw_view(dx)
        d_cols = np.matmul(W.reshape(C_out, K).T, G.T)
        dx = col2im(d_cols, self.x_shape, self.kernel_size, self.stride, self.padding, np)
        flush_tiny_values(dx)
        return dx

    # With im2col.RECOMPUTE_COLS (channels last only: with few channels the reference's im2col costs
    # more to build again than its small matrix costs to keep): the same products a chunk of images
    # at a time, keeping only a copy of x (the caller may reuse its input's memory); [cols | 1] is
    # built again in the backward.
    def _forward_recompute(self, x, W, b):
        B, C_out, H_out, W_out = self.output_shape(x.shape)
        K, rows = W[0].size, H_out * W_out
        x4 = self._scratch.get("x", (B, x.shape[2], x.shape[3], x.shape[1]), x.dtype)
        np.copyto(x4, x.transpose(0, 2, 3, 1))
        Wb = np.concatenate([W.transpose(0, 2, 3, 1).reshape(C_out, K), b[:, None]], axis=1).T  # (K + 1, C_out)
        out = np.empty((B, H_out, W_out, C_out), dtype=x.dtype)

        def chunk(n0, n1):
            m = (n1 - n0) * rows
            cols_t = im2col_nhwc(x4[n0:n1], self.kernel_size, self.stride, self.padding,
                                 out=transient((m, K + 1), x.dtype), ones=True)
            image_products(cols_t, Wb, n1 - n0, out=out[n0:n1].reshape(m, C_out))
        split_run(chunk, batch_chunks(B, rows * (K + 1) * x.dtype.itemsize))
        self.cols, self.x_shape, self._fast = None, x.shape, (x4, "recompute")
        return nchw_view(out)

    def _backward_recompute(self, grad_out, W, x4):
        """Per chunk of images: [cols | 1] again, [grad_W_r | grad_b] += G^T [cols | 1], then d_cols^T = G W_r
        and col2im."""
        C_out = self.out_channels
        G = nhwc(grad_out).reshape(-1, C_out)
        B, H_in, W_in, C_in = x4.shape
        K, rows = W[0].size, G.shape[0] // B
        W_r = W.transpose(0, 2, 3, 1).reshape(C_out, K)
        dx = np.empty((B, H_in, W_in, C_in), dtype=G.dtype) if self.need_input_grad else None

        def chunk(n0, n1):
            m = (n1 - n0) * rows
            buf = transient((m * (2 * K + 1),), G.dtype)  # the chunk's cols and d_cols, one buffer
            cols_t = im2col_nhwc(x4[n0:n1], self.kernel_size, self.stride, self.padding,
                                 out=buf[:m * (K + 1)].reshape(m, K + 1), ones=True)
            G_c = G[n0 * rows:n1 * rows]
            part = summed_image_products(G_c, cols_t, n1 - n0)
            if dx is not None:
                d_cols_t = image_products(G_c, W_r, n1 - n0, out=buf[m * (K + 1):].reshape(m, K))
                col2im_nhwc(d_cols_t, (n1 - n0, H_in, W_in, C_in), self.kernel_size, self.stride, self.padding,
                            out=dx[n0:n1])
                flush_tiny_values(dx[n0:n1])
            return part
        parts = split_run(chunk, batch_chunks(B, rows * (2 * K + 1) * G.dtype.itemsize))
        grad_Wb = parts[0]
        for part in parts[1:]:
            grad_Wb += part
        self._grad("W")[...] = grad_Wb[:, :K].reshape(C_out, *self.kernel_size, C_in).transpose(0, 3, 1, 2)
        self._grad("b")[...] = grad_Wb[:, K]
        return None if dx is None else nchw_view(dx)

    def config(self):
        return self._config("conv2d")

    def __repr__(self):
        return f"Conv2d({self._repr_args()})"


class ConvTranspose2d(_ConvBase):
    """out = conv_transpose(y, W) + b, PyTorch's ConvTranspose2d (dilation 1, groups 1).

    The adjoint of the Conv2d from C_out to C_in channels with the same W: each
    input pixel adds its kernel, scaled, onto the output at stride s:
    out[n, o, u, v] = b[o] + sum over c, (p, i), (q, j) with p*sH + i - pH = u and
    q*sW + j - pW = v of y[n, c, p, q] W[c, o, i, j].

    Shapes: y (B, C_in, H_in, W_in), W (C_in, C_out, kH, kW), b (C_out,),
    out (B, C_out, H_out, W_out) with
    H_out = (H_in - 1) sH - 2 pH + kH + output_padding_h (and the same for widths).
    output_padding (< stride in each dimension) picks among the output sizes
    that a stride-s convolution maps back to H_in.

    Initialisation (host, seeded `rng`; None -> default_rng(0)):
    init="pytorch" (default) is PyTorch's, W and b ~ U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) with PyTorch's fan_in = C_out kH kW (W's second dimension);
    init="he" is He normal with the number of terms one output pixel sums,
    fan_in = C_in kH kW / (sH sW), and b = 0.

    Cache: y as the matrix Y_mat (C_in, B H_in W_in), which the weight
    gradient needs, and y's shape.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, output_padding=0, *,
                 init="pytorch", rng=None, xp=np, dtype=np.float32):
        self.output_padding = pair(output_padding, "output_padding", minimum=0)
        stride_pair = pair(stride, "stride", minimum=1)
        if any(a >= s for a, s in zip(self.output_padding, stride_pair)):
            raise ValueError(f"output_padding {output_padding!r} must be smaller than the stride {stride!r} "
                             f"in each dimension")
        self._setup(in_channels, out_channels, kernel_size, stride, padding, init, rng, xp, dtype)
        self.Y_mat = None
        self.y_shape = None
        self._fast = None  # the channels-last forward's cache (see _forward_fast); None after a reference forward

    @property
    def weight_shape(self):
        return (self.in_channels, self.out_channels) + self.kernel_size

    def _fan_in(self, init):
        (kH, kW), (sH, sW) = self.kernel_size, self.stride
        if init == "pytorch":
            return self.out_channels * kH * kW  # PyTorch reads fan_in off W's second dimension, C_out
        # an output pixel sums, on average, C_in (kH / sH) (kW / sW) products: the He variance wants that count
        return self.in_channels * kH * kW / (sH * sW)

    def output_shape(self, y_shape):
        """(B, C_out, H_out, W_out) for an input of shape (B, C_in, H_in, W_in)."""
        B, _, H_in, W_in = y_shape
        (kH, kW), (sH, sW), (pH, pW), (aH, aW) = self.kernel_size, self.stride, self.padding, self.output_padding
        return (B, self.out_channels, conv_transpose_output_size(H_in, kH, sH, pH, aH),
                conv_transpose_output_size(W_in, kW, sW, pW, aW))

    def forward(self, y):
        """y (B, C_in, H_in, W_in) -> out (B, C_out, H_out, W_out): cols = W_mat^T Y_mat, then col2im.

        Derivation: derivations/convolution.md#conv-transpose
        """
        xp = self.xp
        W, b = self._weights()
        self._check_input(y, self.in_channels, "an input")
        out_shape = self.output_shape(y.shape)
        if out_shape[2] < 1 or out_shape[3] < 1:
            raise ValueError(f"{self!r}: input {tuple(y.shape)} gives an empty output {out_shape}")
        if fast_path(y, W, b):
            return self._forward_fast(y, W, b, out_shape)
        self._fast = None
        C_in = self.in_channels
        Y_mat = y.transpose(1, 0, 2, 3).reshape(C_in, -1)   # (C_in, B H_in W_in), columns (n, p, q)
        cols = W.reshape(C_in, -1).T @ Y_mat                # (C_out kH kW, B H_in W_in)
        out = col2im(cols, out_shape, self.kernel_size, self.stride, self.padding, xp)
        out += b.reshape(1, self.out_channels, 1, 1)
        self.Y_mat, self.y_shape = Y_mat, y.shape
        return out

    def backward(self, grad_out):
        """grad_out = dL/d(out), (B, C_out, H_out, W_out). Returns dL/dy, (B, C_in, H_in, W_in).

        G_cols = im2col(grad_out), (C_out kH kW, B H_in W_in); grad_W = Y_mat G_cols^T
        (reshaped to W's shape), grad_b = grad_out summed over n, u, v, and
        dL/dy = W_mat G_cols: the Conv2d forward of grad_out with the same W.

        Derivation: derivations/convolution.md#conv-transpose
        """
        xp = self.xp
        W, _ = self._weights()
        if self._fast is not None:  # the forward ran channels last: so does its backward
            return self._backward_fast(grad_out, W)
        C_in = self.in_channels
        G_cols = im2col(grad_out, self.kernel_size, self.stride, self.padding, xp)  # (C_out kH kW, B H_in W_in)
        xp.matmul(self.Y_mat, G_cols.T, out=self._grad("W").reshape(C_in, -1))
        xp.sum(grad_out, axis=(0, 2, 3), out=self._grad("b"))
        dY = W.reshape(C_in, -1) @ G_cols                                          # (C_in, B H_in W_in)
        B, _, H_in, W_in = self.y_shape
        return xp.ascontiguousarray(dY.reshape(C_in, B, H_in, W_in).transpose(1, 0, 2, 3))

    # ------------------------------------------------------------------ the channels-last CPU path
    # Chosen in forward (im2col.fast_path), beside the reference above: the products
    # transposed, Y = y channels last as (B H_in W_in, C_in).  With C_out >= MIN_CHANNELS_LAST
    # the columns are im2col_nhwc's, (i, j, o), W_r = W.transpose(0, 2, 3, 1) as
    # (C_in, kH kW C_out), and the output comes channels last; with fewer output channels
    # the columns are the reference's, W_r = W_mat, and the output NCHW.
    def _forward_fast(self, y, W, b, out_shape):
        C_in, C_out = self.in_channels, self.out_channels
        B, _, H_out, W_out = out_shape
        Y = nhwc(y).reshape(-1, C_in)
        last = channels_last(C_out)
        if last:  # cols^T = Y W_r, then col2im + b, a few images at a time (im2col.batch_chunks)
            W_r = W.transpose(0, 2, 3, 1).reshape(C_in, -1)
            K, rows = W_r.shape[1], Y.shape[0] // B
            out = np.empty((B, H_out, W_out, C_out), dtype=Y.dtype)

            def chunk(n0, n1):
                cols_t = image_products(Y[n0 * rows:n1 * rows], W_r, n1 - n0,
                                        out=transient(((n1 - n0) * rows, K), Y.dtype))
                col2im_nhwc(cols_t, (n1 - n0, H_out, W_out, C_out), self.kernel_size, self.stride, self.padding,
                            bias=b, out=out[n0:n1])
            split_run(chunk, batch_chunks(B, rows * K * Y.dtype.itemsize))
            out = nchw_view(out)
        else:
            cols = image_products_t(W.reshape(C_in, -1).T, Y, B)  # the reference's (C_out kH kW, B H_in W_in)
            out = col2im(cols, out_shape, self.kernel_size, self.stride, self.padding, np)
            out += b.reshape(1, C_out, 1, 1)
        self.Y_mat, self.y_shape, self._fast = None, y.shape, (Y, last)
        return out

    def _backward_fast(self, grad_out, W):
        # On a loss plateau (a sigmoid output saturated, deltas of 1e-30 and less) products of small
        # deltas underflow into subnormal float32 numbers, which many x86 CPUs compute with ~100x
        # slower, and every later product reads them (benchmarks/RESULTS.md, "the conv layers' gradients flushed too").
        # The CPU path sets dL/dy entries below tiny/eps to 0 (optimizers.base.flush_tiny_values):
        # below anything the float32 sums downstream can resolve, so the same result to rounding.
        Y, last = self._fast
        C_in, C_out = self.in_channels, self.out_channels
        B, _, H_in, W_in = self.y_shape
        grad_W = self._grad("W")
        if last:  # im2col of the gradient, then both products, a few images at a time
            g = nhwc(grad_out)
            kH, kW = self.kernel_size
            K, rows = W[0].size, Y.shape[0] // B
            W_r = W.transpose(0, 2, 3, 1).reshape(C_in, K)
            dY = np.empty((B, H_in, W_in, C_in), dtype=Y.dtype)
            dY_mat = dY.reshape(-1, C_in)

            def chunk(n0, n1):
                G_cols_t = im2col_nhwc(g[n0:n1], self.kernel_size, self.stride, self.padding,
                                       out=transient(((n1 - n0) * rows, K), Y.dtype))
                image_products(G_cols_t, W_r.T, n1 - n0, out=dY_mat[n0 * rows:n1 * rows])
                flush_tiny_values(dY_mat[n0 * rows:n1 * rows])  # while in cache; why: _backward_fast's comment
                return summed_image_products(Y[n0 * rows:n1 * rows], G_cols_t, n1 - n0)
            parts = split_run(chunk, batch_chunks(B, rows * K * Y.dtype.itemsize))
            grad_W_r = parts[0]
            for part in parts[1:]:
                grad_W_r += part
            grad_W[...] = grad_W_r.reshape(C_in, kH, kW, C_out).transpose(0, 3, 1, 2)
            np.sum(g.reshape(-1, C_out), axis=0, out=self._grad("b"))
            return nchw_view(dY)
        G_cols_t = im2col(grad_out, self.kernel_size, self.stride, self.padding, np).T
        grad_W.reshape(C_in, -1)[...] = summed_image_products(Y, G_cols_t, B)
        np.sum(grad_out, axis=(0, 2, 3), out=self._grad("b"))
        W_r = W.reshape(C_in, -1)
        dY = np.empty((B, H_in, W_in, C_in), dtype=Y.dtype)
        image_products(G_cols_t, W_r.T, B, out=dY.reshape(-1, C_in))
        flush_tiny_values(dY)
        return nchw_view(dY)

    def config(self):
        return dict(self._config("conv_transpose2d"), output_padding=list(self.output_padding))

    def __repr__(self):
        return f"ConvTranspose2d({self._repr_args()}, output_padding={self.output_padding})"
