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
