"""Fast Conv2d and ConvTranspose2d: the reference layers' products, channels last, in chunks of images.

Each wraps a reference layer (`scratch_ae.layers.conv.Conv2d` / `ConvTranspose2d`, its
`reference`) and computes what the reference computes, with that layer's own parameter and
gradient arrays, on the CPU:

* the same matrices transposed, so the products write channels-last (NHWC) outputs, handed on
  as (B, C, H, W) views (fast/nhwc.py); with few channels (below _MIN_CHANNELS_LAST: the data's
  1 or 3) a run of C floats is too short to pay and the reference's channels-first im2col matrix
  is used, transposed;
* the bias as one more kernel column against a column of ones, so the forward product adds it and
  the weight-gradient product's last column is grad_b, with no pass of their own;
* the temporary matrices a chunk of images at a time (fast/threads.py, batch_chunks), from one
  transient buffer, split over two threads inside threads_held();
* each product as a stack of products of a few whole images (below), and the input gradient's
  subnormal entries flushed to 0 (ConvTranspose2d.backward says why).

Results equal the reference's to rounding (the products are taken in the other orientation;
tests/test_fast_conv.py states the tolerance).
"""
import numpy as np

from ..layers import conv as reference_conv
from ..layers.im2col import col2im, im2col
from ..optimizers.base import flush_tiny_values
from .base import FastLayer
from .jit import loops_take
from .nhwc import col2im_nhwc, im2col_nhwc, nchw_view, nhwc
from .threads import (_CHUNK_BYTES, _MIN_CHANNELS_LAST, _PER_IMAGE_MAX_MACS, _RECOMPUTE_COLS, Scratch, batch_chunks,
                      split_run, transient)


# ---------------------------------------------------------------------------- products image by image
# The products, all rows (n, p, q) of some images against one small matrix, run as a stack of
# products of a few whole images each, as many images as keep one product within max_macs
# multiply-adds: NumPy's stacked matmul calls BLAS once per group from C, and OpenBLAS runs a
# product that small on the calling thread (its GEMM_MULTITHREAD_THRESHOLD: 4 x 65536
# multiply-adds) with kernels suited to it, where the whole product would wake its thread pool
# and hand over work twice per call; for these layers that hand-over costs more than the second
# core gains.  Each group's product is a sub-matrix of the whole one (the same terms; a weight
# gradient adds the groups' sums in order).  Images left after the last whole group go in one
# more product.
def _image_groups(images, rows, inner, cols, max_macs):
    """(number of groups, rows the stacked groups cover), or None for one whole product."""
    if images < 2 or rows % images or max_macs <= 0:
        return None
    r = rows // images
    per_group = max_macs // max(1, r * inner * cols)
    if per_group < 1 or per_group >= images:
        return None
    n_groups = images // per_group
    return n_groups, n_groups * per_group * r


def image_products(a, b, images, out, max_macs):
    """out = a @ b for a (images r, k) with rows grouped by image, b (k, n), out C-contiguous."""
    groups = _image_groups(images, a.shape[0], a.shape[1], b.shape[1], max_macs) if out.flags.c_contiguous else None
    if groups is None:
        return np.matmul(a, b, out=out)
    n_groups, full = groups
    np.matmul(a[:full].reshape(n_groups, -1, a.shape[1]), b, out=out[:full].reshape(n_groups, -1, b.shape[1]))
    if full < a.shape[0]:
        np.matmul(a[full:], b, out=out[full:])
    return out


def image_products_t(w, a, images, max_macs):
    """w @ a^T, (m, images r), for w (m, k) and a (images r, k) with rows grouped by image."""
    out = np.empty((w.shape[0], a.shape[0]), dtype=np.result_type(w, a))
    groups = _image_groups(images, a.shape[0], a.shape[1], w.shape[0], max_macs)
    if groups is None:
        return np.matmul(w, a.T, out=out)
    n_groups, full = groups
    np.matmul(w, a[:full].reshape(n_groups, -1, a.shape[1]).transpose(0, 2, 1),
              out=out[:, :full].reshape(w.shape[0], n_groups, -1).transpose(1, 0, 2))
    if full < a.shape[0]:
        np.matmul(w, a[full:].T, out=out[:, full:])
    return out


def summed_image_products(a, b, images, max_macs):
    """a^T b, (p, q), for a (images r, p) and b (images r, q) with rows grouped by image: the groups'
    own products, then their sum."""
    groups = _image_groups(images, a.shape[0], a.shape[1], b.shape[1], max_macs)
    if groups is None:
        return np.matmul(a.T, b)
    n_groups, full = groups
    per = np.matmul(a[:full].reshape(n_groups, -1, a.shape[1]).transpose(0, 2, 1),
                    b[:full].reshape(n_groups, -1, b.shape[1]))
    total = per.sum(axis=0)
    if full < a.shape[0]:
        total += np.matmul(a[full:].T, b[full:])
    return total


def _sum_in_order(parts):
    """parts[0] + parts[1] + ..., in place in parts[0]: the same sum whatever thread made each part."""
    total = parts[0]
    for part in parts[1:]:
        total += part
    return total


class _FastConv(FastLayer):
    """What the fast Conv2d and ConvTranspose2d share: their settings.

    `params` and `grads` are the reference's own dicts (fast.base.FastLayer).  Keyword arguments
    (for tests; the defaults are the engine's private settings): chunk_bytes (the most bytes of
    temporary matrix per chunk of images), per_image_max_macs (the most multiply-adds per stacked
    product; 0: one product per chunk), min_channels_last (channel counts from which
    im2col/col2im go channels last).
    """

    splits_work = True  # split_run inside

    def __init__(self, reference, *, chunk_bytes=_CHUNK_BYTES, per_image_max_macs=_PER_IMAGE_MAX_MACS,
                 min_channels_last=_MIN_CHANNELS_LAST):
        super().__init__(reference)
        self.chunk_bytes = chunk_bytes
        self.per_image_max_macs = per_image_max_macs
        self.min_channels_last = min_channels_last
        self._cache = None  # what the last fast forward kept for its backward; None after a reference forward

    def _chunks(self, batch, bytes_per_image):
        return batch_chunks(batch, bytes_per_image, self.chunk_bytes)

    def output_shape(self, x_shape):
        return self.reference.output_shape(x_shape)


class Conv2d(_FastConv):
    """The fast form of `scratch_ae.layers.conv.Conv2d` (its `reference`); tests/test_fast_conv.py.

    Shapes, parameters and results as the reference's (to rounding); the output is a (B, C_out,
    H_out, W_out) view of channels-last memory.  With C_in >= min_channels_last the im2col matrix
    is im2col_nhwc's cols^T, columns (i, j, c), against W_r = W.transpose(0, 2, 3, 1) as (C_out,
    kH kW C_in); with fewer channels it is the reference's cols, transposed, against W_mat.
    Either gets a last column of ones, and the kernel the bias as a last row: [cols^T | 1]
    [W_r | b]^T is the NHWC output, and G^T [cols^T | 1] is [grad_W_r | grad_b].

    recompute_cols (channels last only): True keeps only a copy of x and builds [cols^T | 1]
    again in the backward, a chunk of images at a time, so neither pass streams the whole matrix
    through memory; False keeps the forward's whole matrix.  With few channels the reference's
    im2col costs more to build again than its small matrix costs to keep: always kept.

    Arrays the compiled loops do not take (CuPy, integer or mixed dtypes): the reference's
    forward and backward run instead.
    """

    reference_type = reference_conv.Conv2d

    def __init__(self, reference, *, recompute_cols=_RECOMPUTE_COLS, **settings):
        super().__init__(reference, **settings)
        self.recompute_cols = recompute_cols
        self._scratch = Scratch()

    @property
    def need_input_grad(self):
        return self.reference.need_input_grad

    def forward(self, x):
        """x (B, C_in, H_in, W_in) -> out (B, C_out, H_out, W_out), as the reference's forward."""
        ref = self.reference
        W, b, (B, C_out, H_out, W_out) = ref.checked(x)
        if not loops_take(x, W, b):
            self._cache = None
            return ref.forward(x)
        last = ref.in_channels >= self.min_channels_last
        if last and self.recompute_cols:
            return self._forward_recompute(x, W, b)
        n, K = B * H_out * W_out, W[0].size
        if last:
            cols_t = im2col_nhwc(nhwc(x), ref.kernel_size, ref.stride, ref.padding,
                                 out=self._scratch.get("cols_t", (n, K + 1), x.dtype), ones=True)
            W_r = W.transpose(0, 2, 3, 1).reshape(C_out, K)
        else:
            cols = self._scratch.get("cols", (K + 1, n), x.dtype)
            cols[:K] = im2col(x, ref.kernel_size, ref.stride, ref.padding, np)
            cols[K] = 1
            cols_t = cols.T
            W_r = W.reshape(C_out, K)
        out = np.empty((B, H_out, W_out, C_out), dtype=x.dtype)
        image_products(cols_t, np.concatenate([W_r, b[:, None]], axis=1).T, B, out=out.reshape(n, C_out),
                       max_macs=self.per_image_max_macs)
        self._cache = ("channels-last" if last else "channels-first", cols_t, x.shape)
        ref.cols = ref.x_shape = None  # a reference backward cannot follow this forward with stale values
        return nchw_view(out)

    def backward(self, grad_out):
        """grad_out (B, C_out, H_out, W_out) -> dL/dx (B, C_in, H_in, W_in) or None; fills the reference's
        grads.  Follows the path its forward took.

        Derivation: derivations/convolution.md#conv-backward
        """
        ref = self.reference
        if self._cache is None:
            return ref.backward(grad_out)
        kind, kept, x_shape = self._cache
        W, _ = ref._weights()
        if kind == "recompute":
            return self._backward_recompute(grad_out, W, kept)
        C_out, K = ref.out_channels, W[0].size
        B, C_in, H_in, W_in = x_shape
        macs = self.per_image_max_macs
        G = nhwc(grad_out).reshape(-1, C_out)    # (B H_out W_out, C_out)
        grad_Wb = summed_image_products(G, kept, B, macs)  # G^T [cols^T | 1], (C_out, K + 1)
        if kind == "channels-last":
            ref._grad("W")[...] = grad_Wb[:, :K].reshape(C_out, *ref.kernel_size, C_in).transpose(0, 3, 1, 2)
        else:
            ref._grad("W").reshape(C_out, K)[...] = grad_Wb[:, :K]
        ref._grad("b")[...] = grad_Wb[:, K]
        if not ref.need_input_grad:
            return None
        if kind == "channels-first":
            dx = col2im(np.matmul(W.reshape(C_out, K).T, G.T), x_shape, ref.kernel_size, ref.stride, ref.padding, np)
            flush_tiny_values(dx)  # why: ConvTranspose2d.backward
            return dx
        # d_cols^T = G W_r, then col2im, a few images at a time
        W_r = W.transpose(0, 2, 3, 1).reshape(C_out, K)
        dx = np.empty((B, H_in, W_in, C_in), dtype=G.dtype)
        rows = G.shape[0] // B
        for n0, n1 in self._chunks(B, rows * K * G.dtype.itemsize):
            d_cols_t = image_products(G[n0 * rows:n1 * rows], W_r, n1 - n0,
                                      out=transient(((n1 - n0) * rows, K), G.dtype), max_macs=macs)
            col2im_nhwc(d_cols_t, (n1 - n0, H_in, W_in, C_in), ref.kernel_size, ref.stride, ref.padding,
                        out=dx[n0:n1])
            flush_tiny_values(dx[n0:n1])  # while in cache; why: ConvTranspose2d.backward
        return nchw_view(dx)

    def _forward_recompute(self, x, W, b):
        """The channels-last forward, a chunk of images at a time, keeping only a copy of x (the caller
        may reuse its input's memory before the backward)."""
        ref = self.reference
        B, C_out, H_out, W_out = ref.output_shape(x.shape)
        K, rows = W[0].size, H_out * W_out
        x4 = self._scratch.get("x", (B, x.shape[2], x.shape[3], x.shape[1]), x.dtype)
        np.copyto(x4, x.transpose(0, 2, 3, 1))
        Wb = np.concatenate([W.transpose(0, 2, 3, 1).reshape(C_out, K), b[:, None]], axis=1).T  # (K + 1, C_out)
        out = np.empty((B, H_out, W_out, C_out), dtype=x.dtype)

        def chunk(n0, n1):
            m = (n1 - n0) * rows
            cols_t = im2col_nhwc(x4[n0:n1], ref.kernel_size, ref.stride, ref.padding,
                                 out=transient((m, K + 1), x.dtype), ones=True)
            image_products(cols_t, Wb, n1 - n0, out=out[n0:n1].reshape(m, C_out), max_macs=self.per_image_max_macs)
        split_run(chunk, self._chunks(B, rows * (K + 1) * x.dtype.itemsize))
        self._cache = ("recompute", x4, x.shape)
        ref.cols = ref.x_shape = None  # a reference backward cannot follow this forward with stale values
        return nchw_view(out)

    def _backward_recompute(self, grad_out, W, x4):
        """Per chunk of images: [cols^T | 1] again, [grad_W_r | grad_b] += G^T [cols^T | 1], then
        d_cols^T = G W_r and col2im."""
        ref = self.reference
        C_out = ref.out_channels
        G = nhwc(grad_out).reshape(-1, C_out)
        B, H_in, W_in, C_in = x4.shape
        K, rows = W[0].size, G.shape[0] // B
        W_r = W.transpose(0, 2, 3, 1).reshape(C_out, K)
        dx = np.empty((B, H_in, W_in, C_in), dtype=G.dtype) if ref.need_input_grad else None
        macs = self.per_image_max_macs

        def chunk(n0, n1):
            m = (n1 - n0) * rows
            buf = transient((m * (2 * K + 1),), G.dtype)  # the chunk's cols and d_cols, one buffer
            cols_t = im2col_nhwc(x4[n0:n1], ref.kernel_size, ref.stride, ref.padding,
                                 out=buf[:m * (K + 1)].reshape(m, K + 1), ones=True)
            G_c = G[n0 * rows:n1 * rows]
            part = summed_image_products(G_c, cols_t, n1 - n0, macs)
            if dx is not None:
                d_cols_t = image_products(G_c, W_r, n1 - n0, out=buf[m * (K + 1):].reshape(m, K), max_macs=macs)
                col2im_nhwc(d_cols_t, (n1 - n0, H_in, W_in, C_in), ref.kernel_size, ref.stride, ref.padding,
                            out=dx[n0:n1])
                flush_tiny_values(dx[n0:n1])  # while in cache; why: ConvTranspose2d.backward
            return part
        grad_Wb = _sum_in_order(split_run(chunk, self._chunks(B, rows * (2 * K + 1) * G.dtype.itemsize)))
        ref._grad("W")[...] = grad_Wb[:, :K].reshape(C_out, *ref.kernel_size, C_in).transpose(0, 3, 1, 2)
        ref._grad("b")[...] = grad_Wb[:, K]
        return None if dx is None else nchw_view(dx)


class ConvTranspose2d(_FastConv):
    """The fast form of `scratch_ae.layers.conv.ConvTranspose2d` (its `reference`); tests/test_fast_conv.py.

    Shapes, parameters and results as the reference's (to rounding).  The products transposed,
    Y = y channels last as (B H_in W_in, C_in).  With C_out >= min_channels_last the columns are
    im2col_nhwc's, (i, j, o), W_r = W.transpose(0, 2, 3, 1) as (C_in, kH kW C_out), col2im adds
    the bias, and the output is a view of channels-last memory; with fewer output channels the
    columns are the reference's, W_r = W_mat, and the output NCHW.

    Arrays the compiled loops do not take (CuPy, integer or mixed dtypes): the reference's
    forward and backward run instead.
    """

    reference_type = reference_conv.ConvTranspose2d

    def forward(self, y):
        """y (B, C_in, H_in, W_in) -> out (B, C_out, H_out, W_out), as the reference's forward."""
        ref = self.reference
        W, b, out_shape = ref.checked(y)
        if not loops_take(y, W, b):
            self._cache = None
            return ref.forward(y)
        C_in, C_out = ref.in_channels, ref.out_channels
        B, _, H_out, W_out = out_shape
        Y = nhwc(y).reshape(-1, C_in)
        last = C_out >= self.min_channels_last
        macs = self.per_image_max_macs
        if last:  # cols^T = Y W_r, then col2im + b, a few images at a time
            W_r = W.transpose(0, 2, 3, 1).reshape(C_in, -1)
            K, rows = W_r.shape[1], Y.shape[0] // B
            out = np.empty((B, H_out, W_out, C_out), dtype=Y.dtype)

            def chunk(n0, n1):
                cols_t = image_products(Y[n0 * rows:n1 * rows], W_r, n1 - n0,
                                        out=transient(((n1 - n0) * rows, K), Y.dtype), max_macs=macs)
                col2im_nhwc(cols_t, (n1 - n0, H_out, W_out, C_out), ref.kernel_size, ref.stride, ref.padding,
                            bias=b, out=out[n0:n1])
            split_run(chunk, self._chunks(B, rows * K * Y.dtype.itemsize))
            out = nchw_view(out)
        else:
            cols = image_products_t(W.reshape(C_in, -1).T, Y, B, macs)  # the reference's (C_out kH kW, B H_in W_in)
            out = col2im(cols, out_shape, ref.kernel_size, ref.stride, ref.padding, np)
            out += b.reshape(1, C_out, 1, 1)
        self._cache = (last, Y, y.shape)
        ref.Y_mat = ref.y_shape = None  # a reference backward cannot follow this forward with stale values
        return out

    def backward(self, grad_out):
        """grad_out (B, C_out, H_out, W_out) -> dL/dy (B, C_in, H_in, W_in); fills the reference's grads.
        Follows the path its forward took.

        Derivation: derivations/convolution.md#conv-transpose
        """
        # On a loss plateau (a sigmoid output saturated, deltas of 1e-30 and less) products of small
        # deltas underflow into subnormal float32 numbers, which many x86 CPUs compute ~100x slower,
        # and every later product reads them.  The fast layers set dL/dy entries below tiny/eps to 0
        # (optimizers.base.flush_tiny_values, derivations/optimizers.md#subnormals): below anything
        # the float32 sums downstream can resolve, so the same result to rounding.  The reference
        # keeps them: it is the derivation's algorithm, and on the GPU they cost nothing extra.
        ref = self.reference
        if self._cache is None:
            return ref.backward(grad_out)
        last, Y, y_shape = self._cache
        W, _ = ref._weights()
        C_in, C_out = ref.in_channels, ref.out_channels
        B, _, H_in, W_in = y_shape
        macs = self.per_image_max_macs
        grad_W = ref._grad("W")
        dY = np.empty((B, H_in, W_in, C_in), dtype=Y.dtype)
        if last:  # im2col of the gradient, then both products, a few images at a time
            g = nhwc(grad_out)
            K, rows = W[0].size, Y.shape[0] // B
            W_r = W.transpose(0, 2, 3, 1).reshape(C_in, K)
            dY_mat = dY.reshape(-1, C_in)

            def chunk(n0, n1):
                G_cols_t = im2col_nhwc(g[n0:n1], ref.kernel_size, ref.stride, ref.padding,
                                       out=transient(((n1 - n0) * rows, K), Y.dtype))
                image_products(G_cols_t, W_r.T, n1 - n0, out=dY_mat[n0 * rows:n1 * rows], max_macs=macs)
                flush_tiny_values(dY_mat[n0 * rows:n1 * rows])  # while in cache
                return summed_image_products(Y[n0 * rows:n1 * rows], G_cols_t, n1 - n0, macs)
            grad_W_r = _sum_in_order(split_run(chunk, self._chunks(B, rows * K * Y.dtype.itemsize)))
            grad_W[...] = grad_W_r.reshape(C_in, *ref.kernel_size, C_out).transpose(0, 3, 1, 2)
            np.sum(g.reshape(-1, C_out), axis=0, out=ref._grad("b"))
            return nchw_view(dY)
        G_cols_t = im2col(grad_out, ref.kernel_size, ref.stride, ref.padding, np).T
        grad_W.reshape(C_in, -1)[...] = summed_image_products(Y, G_cols_t, B, macs)
        np.sum(grad_out, axis=(0, 2, 3), out=ref._grad("b"))
        image_products(G_cols_t, W.reshape(C_in, -1).T, B, out=dY.reshape(-1, C_in), max_macs=macs)
        flush_tiny_values(dY)
        return nchw_view(dY)


__all__ = ["Conv2d", "ConvTranspose2d"]
