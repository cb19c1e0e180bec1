"""Channels-last (NHWC) im2col and col2im, as compiled loops, and the views between the two layouts.

On the CPU the reference im2col's strided copies walk rows of W_out (2 to 28) floats, and its
products write a (C_out, B*H*W) matrix that one more pass turns back into NCHW.  Channels last
((B, H, W, C) in memory) the same matrices come transposed: a receptive field is kH*kW runs of C
contiguous floats, the product cols^T W^T writes the (B*H*W, C_out) = NHWC output directly, and
the bias adds along the contiguous axis.  The fast layers hand their outputs on as (B, C, H, W)
*views* of channels-last memory (`nchw_view`): the same shapes and values, only the strides
differ, so the next fast layer reads its input channels last without a copy (`nhwc`).

The loops (compiled by Numba, fast/jit.py) do the reference's additions in the reference's
order, so they equal `layers.im2col.im2col` / `col2im` bit for bit (tests/test_fast_conv.py).
"""
import numpy as np

from ..layers.im2col import conv_output_size
from .jit import CompiledLoop


def nhwc(x):
    """x (B, C, H, W) as a C-contiguous (B, H, W, C) array: free when x is a channels-last view."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def nchw_view(x_nhwc):
    """A (B, H, W, C) array seen as (B, C, H, W), without a copy."""
    return x_nhwc.transpose(0, 3, 1, 2)


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
